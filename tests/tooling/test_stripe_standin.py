"""The Stripe stand-in, driven by the real stripe SDK: customers, one-time Checkout payments, idempotency, the hosted page, refunds, saved cards, errors, webhook deliveries, test controls."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
import stripe

from devstack.standin.forms import decode_form
from devstack.standin.objects import API_VERSION
from devstack.standin.stripe_standin import StripeStandin

from tests.support.stripe_standin_harness import (  # noqa: F401 - fixtures and helpers
    SECRET, client, clock, payment_session, raw, receiver, standin, subscribed,
)


def test_form_bodies_decode_into_nested_objects_and_arrays():
    assert decode_form(
        "line_items[0][price_data][currency]=usd&line_items[0][quantity]=2&line_items[1][price]=p"
        "&metadata[user_id]=u1&metadata[0]=zero&expand[]=a&expand[]=b&note="
    ) == {
        "line_items": [{"price_data": {"currency": "usd"}, "quantity": "2"}, {"price": "p"}],
        "metadata": {"user_id": "u1", "0": "zero"}, "expand": ["a", "b"], "note": "",
    }


def test_customers_are_created_read_and_updated(client):
    customer = client.v1.customers.create(params={"email": "a@example.com", "name": "A",
                                                  "metadata": {"user_id": "u1", "drop": "x"}})
    assert customer.object == "customer" and customer.id.startswith("cus_")
    customer = client.v1.customers.update(customer.id, params={"metadata": {"drop": "", "tier": "gold"}})
    assert client.v1.customers.retrieve(customer.id).metadata.to_dict() == {"user_id": "u1", "tier": "gold"}
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.customers.update(customer.id, params={"invoice_settings": {"default_payment_method": "pm_nope"}})
    assert refused.value.param == "invoice_settings[default_payment_method]"


def test_a_checkout_payment_is_completed_with_signed_webhooks(client, standin, receiver):
    customer = client.v1.customers.create(params={"email": "buyer@example.com"})
    session = payment_session(client, customer.id)
    assert session.object == "checkout.session" and session.id.startswith("cs_test_")
    assert (session.status, session.payment_status, session.mode) == ("open", "unpaid", "payment")
    assert (session.amount_total, session.currency, session.customer) == (1234, "usd", customer.id)
    assert session.url == f"{standin.api_base}/checkout/{session.id}"
    assert session.payment_intent is None and session.subscription is None
    assert session.client_reference_id == "u1" and session.metadata.to_dict() == {"user_id": "u1", "pack": "small"}

    events = standin.pay(session.id)

    assert receiver.types() == ["payment_intent.succeeded", "charge.succeeded", "checkout.session.completed"]
    assert [event["id"] for event in events] == [event.id for event in receiver.events]
    intent, charge, completed = (event.data.object for event in receiver.events)
    assert intent.metadata.to_dict() == {"user_id": "u1", "pack": "small"} and intent.status == "succeeded"
    assert (charge.amount, charge.amount_refunded, charge.refunded, charge.paid) == (1234, 0, False, True)
    assert charge.payment_intent == intent.id and charge.metadata.to_dict() == intent.metadata.to_dict()
    assert intent.latest_charge == charge.id
    assert completed.metadata.to_dict() == {"user_id": "u1", "pack": "small"} and completed.payment_intent == intent.id
    assert all(event.api_version == API_VERSION and event.livemode is False for event in receiver.events)
    retrieved = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["payment_intent"]})
    assert (retrieved.status, retrieved.payment_status) == ("complete", "paid")
    assert retrieved.payment_intent.metadata.to_dict() == {"user_id": "u1", "pack": "small"}
    assert all(record["last_delivery_status"] == 200 for record in standin.events())


def test_an_idempotency_key_replays_the_first_answer_and_refuses_other_parameters(client, standin, receiver):
    customer = client.v1.customers.create(params={"email": "buyer@example.com"})
    key = {"idempotency_key": "checkout-u1-1"}
    params = {
        "mode": "payment", "customer": customer.id, "success_url": "https://app.example/done",
        "line_items": [{"price_data": {"currency": "usd", "unit_amount": 500, "product_data": {"name": "C"}},
                        "quantity": 1}],
    }
    first = client.v1.checkout.sessions.create(params=params, options=key)
    again = client.v1.checkout.sessions.create(params=params, options=key)
    assert again.id == first.id
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    with pytest.raises(stripe.IdempotencyError):
        client.v1.checkout.sessions.create(params={**params, "client_reference_id": "other"}, options=key)
    other_key = stripe.StripeClient("sk_test_other", base_addresses={"api": standin.api_base})
    assert other_key.v1.checkout.sessions.create(params=params, options=key).id != first.id  # keys are per API key


def test_the_hosted_page_shows_the_amount_and_pays_by_form_post(client, standin, receiver):
    customer = client.v1.customers.create(params={"email": "buyer@example.com"})
    session = payment_session(client, customer.id)
    status, headers, page = raw(standin, "GET", f"/checkout/{session.id}")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "12.34 USD" in page.decode() and f"action='{session.id}/pay'" in page.decode()
    assert "https://app.example/cancel" in page.decode()

    form = {"Content-Type": "application/x-www-form-urlencoded"}
    status, headers, _ = raw(standin, "POST", f"/checkout/{session.id}/pay", b"outcome=decline", form)
    assert status == 303 and headers["Location"] == f"{session.url}?declined=1"
    assert receiver.types() == ["payment_intent.payment_failed", "charge.failed"]
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"
    receiver.take()

    status, headers, _ = raw(standin, "POST", f"/checkout/{session.id}/pay", b"outcome=succeed", form)
    assert status == 303 and headers["Location"] == f"https://app.example/done?session={session.id}"
    assert receiver.types() == ["payment_intent.succeeded", "charge.succeeded", "checkout.session.completed"]
    status, _, _ = raw(standin, "POST", f"/checkout/{session.id}/pay", b"", {"Accept": "application/json"})
    assert status == 400  # paid already


def test_pay_answers_json_to_tests(client, standin, receiver):
    customer = client.v1.customers.create(params={"email": "buyer@example.com"})
    session = payment_session(client, customer.id)
    status, _, body = raw(standin, "POST", f"/checkout/{session.id}/pay", b"", {"Accept": "application/json"})
    answer = json.loads(body)
    assert status == 200 and answer["session"]["status"] == "complete"
    assert answer["events"] == [event.id for event in receiver.events]


def test_refunds_add_up_on_the_charge_and_cannot_exceed_it(client, standin, receiver):
    customer = client.v1.customers.create(params={"email": "buyer@example.com"})
    session = payment_session(client, customer.id)
    standin.pay(session.id)
    intent_id = client.v1.checkout.sessions.retrieve(session.id).payment_intent
    receiver.take()

    part = client.v1.refunds.create(params={"payment_intent": intent_id, "amount": 234})
    assert (part.object, part.amount, part.status, part.payment_intent) == ("refund", 234, "succeeded", intent_id)
    with pytest.raises(stripe.InvalidRequestError) as too_much:
        client.v1.refunds.create(params={"payment_intent": intent_id, "amount": 1001})
    assert too_much.value.code == "amount_too_large"
    rest = client.v1.refunds.create(params={"charge": part.charge})
    assert rest.amount == 1000

    assert receiver.types() == ["refund.created", "charge.refunded"] * 2
    refunded = [event.data.object for event in receiver.events if event.type == "charge.refunded"]
    assert [(c.amount_refunded, c.refunded) for c in refunded] == [(234, False), (1234, True)]
    with pytest.raises(stripe.InvalidRequestError) as again:
        client.v1.refunds.create(params={"payment_intent": intent_id})
    assert again.value.code == "charge_already_refunded"


def test_setup_mode_saves_a_card_for_off_session_payments(client, standin, receiver):
    customer = client.v1.customers.create(params={"email": "saver@example.com"})
    session = client.v1.checkout.sessions.create(params={
        "mode": "setup", "customer": customer.id, "currency": "usd", "success_url": "https://app.example/saved",
    })
    standin.pay(session.id)
    assert receiver.types() == ["setup_intent.succeeded", "checkout.session.completed"]
    setup, completed = (event.data.object for event in receiver.events)
    assert (setup.status, setup.customer, completed.setup_intent) == ("succeeded", customer.id, setup.id)
    method = client.v1.payment_methods.retrieve(setup.payment_method)
    assert method.customer == customer.id
    customer = client.v1.customers.update(customer.id, params={
        "invoice_settings": {"default_payment_method": method.id},
    })
    assert customer.invoice_settings.default_payment_method == method.id


def test_off_session_payment_intents_follow_the_forced_outcome(client, standin, receiver):
    customer = client.v1.customers.create(params={"email": "saver@example.com"})
    session = client.v1.checkout.sessions.create(params={"mode": "setup", "customer": customer.id})
    standin.pay(session.id)
    method_id = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["setup_intent"]}) \
        .setup_intent.payment_method
    receiver.take()
    charge = {"amount": 700, "currency": "usd", "customer": customer.id, "payment_method": method_id,
              "off_session": True, "confirm": True, "metadata": {"reason": "top-up"}}

    intent = client.v1.payment_intents.create(params=charge)
    assert (intent.status, intent.amount_received) == ("succeeded", 700)
    assert intent.metadata.to_dict() == {"reason": "top-up"}
    assert receiver.types() == ["payment_intent.succeeded", "charge.succeeded"]
    receiver.take()

    raw(standin, "POST", "/_standin/next_off_session_outcome", json.dumps({"outcome": "decline"}).encode())
    with pytest.raises(stripe.CardError) as declined:
        client.v1.payment_intents.create(params=charge)
    assert declined.value.code == "card_declined"
    failed_intent = declined.value.json_body["error"]["payment_intent"]
    assert failed_intent["status"] == "requires_payment_method"
    assert receiver.types() == ["payment_intent.payment_failed", "charge.failed"]

    standin.set_next_off_session_outcome("requires_action")
    with pytest.raises(stripe.CardError) as needs_auth:
        client.v1.payment_intents.create(params=charge)
    assert needs_auth.value.code == "authentication_required"
    assert client.v1.payment_intents.create(params=charge).status == "succeeded"  # the control is one-shot

    with pytest.raises(stripe.InvalidRequestError) as no_method:
        client.v1.payment_intents.create(params={**charge, "payment_method": None})
    assert no_method.value.param == "payment_method"


def test_prices_are_found_by_lookup_key(client):
    product = client.v1.products.create(params={"name": "Credits"})
    price = client.v1.prices.create(params={"currency": "usd", "unit_amount": 999, "product": product.id,
                                            "lookup_key": "credits_small", "metadata": {"credits": "100"}})
    found = client.v1.prices.list(params={"lookup_keys": ["credits_small"]})
    assert found.object == "list" and [p.id for p in found.data] == [price.id] and found.has_more is False
    assert client.v1.prices.retrieve(price.id).product == product.id
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.prices.create(params={"currency": "usd", "unit_amount": 1, "product": product.id,
                                        "lookup_key": "credits_small"})
    moved = client.v1.prices.create(params={"currency": "usd", "unit_amount": 1, "product": product.id,
                                            "lookup_key": "credits_small", "transfer_lookup_key": True})
    assert [p.id for p in client.v1.prices.list(params={"lookup_keys": ["credits_small"]}).data] == [moved.id]
    session = client.v1.checkout.sessions.create(params={
        "mode": "payment", "line_items": [{"price": price.id, "quantity": 3}], "success_url": "https://a.example/",
    })
    assert session.amount_total == 2997


def test_stripe_errors_have_stripe_shapes(client, standin):
    status, _, body = raw(standin, "GET", "/v1/customers/cus_x")
    assert status == 401 and json.loads(body)["error"]["type"] == "invalid_request_error"
    with pytest.raises(stripe.AuthenticationError):
        stripe.StripeClient("pk_test_x", base_addresses={"api": standin.api_base}).v1.customers.retrieve("cus_x")
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.customers.retrieve("cus_missing")
    assert (missing.value.http_status, missing.value.code) == (404, "resource_missing")
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.customers.create(params={"emial": "typo@example.com"})
    assert (unknown.value.http_status, unknown.value.param) == (400, "emial")
    with pytest.raises(stripe.InvalidRequestError) as no_mode:
        client.v1.checkout.sessions.create(params={"success_url": "https://a.example/"})
    assert no_mode.value.param == "mode"
    status, headers, _ = raw(standin, "GET", "/v1/customers", headers={"Authorization": "Bearer sk_test_x"})
    assert status == 200 and headers["Stripe-Version"] == API_VERSION


def test_expired_sessions_cannot_be_paid(client, standin, receiver):
    session = payment_session(client, None)
    expired = client.v1.checkout.sessions.expire(session.id)
    assert (expired.status, expired.url) == ("expired", None)
    assert receiver.types() == ["checkout.session.expired"]
    with pytest.raises(Exception, match="expired"):
        standin.pay(session.id)


def test_failed_deliveries_are_recorded_and_can_be_resent(client, standin, receiver):
    receiver.status = 500
    client.v1.checkout.sessions.expire(payment_session(client, None).id)
    record = standin.events()[-1]
    assert (record["delivery_attempts"], record["last_delivery_status"]) == (1, 500)
    receiver.status = 200
    status, _, body = raw(standin, "POST", f"/_standin/events/{record['id']}/resend")
    assert status == 200 and json.loads(body)["delivery_attempts"] == 2
    assert standin.events()[-1]["last_delivery_status"] == 200
    assert [event.id for event in receiver.events] == [record["id"], record["id"]]

    raw(standin, "POST", "/_standin/webhooks", json.dumps({"url": None}).encode())
    client.v1.checkout.sessions.expire(payment_session(client, None).id)
    assert standin.events()[-1]["delivery_attempts"] == 0 and len(receiver.events) == 2


def test_signed_delivery_is_accepted_by_the_sdk_and_stale_signatures_are_not(client, standin):
    client.v1.checkout.sessions.expire(payment_session(client, None).id)
    event = standin.events()[-1]
    payload, header = standin.signed_delivery(event, SECRET)
    assert stripe.Webhook.construct_event(payload, header, SECRET, tolerance=300).id == event["id"]
    assert b"delivery_attempts" not in payload
    stale_payload, stale_header = standin.signed_delivery(event, SECRET, timestamp=int(time.time()) - 3600)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(stale_payload, stale_header, SECRET, tolerance=300)


def test_the_command_line_prints_its_api_base():
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack.standin.stripe_standin", "--port", "0", "--webhook-secret", SECRET],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("Stripe stand-in: http://127.0.0.1:")
        base = line.split()[-1]
        client = stripe.StripeClient("sk_test_x", base_addresses={"api": base}, max_network_retries=0)
        assert client.v1.customers.create(params={"email": "cli@example.com"}).id.startswith("cus_")
    finally:
        process.terminate()
        assert process.wait(timeout=5) == 0


def test_test_controls_answer_over_http(client, standin, receiver):
    sub_id = subscribed(client, standin, receiver)
    status, _, body = raw(standin, "POST", f"/_standin/subscriptions/{sub_id}/renew", b'{"fail": true}')
    answer = json.loads(body)
    assert status == 200 and answer["subscription"]["status"] == "past_due"
    assert answer["events"] == [event.id for event in receiver.events]
    status, _, body = raw(standin, "GET", "/_standin/events")
    assert status == 200 and [event["id"] for event in json.loads(body)] == [event["id"] for event in standin.events()]
    status, _, body = raw(standin, "POST", "/_standin/next_off_session_outcome", b'{"outcome": "maybe"}')
    assert status == 400 and json.loads(body)["error"]["param"] == "outcome"
