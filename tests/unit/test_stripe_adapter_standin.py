"""The real Stripe adapter (StripePayments) against the stand-in: the parameters it sends are ones Stripe accepts."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import parse_qs, urlsplit

import pytest
import stripe

from billing.adapters.stripe_provider_events import parse_verified_event
from billing.adapters.stripe_payments import StripePayments
from billing.service.provider_events import CheckoutItem, CheckoutRequest, InvoicePaid

from tests.support.stripe_standin_harness import (  # noqa: F401 - fixtures and helpers
    FEB_29, JAN_31, SECRET, client, clock, receiver, standin,
)

PRO = CheckoutItem(kind="subscription", key="pro", name="Pro", minutes=600, currency="USD", unit_amount_cents=2000)
MAX = CheckoutItem(kind="subscription", key="max", name="Max", minutes=2000, currency="USD", unit_amount_cents=5000)
STARTER = CheckoutItem(kind="subscription", key="starter", name="Starter", minutes=100, currency="USD",
                       unit_amount_cents=500)
PACK = CheckoutItem(kind="package", key="small", name="Small pack", minutes=60, currency="USD", unit_amount_cents=900)
SUCCESS_URL = "https://app.example/?purchased=true"


@pytest.fixture
def payments(standin):
    return StripePayments("sk_test_standin", (SECRET,), api_base=standin.api_base)


def _subscribe(payments, standin, receiver, item=PRO):
    customer_id = asyncio.run(payments.create_customer("u1"))
    session = asyncio.run(payments.create_checkout(
        CheckoutRequest("u1", customer_id, item, "first"), SUCCESS_URL, "https://app.example/",
    ))
    standin.pay(session.session_id)
    receiver.take()
    sub = stripe.StripeClient("sk_test_standin", base_addresses={"api": standin.api_base}).v1.subscriptions.list(
        {"customer": customer_id}).data[0]
    return asyncio.run(payments.subscription(sub.id))


def _invoice_paid(event) -> InvoicePaid:
    parsed = parse_verified_event(json.dumps(event.to_dict(), default=str).encode()).event
    assert isinstance(parsed, InvoicePaid)
    return parsed


def test_an_upgrade_is_a_pending_update_billed_now_and_names_both_plans(payments, standin, receiver, clock, client):
    snapshot = _subscribe(payments, standin, receiver)
    assert snapshot.plan_key == "pro"
    clock.now = JAN_31 + (FEB_29 - JAN_31) // 2

    price_id = asyncio.run(payments.create_plan_price(snapshot, MAX, "up"))
    changed = asyncio.run(payments.change_plan(snapshot, price_id, MAX, "pro", immediately=True, idempotency_key="up"))

    assert (changed.plan_key, changed.cancel_at_period_end, changed.item_id) == ("max", False, snapshot.item_id)
    assert receiver.types() == ["customer.subscription.updated", "invoice.paid"]
    paid = _invoice_paid(receiver.events[1])
    assert (paid.plan_key, paid.previous_plan_key, paid.billing_reason) == ("max", "pro", "subscription_update")
    assert paid.amount_cents == paid.total_cents == 1500  # half a period of the 30 USD difference
    assert paid.price_ids == (price_id,)  # what the service's record of the upgrade is found by
    sub = client.v1.subscriptions.retrieve(snapshot.subscription_id)
    assert sub["items"].data[0].price.unit_amount == 5000


def test_a_downgrade_of_a_canceling_subscription_resumes_it_then_changes_the_price_unbilled(
        payments, standin, receiver, client):
    snapshot = _subscribe(payments, standin, receiver)
    snapshot = asyncio.run(payments.cancel_at_period_end(snapshot.subscription_id, "cancel"))
    assert snapshot.cancel_at_period_end
    receiver.take()

    price_id = asyncio.run(payments.create_plan_price(snapshot, STARTER, "down"))
    changed = asyncio.run(payments.change_plan(snapshot, price_id, STARTER, "pro", immediately=False,
                                               idempotency_key="down"))

    assert (changed.plan_key, changed.cancel_at_period_end) == ("starter", False)
    assert receiver.types() == ["customer.subscription.updated", "customer.subscription.updated"]  # no invoice
    sub = client.v1.subscriptions.retrieve(snapshot.subscription_id)
    assert sub["items"].data[0].price.unit_amount == 500
    assert "upgraded_from" not in sub.metadata  # the empty value removes it
    standin.renew(snapshot.subscription_id)
    renewal = _invoice_paid(receiver.events[-1])
    assert (renewal.plan_key, renewal.previous_plan_key, renewal.amount_cents) == ("starter", None, 500)


def test_an_upgrade_of_a_canceling_subscription_paid_at_once_resumes_it_at_once(payments, standin, receiver, clock):
    snapshot = _subscribe(payments, standin, receiver)
    snapshot = asyncio.run(payments.cancel_at_period_end(snapshot.subscription_id, "cancel"))
    receiver.take()
    clock.now = JAN_31 + (FEB_29 - JAN_31) // 2
    price_id = asyncio.run(payments.create_plan_price(snapshot, MAX, "up-c"))
    changed = asyncio.run(payments.change_plan(snapshot, price_id, MAX, "pro", immediately=True, idempotency_key="up-c"))
    assert not changed.cancel_at_period_end  # paid at once: resumed at once
    paid = _invoice_paid(next(e for e in receiver.events if e.type == "invoice.paid"))
    assert price_id in paid.price_ids  # paid later, the webhook finds the upgrade (and its resume) by it
    resumed = asyncio.run(payments.resume_subscription(snapshot.subscription_id, "again"))
    assert not resumed.cancel_at_period_end


def test_the_stand_in_refuses_what_a_pending_update_cannot_carry(payments, standin, receiver, client):
    snapshot = _subscribe(payments, standin, receiver)
    for params, param in [
        ({"cancel_at_period_end": False}, "cancel_at_period_end"),
        ({"items": [{"id": snapshot.item_id, "price_data": {
            "currency": "usd", "unit_amount": 5000, "product": "prod_x", "recurring": {"interval": "month"}}}]},
         "items[0][price_data]"),
    ]:
        with pytest.raises(stripe.InvalidRequestError) as refused:
            client.v1.subscriptions.update(snapshot.subscription_id, params={
                **params, "payment_behavior": "pending_if_incomplete", "proration_behavior": "always_invoice",
            })
        assert refused.value.http_status == 400 and refused.value.param == param
        assert refused.value.error.type == "invalid_request_error"
        assert "pending_if_incomplete" in str(refused.value.user_message)
    assert receiver.types() == []
    # Without pending_if_incomplete the same parameters are accepted.
    client.v1.subscriptions.update(snapshot.subscription_id, params={"cancel_at_period_end": True})


def test_a_package_checkout_carries_its_metadata_on_the_session_and_its_payment_intent(payments, standin, client):
    customer_id = asyncio.run(payments.create_customer("u1"))

    created = asyncio.run(payments.create_checkout(
        CheckoutRequest("u1", customer_id, PACK, "buy-1"), SUCCESS_URL, "https://app.example/",
    ))

    session = client.v1.checkout.sessions.retrieve(created.session_id)
    expected = {"user_id": "u1", "purpose": "package", "package_key": "small", "package_minutes": "60"}
    assert session.metadata.to_dict() == expected
    assert (session.mode, session.customer, session.client_reference_id) == ("payment", customer_id, "u1")
    assert parse_qs(urlsplit(session.success_url).query) == {"purchased": ["true"]}
    standin.pay(created.session_id)
    session = client.v1.checkout.sessions.retrieve(created.session_id)
    intent = client.v1.payment_intents.retrieve(session.payment_intent)
    assert intent.metadata.to_dict() == expected
    assert (intent.amount, intent.currency, intent.status) == (900, "usd", "succeeded")


def test_a_charges_refunds_are_listed_oldest_first_as_its_charge_refunded_payload_no_longer_embeds_them(
        payments, standin, receiver, client, clock):
    customer_id = asyncio.run(payments.create_customer("u1"))
    created = asyncio.run(payments.create_checkout(
        CheckoutRequest("u1", customer_id, PACK, "buy-2"), SUCCESS_URL, "https://app.example/",
    ))
    standin.pay(created.session_id)
    intent_id = client.v1.checkout.sessions.retrieve(created.session_id).payment_intent
    receiver.take()
    first = client.v1.refunds.create(params={"payment_intent": intent_id, "amount": 300})
    # the same second: the list's order (newest first) tells them apart
    second = client.v1.refunds.create(params={"payment_intent": intent_id, "amount": 600})

    charge = [e.data.object for e in receiver.events if e.type == "charge.refunded"][-1]
    assert "refunds" not in charge  # not embedded since API version 2022-11-15, so the adapter asks
    assert asyncio.run(payments.refunds_of_charge(charge.id)) == ((first.id, 300), (second.id, 600))


def test_a_charge_refunded_in_more_parts_than_one_page_is_listed_whole(payments, standin, receiver, client, monkeypatch):
    """Issue 19, item 20: Stripe pages refund lists (has_more); every page is read, oldest first."""
    from billing.adapters import stripe_payments

    monkeypatch.setattr(stripe_payments, "REFUNDS_PAGE", 2)
    customer_id = asyncio.run(payments.create_customer("u1"))
    created = asyncio.run(payments.create_checkout(
        CheckoutRequest("u1", customer_id, PACK, "buy-3"), SUCCESS_URL, "https://app.example/",
    ))
    standin.pay(created.session_id)
    intent_id = client.v1.checkout.sessions.retrieve(created.session_id).payment_intent
    receiver.take()
    refunds = [client.v1.refunds.create(params={"payment_intent": intent_id, "amount": 100}) for _ in range(5)]
    charge = [e.data.object for e in receiver.events if e.type == "charge.refunded"][-1]
    assert asyncio.run(payments.refunds_of_charge(charge.id)) == tuple((r.id, 100) for r in refunds)


def test_a_payload_listing_part_of_the_refunds_is_not_trusted_as_the_list():
    from tests.support import stripe_events as se

    evt = se.charge_refunded("ch_1", "pi_1", 900, 300, 1_700_000_000, refunds=[("re_2", 100), ("re_3", 100)])
    evt["data"]["object"]["refunds"]["has_more"] = True
    parsed = parse_verified_event(json.dumps(evt).encode()).event
    assert parsed.refunds == ()  # the service asks Stripe for all of them
