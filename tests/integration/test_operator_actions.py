"""Operator actions on PostgreSQL (issue 23): each audit entry commits with its change or neither
does, retries replay, a claw back never takes the balance below zero (also under concurrent
consumes), and the ledger equals the buckets after every action."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from billing.adapters.db.audit_entries import PostgresAuditTrail
from billing.adapters.db.tables import audit_entries
from billing.domain.audit import Action
from billing.domain.auth import ApiKey, Scope
from billing.domain.errors import (
    ActionNotPossible, ApiKeyNotFound, BalanceTooLow, IdempotencyKeyReused, InsufficientAiTime, InvalidArgument,
    PaymentNotFound,
)
from billing.service import operator_actions, operator_refunds
from billing.service.audit import list_audit_entries
from billing.service.balance import get_balance
from billing.service.consume import consume
from billing.service.holds import place_hold
from tests.support.fake_payments import FakePaymentProvider

WELCOME = 1800
FREE_DAILY = 900
OPERATOR = "bk_operator_test"


def key() -> str:
    return uuid.uuid4().hex


@pytest.fixture
def audit_rows(engine):
    async def rows(account_id: str):
        async with engine.connect() as connection:
            query = select(audit_entries).where(audit_entries.c.account_id == account_id)
            return (await connection.execute(query)).mappings().all()

    return rows


async def test_a_grant_and_its_entry_commit_together_and_a_retry_replays(
    deps, user_id, account, advance, audit_rows, ledger_rows, assert_ledger_balanced,
):
    expires_at = deps.clock.now() + timedelta(days=30)
    rows_before = await ledger_rows(user_id)
    idempotency_key = key()
    result = await operator_actions.grant(deps, OPERATOR, user_id, "gift", 600, expires_at, "  goodwill  ", idempotency_key)

    entry = result.audit
    assert result.replayed is False
    assert (entry.action, entry.account_id, entry.operator_key_id, entry.reason) == ("grant", user_id, OPERATOR, "goodwill")
    assert entry.before is not None and entry.after is not None
    assert entry.after.total_seconds == entry.before.total_seconds + 600
    assert entry.detail["seconds"] == 600 and entry.detail["expires_at"] == expires_at.isoformat()
    [row] = await audit_rows(user_id)
    assert row["audit_id"] == entry.audit_id and row["after_totals"]["total_seconds"] == entry.after.total_seconds
    assert await ledger_rows(user_id) == rows_before + 1
    report = await get_balance(deps, user_id)
    assert [b.expires_at for b in report.view.paid if b.remaining_seconds == 600] == [expires_at]
    await assert_ledger_balanced(user_id)

    again = await operator_actions.grant(deps, OPERATOR, user_id, "gift", 600, expires_at, "goodwill", idempotency_key)
    assert again.replayed is True and again.audit == entry
    assert await ledger_rows(user_id) == rows_before + 1 and len(await audit_rows(user_id)) == 1
    with pytest.raises(IdempotencyKeyReused):
        await operator_actions.grant(deps, OPERATOR, user_id, "gift", 601, expires_at, "goodwill", idempotency_key)

    advance(days=31)  # the grant's bucket expires with its date
    assert (await get_balance(deps, user_id)).view.totals.total_seconds == entry.before.total_seconds  # a new day's bonus


@pytest.mark.parametrize("reason", ["", "   ", "x" * 501, "line\nbreak"])
async def test_no_action_without_a_reason(deps, user_id, account, reason, audit_rows, ledger_rows):
    rows_before = await ledger_rows(user_id)
    with pytest.raises(InvalidArgument) as refused:
        await operator_actions.grant(deps, OPERATOR, user_id, "gift", 60, None, reason, key())
    assert refused.value.field == "reason"
    with pytest.raises(InvalidArgument) as refused:
        await operator_actions.claw_back(deps, OPERATOR, user_id, 60, reason, key())
    assert refused.value.field == "reason"
    assert await ledger_rows(user_id) == rows_before and await audit_rows(user_id) == []


async def test_grant_input_is_checked(deps, user_id, account):
    for source, seconds, expires_at, field in [
        ("welcome", 60, None, "source"), ("gift", 0, None, "seconds"), ("gift", 31_536_001, None, "seconds"),
        ("gift", 60, deps.clock.now() - timedelta(seconds=1), "expires_at"),
    ]:
        with pytest.raises(InvalidArgument) as refused:
            await operator_actions.grant(deps, OPERATOR, user_id, source, seconds, expires_at, "why", key())
        assert refused.value.field == field


async def test_a_failure_after_the_change_writes_neither(
    deps, user_id, account, audit_rows, ledger_rows, bucket_rows, monkeypatch, assert_ledger_balanced,
):
    rows_before, buckets_before = await ledger_rows(user_id), await bucket_rows(user_id)

    async def failing_add(self, entry):
        raise RuntimeError("the audit insert failed")

    monkeypatch.setattr(PostgresAuditTrail, "add", failing_add)
    with pytest.raises(RuntimeError):
        await operator_actions.grant(deps, OPERATOR, user_id, "gift", 600, None, "goodwill", key())
    with pytest.raises(RuntimeError):
        await operator_actions.claw_back(deps, OPERATOR, user_id, 600, "fraud", key())
    assert await ledger_rows(user_id) == rows_before and await bucket_rows(user_id) == buckets_before
    assert await audit_rows(user_id) == []
    await assert_ledger_balanced(user_id)


async def test_a_key_used_on_another_account_rolls_the_second_change_back(
    deps, user_id, account, audit_rows, ledger_rows,
):
    from billing.service.accounts import create_account

    other = f"{user_id}-other"
    await create_account(deps, other, "free")
    idempotency_key = key()
    await operator_actions.grant(deps, OPERATOR, user_id, "gift", 60, None, "goodwill", idempotency_key)
    rows_before = await ledger_rows(other)
    with pytest.raises(IdempotencyKeyReused):
        await operator_actions.grant(deps, OPERATOR, other, "gift", 60, None, "goodwill", idempotency_key)
    assert await ledger_rows(other) == rows_before and await audit_rows(other) == []


async def test_concurrent_requests_with_one_key_act_once(deps, user_id, account, ledger_rows, audit_rows):
    rows_before = await ledger_rows(user_id)
    idempotency_key = key()
    results = await asyncio.gather(*[
        operator_actions.grant(deps, OPERATOR, user_id, "adjustment", 120, None, "twice", idempotency_key)
        for _ in range(4)
    ])
    assert sorted(r.replayed for r in results) == [False, True, True, True]
    assert len({r.audit.audit_id for r in results}) == 1
    assert await ledger_rows(user_id) == rows_before + 1 and len(await audit_rows(user_id)) == 1


async def test_claw_back_takes_available_seconds_never_below_zero(
    deps, user_id, account, audit_rows, ledger_rows, assert_ledger_balanced,
):
    # The hold takes today's bonus first, then 100 s of the welcome: held seconds are not available.
    await place_hold(deps, user_id, "hold-1", "build", FREE_DAILY + 100)
    available = WELCOME - 100
    rows_before = await ledger_rows(user_id)
    with pytest.raises(BalanceTooLow) as refused:
        await operator_actions.claw_back(deps, OPERATOR, user_id, available + 1, "too much", key())
    assert refused.value.field == "seconds" and f"only {available}s" in refused.value.message
    assert await ledger_rows(user_id) == rows_before and await audit_rows(user_id) == []

    result = await operator_actions.claw_back(deps, OPERATOR, user_id, available, "abuse", key())
    assert result.audit.after is not None and result.audit.after.total_seconds == 0
    assert result.audit.after.held_seconds == FREE_DAILY + 100 and result.audit.before is not None
    assert result.audit.before.total_seconds - result.audit.after.total_seconds == available
    with pytest.raises(BalanceTooLow):
        await operator_actions.claw_back(deps, OPERATOR, user_id, 1, "more", key())
    ledger = [e for e in (await _events(deps, user_id)) if e.metadata.get("operator_action") == "claw_back"]
    assert sum(e.seconds for e in ledger) == -available
    assert ledger[0].metadata["operator_action"] == "claw_back"
    await assert_ledger_balanced(user_id)


async def _events(deps, user_id):
    from billing.service.history import list_events

    return (await list_events(deps, user_id, 50, "")).events


async def test_claw_back_under_concurrent_consumes_never_goes_below_zero(
    deps, user_id, account, assert_ledger_balanced,
):
    await operator_actions.grant(deps, OPERATOR, user_id, "gift", 3000, None, "credit", key())
    paid = WELCOME + 3000

    async def consume_one(i: int):
        try:
            return await consume(deps, user_id, "build", 400, f"c-{i}")
        except InsufficientAiTime:
            return None

    async def claw(i: int):
        try:
            return await operator_actions.claw_back(deps, OPERATOR, user_id, 1000, "abuse", key())
        except BalanceTooLow:
            return None

    results = await asyncio.gather(*[consume_one(i) for i in range(8)], *[claw(i) for i in range(5)])
    consumed = sum(r.consumed_seconds for r in results[:8] if r is not None)
    clawed = sum(1000 for r in results[8:] if r is not None)
    totals = (await get_balance(deps, user_id)).view.totals
    assert totals.total_seconds >= 0 and totals.paid_seconds >= 0
    assert totals.total_seconds == paid + FREE_DAILY - consumed - clawed
    await assert_ledger_balanced(user_id)


async def test_disable_auto_topup_is_audited(deps, user_id, account, assert_ledger_balanced):
    from billing.domain.auto_topup import AutoTopup
    from billing.service.wallet_change import WalletChange, change_wallet

    def turn_on(wallet, now):
        wallet.change_auto_topup(dataclasses.replace(AutoTopup(), enabled=True, threshold_seconds=60,
                                                     package_key="mini", currency="USD"))

    await change_wallet(deps, WalletChange(user_id, turn_on, repeatable=True))
    result = await operator_actions.disable_auto_topup(deps, OPERATOR, user_id, "card disputes", key())
    assert result.audit.detail["was_enabled"] is True
    assert (await get_balance(deps, user_id)).account.auto_topup.enabled is False
    await assert_ledger_balanced(user_id)


async def test_revoke_key(deps, engine, audit_rows):
    now = deps.clock.now()
    service_key = ApiKey(f"bk_{uuid.uuid4().hex}", Scope.SERVICE, None, now + timedelta(days=1))
    async with deps.storage.transaction() as uow:
        await uow.stored_keys.add(service_key, now)
        await uow.commit()
    with pytest.raises(ActionNotPossible) as refused:
        await operator_actions.revoke_key(deps, service_key.key_id, service_key.key_id, "leaked", key())
    assert refused.value.field == "key_id"
    with pytest.raises(ApiKeyNotFound):
        await operator_actions.revoke_key(deps, OPERATOR, "bk_nope", "leaked", key())

    idempotency_key = key()
    result = await operator_actions.revoke_key(deps, OPERATOR, service_key.key_id, "leaked", idempotency_key)
    assert (result.audit.account_id, result.audit.before, result.audit.detail["scope"]) == ("", None, "service")
    async with deps.storage.reader() as uow:
        stored = await uow.stored_keys.get(service_key.key_id)
    assert stored is not None and stored.revoked_at == now
    again = await operator_actions.revoke_key(deps, OPERATOR, service_key.key_id, "leaked", idempotency_key)
    assert again.replayed and again.audit == result.audit
    with pytest.raises(ActionNotPossible):
        await operator_actions.revoke_key(deps, OPERATOR, service_key.key_id, "leaked", key())
    assert [r["audit_id"] for r in await audit_rows("") if r["idempotency_key"] == idempotency_key] == [
        result.audit.audit_id]


async def test_refund_asks_the_provider_and_audits_its_refund(deps, user_id, account, audit_rows):
    from billing.service.payment_credits import credit_package
    from tests.support.stripe_events import payment_intent_succeeded

    provider = FakePaymentProvider()
    paying = dataclasses.replace(deps, payments=provider)
    payment_id = f"pi_{uuid.uuid4().hex[:12]}"
    async with paying.storage.transaction() as uow:
        await uow.payment_profiles.add_customer(user_id, f"cus_{user_id}", deps.clock.now())
        await uow.commit()
    event = provider.read_verified_event(__import__("json").dumps(payment_intent_succeeded(
        payment_id, user_id, "mini", 30, 499, int(deps.clock.now().timestamp()), customer=f"cus_{user_id}")).encode())
    await credit_package(paying, user_id, event.event)

    with pytest.raises(PaymentNotFound):
        await operator_refunds.refund_payment(paying, OPERATOR, user_id, "pi_unknown", 0, "duplicate", key())
    with pytest.raises(InvalidArgument) as refused:
        await operator_refunds.refund_payment(paying, OPERATOR, user_id, payment_id, 500, "too much", key())
    assert refused.value.field == "amount_cents"
    idempotency_key = key()
    result = await operator_refunds.refund_payment(paying, OPERATOR, user_id, payment_id, 0, "duplicate charge",
                                                   idempotency_key)
    assert result.audit.detail["payment_id"] == payment_id and result.audit.detail["refund_id"].startswith("re_")
    assert result.audit.before == result.audit.after  # the balance moves when the provider's webhook comes
    assert list(provider.created_refunds.values())[0][:2] == (payment_id, 0)
    again = await operator_refunds.refund_payment(paying, OPERATOR, user_id, payment_id, 0, "duplicate charge",
                                                  idempotency_key)
    assert again.replayed and len(provider.created_refunds) == 1
    assert [r["action"] for r in await audit_rows(user_id)] == [Action.REFUND_PAYMENT]


async def test_the_trail_filters_and_pages_newest_first(deps, user_id, account, advance):
    for i in range(5):
        advance(seconds=1)
        await operator_actions.grant(deps, f"{OPERATOR}-{i % 2}", user_id, "gift", 10 + i, None, f"r{i}", key())
    page = await list_audit_entries(deps, user_id, "", "", None, None, 2, "")
    assert [e.detail["seconds"] for e in page.entries] == [14, 13] and page.next_page_token
    rest = await list_audit_entries(deps, user_id, "", "", None, None, 2, page.next_page_token)
    last = await list_audit_entries(deps, user_id, "", "", None, None, 2, rest.next_page_token)
    assert [e.detail["seconds"] for e in rest.entries + last.entries] == [12, 11, 10] and last.next_page_token == ""
    by_operator = await list_audit_entries(deps, user_id, "grant", f"{OPERATOR}-1", None, None, 50, "")
    assert [e.detail["seconds"] for e in by_operator.entries] == [13, 11]
    since = page.entries[1].created_at
    recent = await list_audit_entries(deps, user_id, "", "", since, None, 50, "")
    assert [e.detail["seconds"] for e in recent.entries] == [14, 13]
    for bad, field in [({"page_size": 201}, "page_size"), ({"action": "dance"}, "action"),
                       ({"page_token": "nonsense"}, "page_token")]:
        arguments = {"page_size": 50, "action": "", "page_token": ""} | bad
        with pytest.raises(InvalidArgument) as refused:
            await list_audit_entries(deps, user_id, arguments["action"], "", None, None, arguments["page_size"],
                                     arguments["page_token"])
        assert refused.value.field == field
