"""A package payment's delivery on PostgreSQL: the payment's claim, the credit (wallet, ledger, payment
record, idempotency answer) and the delivery's record commit in one transaction (docs/decisions.md, "A
webhook delivery in one transaction"). A failure after any of its statements leaves none of them; the
record of a credit exists if and only if the credit committed."""

from __future__ import annotations

import dataclasses
import json

import psycopg
import pytest
from sqlalchemy import text

from billing.adapters.db import unit_of_work
from billing.adapters.db.payment_repositories import (
    PostgresPaymentProfiles, PostgresPayments, PostgresProviderEventInbox,
)
from billing.service.ports import Unavailable
from billing.service.webhooks import handle_webhook
from tests.support import stripe_events as se
from tests.support.fake_payments import VALID_SIGNATURE, FakePaymentProvider


@pytest.fixture
def paying(deps):
    return dataclasses.replace(deps, payments=FakePaymentProvider())



async def deliver(deps, evt):
    return await handle_webhook(deps, json.dumps(evt).encode(), VALID_SIGNATURE)


def crash_after(owner, name):
    """`owner.name` runs, then the connection is lost (as a crash of the server or of the
    database between that statement and COMMIT looks to the service)."""
    original = getattr(owner, name)

    async def crashing(*args, **kwargs):
        await original(*args, **kwargs)
        raise psycopg.OperationalError(f"injected: connection lost after {name}")

    return crashing


CRASH_POINTS = {
    "the claim": (PostgresPaymentProfiles, "claim_payment"),
    "the record": (PostgresProviderEventInbox, "record"),
    "the credit statement": (unit_of_work, "save_wallets"),
    "the payment record": (PostgresPayments, "flush"),
}


async def written(engine, user_id: str, payment_id: str, event_id: str) -> dict[str, int]:
    queries = {
        "credits": "SELECT count(*) FROM ledger_events WHERE account_id = :a AND type = 'package_credit'",
        "payments": "SELECT count(*) FROM payments WHERE account_id = :a AND payment_id = :p",
        "answers": "SELECT count(*) FROM idempotency_records WHERE account_id = :a AND idempotency_key = 'payment:' || :p",
        "owners": "SELECT count(*) FROM payment_owners WHERE payment_id = :p",
        "records": "SELECT count(*) FROM webhook_events WHERE event_id = :e",
    }
    async with engine.connect() as connection:
        return {
            name: (await connection.execute(text(query), {"a": user_id, "p": payment_id, "e": event_id})).scalar()
            for name, query in queries.items()
        }


@pytest.mark.parametrize("point", list(CRASH_POINTS))
async def test_a_crash_after_any_statement_of_the_credit_leaves_nothing_and_the_redelivery_credits_once(
    paying, user_id, customer, clock, engine, assert_ledger_balanced, monkeypatch, point
):
    payment_id = f"pi_{user_id}"
    paid = se.payment_intent_succeeded(payment_id, user_id, "mini", 60, 499, int(clock.now().timestamp()),
                                       customer=customer)
    owner, name = CRASH_POINTS[point]
    monkeypatch.setattr(owner, name, crash_after(owner, name))
    with pytest.raises(Unavailable):
        await deliver(paying, paid)
    nothing = dict.fromkeys(["credits", "payments", "answers", "owners", "records"], 0)
    assert await written(engine, user_id, payment_id, paid["id"]) == nothing
    monkeypatch.undo()
    outcome = await deliver(paying, paid)  # the provider's redelivery
    assert (outcome.outcome, outcome.detail) == ("processed", "credited 3600s")  # not a replay: nothing had committed
    assert await written(engine, user_id, payment_id, paid["id"]) == dict.fromkeys(nothing, 1)
    assert (await deliver(paying, paid)).outcome == "duplicate"
    await assert_ledger_balanced(user_id)


async def test_the_record_of_a_credit_exists_if_and_only_if_the_credit_committed(
    paying, user_id, customer, clock, engine, monkeypatch
):
    """Deliveries of many payments, every other one failing after its credit statement: the
    recorded events are exactly the credited payments' (and a redelivery is never a duplicate
    of a credit that did not happen)."""
    now = int(clock.now().timestamp())
    events = [se.payment_intent_succeeded(f"pi_{user_id}_{n}", user_id, "mini", 60, 499, now, customer=customer)
              for n in range(6)]
    original = unit_of_work.save_wallets
    for n, evt in enumerate(events):
        if n % 2:
            monkeypatch.setattr(unit_of_work, "save_wallets", crash_after(unit_of_work, "save_wallets"))
            with pytest.raises(Unavailable):
                await deliver(paying, evt)
            monkeypatch.setattr(unit_of_work, "save_wallets", original)
        else:
            assert (await deliver(paying, evt)).outcome == "processed"
    async with engine.connect() as connection:
        credited = set((await connection.execute(text(
            "SELECT metadata->>'payment_id' FROM ledger_events WHERE account_id = :a AND type = 'package_credit'"),
            {"a": user_id})).scalars())
        recorded = set((await connection.execute(text(
            "SELECT event_id FROM webhook_events WHERE account_id = :a AND outcome = 'processed'"),
            {"a": user_id})).scalars())
    assert credited == {f"pi_{user_id}_{n}" for n in range(0, 6, 2)}
    assert recorded == {events[n]["id"] for n in range(0, 6, 2)}


async def test_a_record_on_its_own_is_one_statement_without_a_transaction(deps, engine, user_id):
    """Outcomes that change no wallet (a replayed credit, ignored, mismatch, malformed) are recorded
    by one insert in autocommit: no BEGIN and COMMIT round trips; a second statement is refused."""
    event_id = f"evt_single_{user_id}"
    async with deps.storage.single_write() as uow:
        await uow.provider_events.record(event_id, "payment_intent.succeeded", "ignored", None, "test", deps.clock.now())
        assert (await uow.connection()).autocommit
        with pytest.raises(AssertionError, match="one statement"):
            await uow.provider_events.outcome_of(event_id)
        await uow.commit()
    async with engine.connect() as connection:
        assert (await connection.execute(text("SELECT outcome FROM webhook_events WHERE event_id = :e"),
                                         {"e": event_id})).scalar() == "ignored"
