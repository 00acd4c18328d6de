"""The stand-in's subscriptions, driven by the real stripe SDK: checkout, renewals, failed payments, cancellation, price changes."""

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
    APR_30, FEB_29, JAN_31, MAR_31, client, clock, receiver, standin, subscribed, subscription_session,
)


def test_a_subscription_checkout_starts_a_subscription_with_a_paid_invoice(client, standin, receiver):
    customer = client.v1.customers.create(params={"email": "sub@example.com"})
    session = subscription_session(client, customer.id)
    standin.pay(session.id)

    assert receiver.types() == ["customer.subscription.created", "invoice.paid", "checkout.session.completed"]
    sub, invoice, completed = (event.data.object for event in receiver.events)
    assert (sub.status, sub.customer, sub.cancel_at_period_end) == ("active", customer.id, False)
    assert sub.start_date == JAN_31
    assert sub.metadata.to_dict() == {"user_id": "u1", "plan": "pro"}
    item = sub["items"].data[0]
    assert (item.current_period_start, item.current_period_end) == (JAN_31, FEB_29)  # clamped to the month's end
    assert (item.price.unit_amount, item.price.recurring.interval, item.quantity) == (2000, "month", 1)
    assert "current_period_end" not in sub  # on the item in this API version
    assert (invoice.status, invoice.amount_paid, invoice.billing_reason) == ("paid", 2000, "subscription_create")
    assert invoice.parent.subscription_details.subscription == sub.id
    assert invoice.parent.subscription_details.metadata.to_dict() == {"user_id": "u1", "plan": "pro"}
    line = invoice.lines.data[0]
    assert (line.period.start, line.period.end, line.amount) == (JAN_31, FEB_29, 2000)
    assert line.pricing.price_details.price == item.price.id
    assert (completed.subscription, completed.payment_status, completed.invoice) == (sub.id, "paid", invoice.id)
    assert client.v1.subscriptions.retrieve(sub.id).latest_invoice == invoice.id


def test_renewals_advance_the_period_and_a_failed_one_makes_the_subscription_past_due(client, standin, receiver):
    sub_id = subscribed(client, standin, receiver)

    standin.renew(sub_id)
    assert receiver.types() == ["customer.subscription.updated", "invoice.paid"]
    updated, invoice = (event.data.object for event in receiver.events)
    previous = receiver.events[0].data.previous_attributes
    assert previous["items"]["data"][0]["current_period_end"] == FEB_29
    assert updated["items"].data[0].current_period_end == MAR_31  # anchored on the 31st, not on Feb 29
    assert (invoice.billing_reason, invoice.status, invoice.amount_paid) == ("subscription_cycle", "paid", 2000)
    assert invoice.lines.data[0].period.to_dict() == {"start": FEB_29, "end": MAR_31}
    receiver.take()

    standin.renew(sub_id, fail=True)
    assert receiver.types() == ["customer.subscription.updated", "invoice.payment_failed",
                                "customer.subscription.updated"]
    failed = receiver.events[1].data.object
    assert (failed.status, failed.amount_paid, failed.amount_due) == ("open", 0, 2000)
    assert receiver.events[2].data.object.status == "past_due"
    assert receiver.events[2].data.previous_attributes.to_dict() == {"status": "active"}
    assert client.v1.subscriptions.retrieve(sub_id)["items"].data[0].current_period_end == APR_30


def test_cancel_at_period_end_then_renewal_ends_the_subscription(client, standin, receiver):
    sub_id = subscribed(client, standin, receiver)
    sub = client.v1.subscriptions.update(sub_id, params={"cancel_at_period_end": True})
    assert sub.cancel_at_period_end is True and sub.cancel_at == FEB_29
    assert receiver.types() == ["customer.subscription.updated"]
    assert receiver.events[0].data.previous_attributes["cancel_at_period_end"] is False
    receiver.take()

    standin.renew(sub_id)
    assert receiver.types() == ["customer.subscription.deleted"]
    assert receiver.events[0].data.object.status == "canceled"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.subscriptions.update(sub_id, params={"cancel_at_period_end": False})


def test_deleting_a_subscription_cancels_it_now(client, standin, receiver):
    sub_id = subscribed(client, standin, receiver)
    sub = client.v1.subscriptions.cancel(sub_id)
    assert sub.status == "canceled" and receiver.types() == ["customer.subscription.deleted"]


def test_a_price_change_with_always_invoice_bills_the_prorated_difference(client, standin, receiver, clock):
    sub_id = subscribed(client, standin, receiver)
    item = client.v1.subscriptions.retrieve(sub_id)["items"].data[0]
    clock.now = JAN_31 + (FEB_29 - JAN_31) // 2  # half the period left
    product = client.v1.products.create(params={"name": "Max"})
    bigger = client.v1.prices.create(params={"currency": "usd", "unit_amount": 5000, "product": product.id,
                                             "recurring": {"interval": "month"}})

    sub = client.v1.subscriptions.update(sub_id, params={
        "items": [{"id": item.id, "price": bigger.id}], "proration_behavior": "always_invoice",
        "metadata": {"plan": "max"},
    })

    assert receiver.types() == ["customer.subscription.updated", "invoice.paid"]
    previous = receiver.events[0].data.previous_attributes
    assert previous["items"]["data"][0]["price"]["unit_amount"] == 2000
    assert previous["metadata"].to_dict() == {"plan": "pro"}
    invoice = receiver.events[1].data.object
    assert (invoice.billing_reason, invoice.status, invoice.amount_paid) == ("subscription_update", "paid", 1500)
    assert sub["items"].data[0].price.id == bigger.id and sub.latest_invoice == invoice.id
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.subscriptions.update(sub_id, params={"items": [{"id": item.id, "price_data": {
            "currency": "usd", "unit_amount": 1, "product_data": {"name": "X"}, "recurring": {"interval": "month"},
        }}]})
    assert refused.value.param == "items[0][price_data][product_data]"
