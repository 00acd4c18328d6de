"""Operator actions' inputs and their edges (issue 23 review): idempotency keys of any allowed length
for the subscription actions, plan_key and reason checked before they name anything, a subscription
action whose audit entry failed completed by its retry, the sign-in limit per caller address, and the
console URL never showing a wildcard address."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest

from billing.api import operator_servicer
from billing.api.operator_servicer import OperatorServicer, caller_address
from billing.domain.errors import InvalidArgument, RateLimited, Unauthenticated
from billing.entrypoints.console_login import console_url
from billing.service import operator_actions
from billing.service.ports import Unavailable
from billing.v1 import operator_pb2
from tests.support.fake_storage import FakeAuditTrail
from tests.unit.paying_fixtures import (  # noqa: F401 - fixtures
    START, USER, account, clock, database, deliver, deps, provider, subscribe,
)

OPERATOR = "bk_operator_unit"
END = START + timedelta(days=31)


@pytest.mark.parametrize("length", [120, 128])
async def test_subscription_actions_take_the_longest_idempotency_keys(deps, account, provider, length):
    await subscribe(deps, provider, START, END, plan="starter")
    changed = await operator_actions.change_subscription(deps, OPERATOR, USER, "pro", "asked", "c" * length)
    assert changed.audit.detail["requested_plan_key"] == "pro" and provider.subscriptions["sub_1"].plan_key == "pro"
    canceled = await operator_actions.cancel_subscription(deps, OPERATOR, USER, "asked", "k" * length)
    assert canceled.audit.detail["cancel_at_period_end"] is True
    again = await operator_actions.cancel_subscription(deps, OPERATOR, USER, "asked", "k" * length)
    assert again.replayed and again.audit == canceled.audit


@pytest.mark.parametrize("plan_key", ["p" * 65, "pro plan", "pro\u202e", "../pro", "pro\n"])
async def test_a_plan_key_that_cannot_be_a_catalog_key_is_refused_first(deps, account, plan_key):
    with pytest.raises(InvalidArgument) as refused:
        await operator_actions.change_subscription(deps, OPERATOR, USER, plan_key, "asked", "key-1")
    assert refused.value.field == "plan_key" and len(refused.value.message) < 200


@pytest.mark.parametrize("reason", ["refund \u202egnp.exe", "a\u2066b\u2069", "next\x85line", "c1 \x9b", "bell\x07"])
async def test_a_reason_with_control_or_bidi_override_characters_is_refused(deps, account, reason):
    with pytest.raises(InvalidArgument) as refused:
        await operator_actions.grant(deps, OPERATOR, USER, "gift", 60, None, reason, "key-2")
    assert refused.value.field == "reason"
    granted = await operator_actions.grant(deps, OPERATOR, USER, "gift", 60, None, "Geste commercial \u00e9 \u4e2d",
                                           "key-3")
    assert granted.audit.reason == "Geste commercial \u00e9 \u4e2d"


@pytest.mark.parametrize("action", ["cancel", "change"])
async def test_a_subscription_action_whose_entry_failed_is_completed_by_its_retry(
    deps, account, provider, database, monkeypatch, action,
):
    # The provider applied the change; the transaction with the entry failed: the retry (the
    # provider's effect is the same state again) writes the entry, once.
    await subscribe(deps, provider, START, END, plan="starter")
    add = FakeAuditTrail.add
    failures = [Unavailable("database went away")]

    async def failing_add(self, entry):
        if failures:
            raise failures.pop()
        return await add(self, entry)

    monkeypatch.setattr(FakeAuditTrail, "add", failing_add)

    async def act():
        if action == "cancel":
            return await operator_actions.cancel_subscription(deps, OPERATOR, USER, "asked", "sub-key")
        return await operator_actions.change_subscription(deps, OPERATOR, USER, "pro", "asked", "sub-key")

    with pytest.raises(Unavailable):
        await act()
    assert database.audit_entries == {}
    result = await act()
    assert result.replayed is False and list(database.audit_entries) == ["sub-key"]
    snapshot = provider.subscriptions["sub_1"]
    assert snapshot.cancel_at_period_end if action == "cancel" else snapshot.plan_key == "pro"
    assert (await act()).replayed


class _Context:
    def __init__(self, metadata=(), peer="ipv4:127.0.0.1:50000"):
        self._metadata, self._peer = tuple(metadata), peer

    def invocation_metadata(self):
        return self._metadata

    def peer(self):
        return self._peer


def test_the_caller_address_is_envoys_last_forwarded_entry_else_the_peer():
    assert caller_address(_Context([("x-forwarded-for", "6.6.6.6, 10.0.0.7")])) == "10.0.0.7"
    assert caller_address(_Context([("x-forwarded-for", "127.0.0.1")])) == "127.0.0.1"
    assert caller_address(_Context()) == "ipv4:127.0.0.1"
    assert caller_address(_Context(peer="ipv6:[::1]:4242")) == "ipv6:[::1]"
    assert len(caller_address(_Context([("x-forwarded-for", "x" * 5000)]))) == operator_servicer.CALLER_ADDRESS_LENGTH_MAX


async def test_one_address_flooding_the_sign_in_does_not_lock_out_another(deps, monkeypatch):
    async def no_such_code(deps_, code):
        raise Unauthenticated("unknown code")

    monkeypatch.setattr(operator_servicer.console_login, "redeem_console_login", no_such_code)
    servicer = OperatorServicer(deps)
    request = operator_pb2.RedeemConsoleLoginRequest(code="A" * 43)
    flooder = _Context([("x-forwarded-for", "10.0.0.66")])
    refusals = []
    for _ in range(int(operator_servicer.REDEEM_LIMIT.burst) + 5):
        try:
            await servicer.RedeemConsoleLogin(request, flooder)
        except (RateLimited, Unauthenticated) as refused:
            refusals.append(type(refused))
    assert RateLimited in refusals
    with pytest.raises(Unauthenticated):  # another operator's attempt is answered, not rate limited
        await servicer.RedeemConsoleLogin(request, _Context([("x-forwarded-for", "10.0.0.7")]))


@pytest.mark.parametrize(("host", "shown"), [("0.0.0.0", "127.0.0.1"), ("::", "[::1]"), ("127.0.0.1", "127.0.0.1"),
                                             ("10.1.2.3", "10.1.2.3"), ("::1", "[::1]")])
def test_the_console_url_never_shows_a_wildcard_address(host, shown):
    settings = SimpleNamespace(edge=SimpleNamespace(admin_rest_host=host, admin_rest_port=8081))
    assert console_url(settings, "abc").startswith(f"http://{shown}:8081/console/#login=abc")  # type: ignore[arg-type]
