"""The stand-in over time: its state kept across restarts, its clock advanced through renewals, and webhook
redeliveries with backoff on that clock."""

from __future__ import annotations

import json
import time

import pytest
import stripe

from devstack.standin.stripe_standin import StripeStandin
from devstack.standin.webhooks import RETRY_SCHEDULE

from tests.support.stripe_standin_harness import (  # noqa: F401 - fixtures and helpers
    APR_30, FEB_29, JAN_31, MAR_31, SECRET, Clock, client, clock, payment_session, raw, receiver, standin, subscribed,
)

DAY = 86400


def sdk(standin: StripeStandin) -> stripe.StripeClient:
    return stripe.StripeClient("sk_test_standin", base_addresses={"api": standin.api_base}, max_network_retries=0)


def test_a_restarted_stand_in_knows_its_customers_payments_and_idempotent_answers(tmp_path, receiver, clock):
    state = tmp_path / "stripe-standin.json"
    with StripeStandin(webhook_url=receiver.url, webhook_secret=SECRET, clock=clock, state_path=state) as first:
        client = sdk(first)
        customer = client.v1.customers.create(params={"email": "kept@example.com"}, options={"idempotency_key": "c1"})
        session = payment_session(client, customer.id)
        first.pay(session.id)
        sub_id = subscribed(client, first, receiver)
        first.advance_clock(5 * DAY)

    with StripeStandin(webhook_url=receiver.url, webhook_secret=SECRET, clock=clock, state_path=state) as second:
        client = sdk(second)
        assert client.v1.customers.retrieve(customer.id).email == "kept@example.com"
        paid = client.v1.checkout.sessions.retrieve(session.id)
        assert paid.status == "complete" and client.v1.payment_intents.retrieve(paid.payment_intent).status == "succeeded"
        again = client.v1.customers.create(params={"email": "kept@example.com"}, options={"idempotency_key": "c1"})
        assert again.id == customer.id  # the key's answer is replayed, not a second customer
        assert second.now() == JAN_31 + 5 * DAY  # the advanced clock is kept too
        assert {event["id"] for event in second.events()} >= {event.id for event in receiver.events}
        receiver.take()
        second.renew(sub_id)
        assert receiver.types() == ["customer.subscription.updated", "invoice.paid"]
    assert not state.with_name(state.name + ".tmp").exists()


def test_a_subscription_renews_only_when_its_period_has_ended_each_period_at_its_own_time(client, standin, receiver):
    sub_id = subscribed(client, standin, receiver)

    assert standin.advance_clock(FEB_29 - JAN_31 - 1) == [] and receiver.events == []
    standin.advance_clock(1)
    assert receiver.types() == ["customer.subscription.updated", "invoice.paid"]
    invoice = receiver.events[1].data.object
    assert invoice.created == FEB_29 and invoice.lines.data[0].period.to_dict() == {"start": FEB_29, "end": MAR_31}
    receiver.take()

    standin.advance_clock(to=APR_30 + DAY)  # two periods end on the way: two renewals, each at its end
    invoices = [event.data.object for event in receiver.events if event.type == "invoice.paid"]
    assert [(i.created, i.lines.data[0].period.start) for i in invoices] == [(MAR_31, MAR_31), (APR_30, APR_30)]
    assert standin.now() == APR_30 + DAY
    assert client.v1.subscriptions.retrieve(sub_id)["items"].data[0].current_period_start == APR_30


def test_the_clock_advances_over_http(client, standin, receiver):
    sub_id = subscribed(client, standin, receiver)
    status, _, body = raw(standin, "POST", "/_standin/clock/advance",
                          json.dumps({"seconds": FEB_29 - JAN_31, "fail": [sub_id]}).encode())
    answer = json.loads(body)
    assert status == 200 and answer["now"] == FEB_29
    assert answer["events"] == [event.id for event in receiver.events]
    assert client.v1.subscriptions.retrieve(sub_id).status == "past_due"
    status, _, body = raw(standin, "GET", "/_standin/clock")
    assert status == 200 and json.loads(body) == {"now": FEB_29, "advanced_seconds": FEB_29 - JAN_31}
    for bad in ({}, {"seconds": -1}, {"seconds": 1, "to": 2}, {"seconds": "1"}, {"to": 10**20}, {"seconds": 1, "fail": "x"}):
        status, _, body = raw(standin, "POST", "/_standin/clock/advance", json.dumps(bad).encode())
        assert status == 400, bad
    status, _, body = raw(standin, "POST", "/_standin/clock/advance", json.dumps({"to": JAN_31}).encode())
    assert status == 200 and json.loads(body)["now"] == FEB_29  # never back


def test_a_failed_delivery_is_redelivered_with_backoff_on_the_stand_in_clock(client, standin, receiver):
    receiver.status = 503
    client.v1.checkout.sessions.expire(payment_session(client, None).id)
    [record] = standin.events()
    assert (record["delivery_attempts"], record["next_delivery_at"]) == (1, JAN_31 + RETRY_SCHEDULE[0])
    receiver.status = 200

    standin.advance_clock(RETRY_SCHEDULE[0] - 1)
    assert len(receiver.events) == 1
    standin.advance_clock(1)
    assert [event.id for event in receiver.events] == [record["id"]] * 2
    [record] = standin.events()
    assert (record["delivery_attempts"], record["last_delivery_status"], record["next_delivery_at"]) == (2, 200, None)
    standin.advance_clock(4 * DAY)
    assert len(receiver.events) == 2  # delivered: never again


def test_redeliveries_end_after_the_schedule_and_the_schedule_is_configurable(receiver, clock):
    receiver.status = 503
    with StripeStandin(webhook_url=receiver.url, webhook_secret=SECRET, clock=clock, retry_schedule=(10, 20),
                       tick_seconds=None) as standin:
        sdk(standin).v1.checkout.sessions.expire(payment_session(sdk(standin), None).id)
        standin.advance_clock(29)
        assert standin.events()[0]["delivery_attempts"] == 2
        standin.advance_clock(1)
        standin.advance_clock(DAY)
        [record] = standin.events()
        assert (record["delivery_attempts"], record["next_delivery_at"]) == (3, None)


def test_the_default_schedule_redelivers_for_about_three_days():
    assert 2.5 * DAY < sum(RETRY_SCHEDULE) <= 3 * DAY
    assert list(RETRY_SCHEDULE) == sorted(RETRY_SCHEDULE)


def test_a_running_stand_in_renews_as_its_own_clock_passes_the_period_end(receiver):
    clock = Clock(JAN_31)
    with StripeStandin(webhook_url=receiver.url, webhook_secret=SECRET, clock=clock, tick_seconds=0.01) as standin:
        sub_id = subscribed(sdk(standin), standin, receiver)
        clock.now = FEB_29
        deadline = time.monotonic() + 10
        while "invoice.paid" not in receiver.types() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert receiver.types() == ["customer.subscription.updated", "invoice.paid"]
        assert sdk(standin).v1.subscriptions.retrieve(sub_id)["items"].data[0].current_period_end == MAR_31


def test_stripes_test_clock_api_lives_through_a_renewal(client, standin, receiver):
    """Issue 19, item 14: the SDK's test_helpers.test_clocks (create, advance, retrieve) on the stand-in."""
    sub_id = subscribed(client, standin, receiver)
    receiver.take()
    created = client.v1.test_helpers.test_clocks.create(params={"frozen_time": JAN_31, "name": "renewal"})
    assert created.object == "test_helpers.test_clock" and created.frozen_time == JAN_31 and receiver.events == []
    advanced = client.v1.test_helpers.test_clocks.advance(created.id, params={"frozen_time": FEB_29 + 60})
    assert advanced.frozen_time == FEB_29 + 60 and advanced.status == "ready"
    assert receiver.types() == ["customer.subscription.updated", "invoice.paid"]
    assert client.v1.subscriptions.retrieve(sub_id)["items"].data[0].current_period_end == MAR_31
    assert client.v1.test_helpers.test_clocks.retrieve(created.id).frozen_time == FEB_29 + 60
    with pytest.raises(stripe.InvalidRequestError):  # only forward
        client.v1.test_helpers.test_clocks.advance(created.id, params={"frozen_time": JAN_31})
