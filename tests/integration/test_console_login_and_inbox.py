"""Console sign-in codes and the Stripe inbox on PostgreSQL (issue 23): a code is redeemed once,
within its 10 minutes; a kept delivery is reprocessed through the normal handling, applied once."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import timedelta

import pytest

from billing.adapters.key_secrets import MasterKey, SessionKeyIssuer, new_key_id
from billing.domain.errors import ActionNotPossible, StripeEventNotFound, Unauthenticated
from billing.service.balance import get_balance
from billing.service.console_login import mint_console_login, redeem_console_login
from billing.service.stripe_inbox import list_stripe_events, reprocess_stripe_event
from billing.service.webhooks import handle_webhook
from tests.support import stripe_events
from tests.support.fake_payments import VALID_SIGNATURE, FakePaymentProvider

MASTER = MasterKey(bytes(range(32)))
OPERATOR = "bk_operator_test"


@pytest.fixture
def keyed(deps):
    return dataclasses.replace(deps, key_issuer=SessionKeyIssuer(MASTER))


async def test_a_code_is_redeemed_once(keyed):
    login = await mint_console_login(keyed, new_key_id(), timedelta(hours=8))
    assert len(login.code) >= 43 and login.key.scope == "admin"
    credentials = await redeem_console_login(keyed, login.code)
    assert credentials.key_id == login.key.key_id and credentials.secret == MASTER.secret(login.key.key_id)
    assert credentials.expires_at == login.key.expires_at
    for code in (login.code, "x" * 43, "", "not a code!"):
        with pytest.raises(Unauthenticated) as refused:
            await redeem_console_login(keyed, code)
        assert "unknown, used or expired" in refused.value.message


async def test_an_expired_code_is_refused_like_an_unknown_one(keyed, advance):
    login = await mint_console_login(keyed, new_key_id(), timedelta(hours=8))
    advance(minutes=10)
    with pytest.raises(Unauthenticated):
        await redeem_console_login(keyed, login.code)


async def test_only_the_digest_is_stored(keyed, engine):
    from sqlalchemy import text

    login = await mint_console_login(keyed, new_key_id(), timedelta(hours=1))
    async with engine.connect() as connection:
        stored = (await connection.execute(text("SELECT code_digest::text, key_id FROM console_logins WHERE key_id = :k"),
                                           {"k": login.key.key_id})).one()
    assert login.code not in stored[0] and stored[1] == login.key.key_id


async def test_a_kept_delivery_is_reprocessed_once_its_customer_is_known(deps, user_id, account, assert_ledger_balanced):
    provider = FakePaymentProvider()
    paying = dataclasses.replace(deps, payments=provider)
    customer = f"cus_{uuid.uuid4().hex[:10]}"
    minutes = deps.catalog.package("mini").minutes
    evt = stripe_events.payment_intent_succeeded(
        f"pi_{uuid.uuid4().hex[:12]}", user_id, "mini", minutes, stripe_events.USD_PRICES["mini"],
        int(deps.clock.now().timestamp()), customer=customer)
    outcome = await handle_webhook(paying, json.dumps(evt).encode(), VALID_SIGNATURE)
    assert outcome.outcome == "ignored"
    kept = await list_stripe_events(paying, "kept", "", 200, "")
    [record] = [e for e in kept.events if e.event_id == evt["id"]]
    assert record.payload is not None and record.payload["id"] == evt["id"]

    with pytest.raises(StripeEventNotFound):
        await reprocess_stripe_event(paying, OPERATOR, "evt_unknown", "look again", uuid.uuid4().hex)
    before = (await get_balance(deps, user_id)).view.totals.total_seconds
    async with deps.storage.transaction() as uow:
        await uow.payment_profiles.add_customer(user_id, customer, deps.clock.now())
        await uow.commit()
    idempotency_key = uuid.uuid4().hex
    result = await reprocess_stripe_event(paying, OPERATOR, evt["id"], "customer linked", idempotency_key)
    assert result.event.outcome == "processed" and result.event.account_id == user_id
    assert result.audit.action == "reprocess_stripe_event" and result.audit.account_id == user_id
    assert result.audit.detail["outcome_before"] == "ignored"
    assert (await get_balance(deps, user_id)).view.totals.total_seconds == before + minutes * 60

    again = await reprocess_stripe_event(paying, OPERATOR, evt["id"], "customer linked", idempotency_key)
    assert again.replayed and again.audit == result.audit
    once_more = await reprocess_stripe_event(paying, OPERATOR, evt["id"], "check", uuid.uuid4().hex)
    assert "replayed" in once_more.event.detail  # the normal path's idempotency: credited once
    assert (await get_balance(deps, user_id)).view.totals.total_seconds == before + minutes * 60
    redelivered = await handle_webhook(paying, json.dumps(evt).encode(), VALID_SIGNATURE)
    assert redelivered.outcome == "duplicate"
    await assert_ledger_balanced(user_id)


async def test_an_applied_delivery_is_not_reprocessed(deps, user_id):
    provider = FakePaymentProvider()
    paying = dataclasses.replace(deps, payments=provider)
    evt = stripe_events.event("customer.created", {"id": "cus_x", "object": "customer"},
                              int(deps.clock.now().timestamp()))
    await handle_webhook(paying, json.dumps(evt).encode(), VALID_SIGNATURE)
    with pytest.raises(ActionNotPossible):
        await reprocess_stripe_event(paying, OPERATOR, evt["id"], "again", uuid.uuid4().hex)
