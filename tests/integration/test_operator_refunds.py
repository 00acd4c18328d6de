"""Operator refunds on PostgreSQL (issue 23, review item 2): a refund never happens twice nor exists
without its audit entry, whatever fails between the provider's answer and the commit, however late
the retry (the provider has forgotten its idempotency key), after the webhook applied the refund,
and when two requests with one key run at once."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid

import pytest
from sqlalchemy import select

from billing.adapters.db.audit_entries import PostgresAuditTrail
from billing.adapters.db.refund_intents import PostgresRefundIntents
from billing.adapters.db.tables import audit_entries, refund_intents
from billing.domain.errors import IdempotencyKeyReused, PaymentProviderRefused, RequestInProgress
from billing.service import operator_refunds
from billing.service.payment_credits import credit_package
from billing.service.ports import Unavailable
from billing.service.webhooks import handle_webhook
from tests.support import stripe_events as se
from tests.support.fake_payments import VALID_SIGNATURE, FakePaymentProvider

OPERATOR = "bk_operator_refunds"
AMOUNT = 499


def key() -> str:
    return uuid.uuid4().hex


@pytest.fixture
def provider():
    return FakePaymentProvider()


@pytest.fixture
async def paid(deps, provider, user_id, account):
    """(deps paying through the fake provider, the id of a 4.99 payment the account made)."""
    paying = dataclasses.replace(deps, payments=provider)
    payment_id = f"pi_{uuid.uuid4().hex[:12]}"
    async with paying.storage.transaction() as uow:
        await uow.payment_profiles.add_customer(user_id, f"cus_{user_id}", deps.clock.now())
        await uow.commit()
    event = provider.read_verified_event(json.dumps(se.payment_intent_succeeded(
        payment_id, user_id, "mini", 30, AMOUNT, int(deps.clock.now().timestamp()), customer=f"cus_{user_id}")).encode())
    await credit_package(paying, user_id, event.event)
    return paying, payment_id


@pytest.fixture
def rows(engine):
    async def read(table, user_id: str):
        async with engine.connect() as connection:
            return (await connection.execute(select(table).where(table.c.account_id == user_id))).mappings().all()

    return read


@pytest.fixture
def audit_fails_once(monkeypatch):
    """The audit entry's commit fails (the database went away) once the provider has refunded."""
    add = PostgresAuditTrail.add
    failures = [Unavailable("database went away", kind="database")]

    async def failing_add(self, entry):
        if failures:
            raise failures.pop()
        return await add(self, entry)

    monkeypatch.setattr(PostgresAuditTrail, "add", failing_add)


async def _refund(deps, user_id, payment_id, idempotency_key, amount_cents=0):
    return await operator_refunds.refund_payment(deps, OPERATOR, user_id, payment_id, amount_cents, "customer asked",
                                                 idempotency_key)


async def test_the_audit_commit_fails_and_a_retry_days_later_completes_the_one_refund(
    paid, provider, user_id, rows, audit_fails_once,
):
    paying, payment_id = paid
    idempotency_key = key()
    with pytest.raises(Unavailable):
        await _refund(paying, user_id, payment_id, idempotency_key)
    [refund_id] = [r[0] for r in provider.issued_refunds]
    [intent] = await rows(refund_intents, user_id)
    assert (intent["state"], intent["refund_id"], intent["idempotency_key"]) == ("requested", None, idempotency_key)
    assert provider.issued_refunds[0][3]["refund_intent_id"] == intent["intent_id"]
    assert await rows(audit_entries, user_id) == []

    provider.forget_idempotency_keys()  # the retry comes after Stripe's 24 h
    result = await _refund(paying, user_id, payment_id, idempotency_key)
    assert result.replayed is False and result.audit.detail["refund_id"] == refund_id
    assert result.audit.detail["refund_intent_id"] == intent["intent_id"]
    assert len(provider.issued_refunds) == 1
    [done] = await rows(refund_intents, user_id)
    assert (done["state"], done["refund_id"]) == ("refunded", refund_id)
    again = await _refund(paying, user_id, payment_id, idempotency_key)
    assert again.replayed and again.audit == result.audit and len(provider.issued_refunds) == 1
    assert [r["audit_id"] for r in await rows(audit_entries, user_id)] == [result.audit.audit_id]


async def test_a_retry_after_the_webhook_applied_the_refund_completes_it(
    paid, provider, user_id, rows, audit_fails_once, clock,
):
    paying, payment_id = paid
    idempotency_key = key()
    with pytest.raises(Unavailable):
        await _refund(paying, user_id, payment_id, idempotency_key)
    [(refund_id, _, _, _)] = provider.issued_refunds
    delivery = se.charge_refunded(f"ch_{user_id}", payment_id, AMOUNT, AMOUNT, int(clock.now().timestamp()),
                                  user_id=user_id, customer=f"cus_{user_id}", refunds=[(refund_id, AMOUNT)])
    await handle_webhook(paying, json.dumps(delivery).encode(), VALID_SIGNATURE)
    async with paying.storage.reader() as uow:
        payment = await uow.payments.get(user_id, payment_id)
    assert payment is not None and payment.refunded_cents == AMOUNT  # refunded in full here already

    provider.forget_idempotency_keys()
    result = await _refund(paying, user_id, payment_id, idempotency_key)
    assert result.audit.detail["refund_id"] == refund_id and result.audit.detail["refunded_cents_before"] == 0
    assert len(provider.issued_refunds) == 1 and len(await rows(audit_entries, user_id)) == 1


async def test_two_requests_with_one_key_at_once_make_one_refund(paid, provider, user_id, rows):
    paying, payment_id = paid
    idempotency_key = key()
    outcomes = await asyncio.gather(*(_refund(paying, user_id, payment_id, idempotency_key) for _ in range(4)),
                                    return_exceptions=True)
    answers = [o for o in outcomes if not isinstance(o, BaseException)]
    assert all(isinstance(o, RequestInProgress) for o in outcomes if isinstance(o, BaseException)), outcomes
    assert answers and len({a.audit.audit_id for a in answers}) == 1
    assert len(provider.issued_refunds) == 1 and len(await rows(audit_entries, user_id)) == 1
    late = await _refund(paying, user_id, payment_id, idempotency_key)  # what a refused one's retry gets
    assert late.replayed and late.audit.audit_id == answers[0].audit.audit_id


async def test_a_request_that_died_holding_its_intent_is_taken_over_when_its_lease_ends(
    paid, provider, user_id, rows, audit_fails_once, monkeypatch, advance,
):
    paying, payment_id = paid
    idempotency_key = key()

    async def died(self, intent, now):  # the process died: nothing released the intent
        raise Unavailable("gone")

    with monkeypatch.context() as patched:
        patched.setattr(PostgresRefundIntents, "release", died)
        with pytest.raises(Unavailable):
            await _refund(paying, user_id, payment_id, idempotency_key)
    with pytest.raises(RequestInProgress) as busy:
        await _refund(paying, user_id, payment_id, idempotency_key)
    assert busy.value.field == "idempotency_key" and busy.value.retry_after_seconds >= 1
    advance(seconds=operator_refunds.CLAIM_LEASE.total_seconds() + 1)
    result = await _refund(paying, user_id, payment_id, idempotency_key)
    assert result.audit.detail["refund_id"] == provider.issued_refunds[0][0] and len(provider.issued_refunds) == 1


async def test_a_key_still_in_use_at_the_provider_is_retryable_and_the_retry_refunds_once(
    paid, provider, user_id, rows,
):
    paying, payment_id = paid
    idempotency_key = key()
    provider.refund_failures.append(RequestInProgress("in use at the provider"))
    with pytest.raises(RequestInProgress):
        await _refund(paying, user_id, payment_id, idempotency_key)
    [intent] = await rows(refund_intents, user_id)
    assert intent["state"] == "requested"
    result = await _refund(paying, user_id, payment_id, idempotency_key)  # released: no wait for the lease
    assert result.replayed is False and len(provider.issued_refunds) == 1


async def test_a_refusal_by_the_provider_leaves_nothing_and_the_key_is_free(paid, provider, user_id, rows):
    paying, payment_id = paid
    idempotency_key = key()
    provider.refund_failures.append(PaymentProviderRefused("Stripe refused the request: charge disputed"))
    with pytest.raises(PaymentProviderRefused):
        await _refund(paying, user_id, payment_id, idempotency_key)
    assert await rows(refund_intents, user_id) == [] and await rows(audit_entries, user_id) == []
    result = await _refund(paying, user_id, payment_id, idempotency_key, amount_cents=100)
    assert result.audit.detail["amount_cents"] == 100
    with pytest.raises(IdempotencyKeyReused):
        await _refund(paying, user_id, payment_id, idempotency_key, amount_cents=200)


async def test_the_same_key_with_another_request_while_the_intent_is_open_is_refused(
    paid, provider, user_id, audit_fails_once,
):
    paying, payment_id = paid
    idempotency_key = key()
    with pytest.raises(Unavailable):
        await _refund(paying, user_id, payment_id, idempotency_key)
    with pytest.raises(IdempotencyKeyReused):
        await _refund(paying, user_id, payment_id, idempotency_key, amount_cents=100)
    assert len(provider.issued_refunds) == 1


async def _grant(deps, user_id, idempotency_key):
    from billing.service.operator_actions import grant

    return await grant(deps, OPERATOR, user_id, "gift", 600, None, "goodwill", idempotency_key)


async def test_an_open_refund_intent_keeps_its_key_from_other_actions(paid, provider, user_id, rows, audit_fails_once):
    """Review: an operator used a refund's key for a grant while the refund was open; the grant's
    entry committed, so the refund could never write its own and stayed 'requested' for ever."""
    paying, payment_id = paid
    idempotency_key = key()
    with pytest.raises(Unavailable):  # the provider refunded; the audit commit failed
        await _refund(paying, user_id, payment_id, idempotency_key)
    with pytest.raises(IdempotencyKeyReused) as reused:
        await _grant(paying, user_id, idempotency_key)
    assert reused.value.field == "idempotency_key"
    assert await rows(audit_entries, user_id) == []  # the grant rolled back with its entry
    assert not [r for r in await rows(refund_intents, user_id) if r["state"] != "requested"]
    result = await _refund(paying, user_id, payment_id, idempotency_key)  # the retry completes it
    assert result.audit.detail["refund_id"] == provider.issued_refunds[0][0]
    [done] = await rows(refund_intents, user_id)
    assert done["state"] == "refunded"
    assert [r["action"] for r in await rows(audit_entries, user_id)] == [result.audit.action]


async def test_an_intent_is_not_recorded_under_another_actions_key(paid, provider, user_id, rows, monkeypatch):
    """The other order, at the store: whatever the refund's first look saw, an intent is refused
    once an audit entry holds its key (the look and the insert are under the key's lock)."""
    paying, payment_id = paid
    idempotency_key = key()
    granted = await _grant(paying, user_id, idempotency_key)
    assert [r["audit_id"] for r in await rows(audit_entries, user_id)] == [granted.audit.audit_id]

    async def nothing_earlier(deps, request):  # the grant committed just after the refund's look
        return None

    monkeypatch.setattr(operator_refunds, "earlier_answer", nothing_earlier)
    with pytest.raises(IdempotencyKeyReused):
        await _refund(paying, user_id, payment_id, idempotency_key)
    assert await rows(refund_intents, user_id) == [] and provider.issued_refunds == []


async def test_a_grant_and_a_refund_racing_for_one_key_leave_one_request_and_no_stuck_intent(
    paid, provider, user_id, rows,
):
    paying, payment_id = paid
    for _ in range(5):
        idempotency_key = key()
        outcomes = await asyncio.gather(_grant(paying, user_id, idempotency_key),
                                        _refund(paying, user_id, payment_id, idempotency_key, amount_cents=1),
                                        return_exceptions=True)
        assert sum(not isinstance(o, BaseException) for o in outcomes) == 1, outcomes
        assert all(isinstance(o, IdempotencyKeyReused) for o in outcomes if isinstance(o, BaseException)), outcomes
    intents = await rows(refund_intents, user_id)
    assert all(r["state"] == "refunded" for r in intents)
    assert len(provider.issued_refunds) == len(intents)
    refunds_audited = [r for r in await rows(audit_entries, user_id) if r["action"] == "refund_payment"]
    assert len(refunds_audited) == len(intents)


async def test_only_the_lease_holder_releases_completes_or_removes_an_intent(
    paid, provider, user_id, rows, audit_fails_once, monkeypatch, advance, clock,
):
    """A request whose lease ran out and was taken over must not cut the new holder's lease short,
    nor complete or delete the intent under it."""
    paying, payment_id = paid
    idempotency_key = key()
    seen = []
    release = PostgresRefundIntents.release

    async def died(self, intent, now):  # keeps the first request's intent (its token) and dies
        seen.append(intent)
        raise Unavailable("gone")

    with monkeypatch.context() as patched:
        patched.setattr(PostgresRefundIntents, "release", died)
        with pytest.raises(Unavailable):
            await _refund(paying, user_id, payment_id, idempotency_key)
    [late] = seen
    advance(seconds=operator_refunds.CLAIM_LEASE.total_seconds() + 1)
    async with paying.storage.transaction() as uow:  # a second request takes it over
        assert await uow.refund_intents.claim(late, clock.now(), clock.now() + operator_refunds.CLAIM_LEASE, "other")
        await uow.commit()
    async with paying.storage.transaction() as uow:  # the first one comes back late
        await release(uow.refund_intents, late, clock.now())
        assert not await uow.refund_intents.complete(late, "re_late", clock.now())
        await uow.refund_intents.remove(late)
        await uow.commit()
    [intent] = await rows(refund_intents, user_id)
    assert intent["state"] == "requested" and intent["claim_token"] == "other"
    assert intent["claimed_until"] == clock.now() + operator_refunds.CLAIM_LEASE
    with pytest.raises(RequestInProgress):  # the holder is at work
        await _refund(paying, user_id, payment_id, idempotency_key)
