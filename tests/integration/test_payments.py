"""Payments on PostgreSQL: webhook credits, refunds, renewal and rollover, `billing tick`, and
the same events delivered many times concurrently (as two replicas would) credit once."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
from datetime import timedelta

import pytest
from sqlalchemy import text

from billing.service.balance import get_balance
from billing.service.consume import consume
from billing.service.idle_upkeep import upkeep_idle_accounts
from billing.service.webhooks import handle_webhook
from tests.support import stripe_events as se
from tests.support.fake_payments import VALID_SIGNATURE, FakePaymentProvider


@pytest.fixture
def provider():
    return FakePaymentProvider()


@pytest.fixture
def paying(deps, provider):
    return dataclasses.replace(deps, payments=provider)



def unix(instant) -> int:
    return int(instant.timestamp())


async def subscribe_to_starter(paying, provider, user_id: str, customer: str, start) -> None:
    """A 30-day starter period (300 minutes, rollover cap 150), paid."""
    end = start + timedelta(days=30)
    provider.set_subscription(f"sub_{user_id}", user_id, "starter", "active", start, end)
    await deliver(paying, se.invoice_paid(f"in_{user_id}", f"pi_in_{user_id}", f"sub_{user_id}", user_id, "starter",
                                          unix(start), unix(end), 999, unix(start), "subscription_create",
                                          customer=customer))


async def deliver(deps, evt):
    return await handle_webhook(deps, json.dumps(evt).encode(), VALID_SIGNATURE)


async def test_duplicated_shuffled_concurrent_deliveries_credit_each_payment_once(
    paying, user_id, account, customer, clock, engine, assert_ledger_balanced
):
    now = unix(clock.now())
    events = []
    for n in range(4):
        events.append(se.payment_intent_succeeded(f"pi_{user_id}_{n}", user_id, "mini", 60, 499, now, customer=customer))
        events.append(se.checkout_completed(f"cs_{user_id}_{n}", f"pi_{user_id}_{n}", user_id, "mini", 60, 499, now,
                                             customer=customer))
    deliveries = events * 4
    random.Random(3).shuffle(deliveries)
    await asyncio.gather(*(deliver(paying, evt) for evt in deliveries))
    report = await get_balance(paying, user_id)
    assert sum(b.remaining_seconds for b in report.view.paid if b.source == "package") == 4 * 3600
    async with engine.connect() as connection:
        credits = (await connection.execute(text(
            "SELECT count(*) FROM ledger_events WHERE account_id = :a AND type = 'package_credit'"), {"a": user_id})).scalar()
        recorded = (await connection.execute(text(
            "SELECT count(*) FROM webhook_events WHERE account_id = :a"), {"a": user_id})).scalar()
    assert credits == 4 and recorded == 8
    await assert_ledger_balanced(user_id)


async def test_refunds_on_postgres(paying, user_id, account, customer, clock, engine, assert_ledger_balanced):
    now = unix(clock.now())
    pi = f"pi_{user_id}_r"
    await deliver(paying, se.payment_intent_succeeded(pi, user_id, "booster", 300, 1999, now, customer=customer))
    await consume(paying, user_id, "build", 900 + 6000, "k1")  # the bonus, then 100 of the 300 minutes
    await asyncio.gather(
        deliver(paying, se.charge_refunded("ch_r", pi, 1999, 1000, now, user_id=user_id, customer=customer)),
        deliver(paying, se.charge_refunded("ch_r", pi, 1999, 1999, now, user_id=user_id, customer=customer)),
    )
    report = await get_balance(paying, user_id)
    assert not [b for b in report.view.paid if b.source == "package"]
    async with engine.connect() as connection:
        row = (await connection.execute(text(
            "SELECT refunded_cents, refund_removed_seconds, refund_unrecoverable_seconds FROM payments "
            "WHERE account_id = :a AND payment_id = :p"), {"a": user_id, "p": pi})).one()
    assert tuple(row) == (1999, 12000, 6000)
    await assert_ledger_balanced(user_id)


async def test_renewal_rollover_and_tick_on_postgres(
    paying, provider, user_id, account, customer, clock, advance, assert_ledger_balanced
):
    await subscribe_to_starter(paying, provider, user_id, customer, clock.now())
    report = await get_balance(paying, user_id)
    assert report.account.plan_key == "starter" and report.account.subscription.closes_at is not None
    advance(days=30, hours=1)
    assert await upkeep_idle_accounts(paying) >= 1
    report = await get_balance(paying, user_id)
    rollover = [b for b in report.view.paid if b.source == "rollover"]
    assert [b.remaining_seconds for b in rollover] == [150 * 60]
    assert report.account.subscription.closes_at is None
    await assert_ledger_balanced(user_id)


async def test_billing_tick_announces_what_it_changed_to_every_replica(
    paying, provider, user_id, account, customer, clock, advance, database_url
):
    """A page watching an idle account hears of its period closing when `billing tick` closes it."""
    import psycopg

    from billing.adapters.db.change_notifier import CHANNEL, account_ids_of
    from billing.entrypoints.tick import run_tick
    from billing.settings import Settings, libpq_url

    await subscribe_to_starter(paying, provider, user_id, customer, clock.now())
    advance(days=30, hours=1)
    async with await psycopg.AsyncConnection.connect(libpq_url(database_url), autocommit=True) as listening:
        await listening.execute(f"LISTEN {CHANNEL}")
        assert await run_tick(Settings.from_environment(database_url), clock) >= 1
        announced: set[str] = set()
        async with asyncio.timeout(5):
            async for notification in listening.notifies():
                announced.update(account_ids_of(notification.payload) or [user_id])
                if user_id in announced:
                    break
    assert user_id in announced


@pytest.mark.parametrize("payload", [
    b'{"id":"evt_nul_%s","type":"payment_intent.succeeded","created":1,"data":{"object":{"metadata":"\\u0000"}}}',
    b'{"id":"evt_sur_%s","type":"payment_intent.succeeded","created":1,"data":{"object":{"metadata":"\\ud800"}}}',
    b'{"id":"evt_deep_%s","type":"payment_intent.succeeded","created":1,"data":' + b"[" * 500 + b"]" * 500 + b"}",
    b'{"id":"evt_big_%s","type":"payment_intent.succeeded","created":1e20,"data":{"object":{}}}',
    b'{"id":"evt_nan_%s","type":"payment_intent.succeeded","created":NaN,"data":{"object":{}}}',
    b'{"id":"evt_inf_%s","type":"payment_intent.succeeded","created":1,"data":{"object":{"x":-Infinity}}}',
])
async def test_a_verified_payload_that_cannot_be_read_is_recorded_on_postgres(paying, user_id, engine, payload):
    """PostgreSQL's jsonb refuses \\u0000, lone surrogates and very deep nesting: kept as text, never a 500."""
    from billing.domain.errors import InvalidArgument

    payload = payload.replace(b"%s", user_id.replace("-", "_").encode())
    for _ in range(2):  # the redelivery is answered the same, from the record
        with pytest.raises(InvalidArgument) as malformed:
            await handle_webhook(paying, payload, VALID_SIGNATURE)
        assert malformed.value.field == "payload"
    import hashlib

    unreadable = "unreadable:" + hashlib.sha256(payload).hexdigest()[:32]  # not even JSON: no id to read
    async with engine.connect() as connection:
        rows = (await connection.execute(text(
            "SELECT outcome, payload IS NOT NULL OR payload_text IS NOT NULL FROM webhook_events "
            "WHERE event_id LIKE :p OR event_id = :u"), {"p": "%" + user_id.replace("-", "_"), "u": unreadable})).all()
    assert [tuple(r) for r in rows] == [("malformed", True)]


async def test_one_payment_credits_one_account_on_postgres(paying, deps, user_id, account, customer, clock, engine):
    from billing.service.accounts import create_account

    other = user_id + "-other"
    await create_account(deps, other, "free")
    async with deps.storage.transaction() as uow:
        await uow.payment_profiles.add_customer(other, f"cus_{other}", deps.clock.now())
        await uow.commit()
    now, pi = unix(clock.now()), f"pi_{user_id}_shared"
    honest = se.payment_intent_succeeded(pi, user_id, "mini", 60, 499, now, customer=customer)
    edited = se.payment_intent_succeeded(pi, other, "mini", 60, 499, now, customer=f"cus_{other}")
    outcomes = await asyncio.gather(deliver(paying, honest), deliver(paying, edited))
    assert sorted(o.outcome for o in outcomes) == ["mismatch", "processed"]
    async with engine.connect() as connection:
        credited = (await connection.execute(text(
            "SELECT account_id FROM ledger_events WHERE type = 'package_credit' AND metadata->>'payment_id' = :p"),
            {"p": pi})).scalars().all()
    assert len(credited) == 1


async def test_a_refund_after_rollover_takes_back_the_rollover_on_postgres(
    paying, provider, user_id, account, customer, clock, advance, assert_ledger_balanced
):
    await subscribe_to_starter(paying, provider, user_id, customer, clock.now())
    advance(days=30, hours=1)
    assert await upkeep_idle_accounts(paying) >= 1  # the period closed: 150 minutes in a rollover bucket
    await deliver(paying, se.charge_refunded(f"ch_{user_id}", f"pi_in_{user_id}", 999, 999, unix(clock.now()),
                                             customer=customer))
    report = await get_balance(paying, user_id)
    assert [b for b in report.view.paid if b.source == "rollover"] == []
    await assert_ledger_balanced(user_id)


async def test_a_recorded_upgrade_is_claimed_by_one_invoice_on_postgres(deps, user_id, account, clock):
    from billing.service.provider_events import PlanChange

    now = clock.now()
    change = PlanChange(
        account_id=user_id, price_id="price_up", subscription_id=f"sub_{user_id}", from_plan_key="starter",
        to_plan_key="business", currency="USD", from_price_cents=999, period_start=now,
        period_end=now + timedelta(days=30), resume_cancellation=False, requested_at=now,
    )
    async with deps.storage.transaction() as uow:
        await uow.plan_changes.add(change)
        await uow.plan_changes.add(change)  # a retried request records nothing more
        await uow.commit()
    async with deps.storage.transaction() as uow:
        assert await uow.plan_changes.get(user_id, "price_up") == change
        claims = [await uow.plan_changes.claim(user_id, "price_up", invoice) for invoice in ("in_1", "in_2", "in_1")]
        assert await uow.plan_changes.claim(user_id, "price_other", "in_3") is False
        await uow.commit()
    assert claims == [True, False, True]  # the first invoice again (a redelivery) still holds it
