"""The webhook scenario's deliveries (bench/webhooks.py): Stripe-signed, Stripe-shaped, with the
duplicates it promises; and the check of the ledger's credits after it."""

from __future__ import annotations

import collections
import json
import random
import time

import pytest
import stripe

from bench import webhooks
from billing.adapters.stripe_provider_events import parse_verified_event
from billing.adapters.stripe_signature import TOLERANCE_SECONDS as WEBHOOK_TOLERANCE_SECONDS
from billing.service.provider_events import PackagePaid
from tests.support import stripe_events

SECRET = "whsec_unit_" + "ab" * 16
NOW = 1_800_000_000


def plan(**overrides) -> webhooks.DeliveryPlan:
    settings = dict(secret=SECRET, accounts=1000, run_id="wh0123", host="127.0.0.1:8080", block_payments=50,
                    rng=random.Random(7), clock=lambda: NOW)  # fmt: skip
    return webhooks.DeliveryPlan(**(settings | overrides))


def test_every_delivery_verifies_with_stripes_own_check():
    deliveries = plan().deliveries(500)

    for delivery in deliveries:
        stripe.WebhookSignature.verify_header(delivery.payload, delivery.signature, SECRET, tolerance=None)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(deliveries[0].payload, deliveries[0].signature, "whsec_other")


def test_signatures_are_made_now_so_the_servers_tolerance_accepts_them():
    delivery = plan(clock=time.time).deliveries(1)[0]
    stale = plan(clock=lambda: time.time() - 2 * WEBHOOK_TOLERANCE_SECONDS).deliveries(1)[0]

    assert stripe.WebhookSignature.verify_header(delivery.payload, delivery.signature, SECRET, WEBHOOK_TOLERANCE_SECONDS)
    with pytest.raises(stripe.SignatureVerificationError):  # what a plan signed in advance would get
        stripe.WebhookSignature.verify_header(stale.payload, stale.signature, SECRET, WEBHOOK_TOLERANCE_SECONDS)


def test_the_events_are_package_payments_as_the_tests_and_the_service_read_them():
    delivery = plan().deliveries(1)[0]
    ours = json.loads(delivery.payload)
    reference = stripe_events.payment_intent_succeeded(
        delivery.payment_id, delivery.account_id, "mini", 60, 499, NOW)

    assert ours.keys() == reference.keys() and ours["data"]["object"].keys() == reference["data"]["object"].keys()
    assert ours["data"]["object"]["metadata"] == reference["data"]["object"]["metadata"]
    parsed = parse_verified_event(delivery.payload)
    assert parsed.event_id == delivery.event_id and parsed.type == "payment_intent.succeeded"
    assert isinstance(parsed.event, PackagePaid)
    assert (parsed.event.payment_id, parsed.event.account_id) == (delivery.payment_id, delivery.account_id)
    assert (parsed.event.package_key, parsed.event.package_minutes) == ("mini", 60)


def test_each_payment_is_two_different_events_and_a_fifth_of_deliveries_are_verbatim_repeats():
    deliveries = plan().block(1)

    assert len(deliveries) == 50 * 2 + 25  # 25 of 125: 20%
    repeats = [d for d in deliveries if d.repeat]
    assert len(repeats) == 25
    events_of = collections.defaultdict(set)
    for delivery in deliveries:
        events_of[delivery.payment_id].add(delivery.event_id)
    assert len(events_of) == 50 and all(len(events) == 2 for events in events_of.values())
    by_event = collections.defaultdict(list)
    for delivery in deliveries:
        by_event[delivery.event_id].append(delivery)
    assert collections.Counter(len(copies) for copies in by_event.values()) == {1: 75, 2: 25}
    for copies in by_event.values():
        if len(copies) == 2:  # a verbatim repeat: the same bytes, signature and request as its original
            original, repeat = sorted(copies, key=lambda d: d.repeat)
            assert (original.repeat, repeat.repeat) == (False, True)
            assert (repeat.payload, repeat.signature, repeat.request) == (original.payload, original.signature, original.request)
    distinct_payloads = {d.payload for d in deliveries}
    assert len(distinct_payloads) == 100  # the two events of one payment differ in their bytes


def test_deliveries_are_shuffled_within_their_block_and_blocks_do_not_share_payments():
    deliveries = plan(block_payments=20).deliveries(120)

    assert len(deliveries) == 150  # three whole blocks of 20 payments x 2 events + 10 repeats
    blocks = [deliveries[i:i + 50] for i in range(0, 150, 50)]
    payments = [{d.payment_id for d in block} for block in blocks]
    assert all(len(p) == 20 for p in payments)
    assert not (payments[0] & payments[1]) and not (payments[1] & payments[2])
    order = [d.event_id for d in blocks[0] if not d.repeat]
    assert order != sorted(order, key=lambda e: [int(p) for p in e.split("_")[2:]])


def test_accounts_are_the_datasets():
    deliveries = plan(accounts=10, account_offset=100).deliveries(400)

    accounts = {int(d.account_id) for d in deliveries}
    assert accounts <= set(range(101, 111)) and len(accounts) > 5
    account_of = collections.defaultdict(set)
    for delivery in deliveries:
        account_of[delivery.payment_id].add(delivery.account_id)
    assert all(len(accounts) == 1 for accounts in account_of.values())  # one payment, one account
    assert all(payment_id.startswith("pi_wh0123_") for payment_id in account_of)


def test_share_and_events_are_settings():
    deliveries = plan(events_per_payment=1, repeat_share=0.0).block(1)

    assert len(deliveries) == 50 and not any(d.repeat for d in deliveries)
    assert plan(repeat_share=0.5, block_payments=10).repeats_per_block() == 20
    with pytest.raises(ValueError):
        plan(repeat_share=1.0).validate()
    with pytest.raises(ValueError):
        plan(secret="").validate()


def test_the_http_request_carries_the_signature_and_the_exact_bytes():
    delivery = plan().deliveries(1)[0]
    head, _, body = delivery.request.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])

    assert lines[0] == "POST /v1/billing/webhooks/stripe HTTP/1.1"
    assert body == delivery.payload and int(headers["Content-Length"]) == len(body)
    assert headers["Stripe-Signature"] == delivery.signature
    assert headers["Content-Type"].startswith("application/json")


def test_outcome_of_an_answer():
    assert webhooks.outcome_of(b'{"received":true,"outcome":"duplicate"}') == "duplicate"
    assert webhooks.outcome_of(b'{"received":false,"outcome":"processed"}') is None
    assert webhooks.outcome_of(b"not json") is None
    assert webhooks.outcome_of(b"[]") is None


def test_like_prefix_takes_underscores_literally():
    assert webhooks.like_prefix("pi_ab_") == "pi\\_ab\\_%"


def test_credit_problems():
    payments = {"pi_a": ["1", True], "pi_b": ["2", True], "pi_c": ["3", False], "pi_d": ["4", False]}

    assert webhooks.credit_problems(payments, {"pi_a": 1, "pi_b": 1, "pi_c": 1}) == []
    assert webhooks.credit_problems(payments, {"pi_a": 2, "pi_b": 1}) == ["pi_a: 2 package_credit ledger rows"]
    assert webhooks.credit_problems(payments, {"pi_a": 1}) == ["pi_b: 0 package_credit ledger rows"]
    assert webhooks.credit_problems(payments, {"pi_a": 1, "pi_b": 1, "pi_c": 2}) == ["pi_c: 2 package_credit ledger rows"]
    assert webhooks.credit_problems(payments, {"pi_a": 1, "pi_b": 1, "pi_x": 1}) == [
        "pi_x: 1 package_credit ledger rows, never delivered"]


def test_a_config_refuses_runs_longer_than_the_signatures_last():
    with pytest.raises(ValueError):
        webhooks.WebhookConfig(target="127.0.0.1:8080", accounts=10, duration_s=webhooks.RUN_SECONDS_MAX + 1,
                               concurrency=4).validate()
    webhooks.WebhookConfig(target="127.0.0.1:8080", accounts=10, duration_s=5, concurrency=4).validate()
