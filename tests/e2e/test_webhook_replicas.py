"""Stripe's deliveries, each several times, shuffled, concurrently on two replicas: every
payment credited once, every refund applied once, the ledger whole."""

from __future__ import annotations

import asyncio
import random
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import psycopg
import pytest
from google.api import httpbody_pb2

from billing.adapters.db.invariants import find_violations_in_database
from billing.settings import libpq_url
from billing.v1 import billing_service_pb2_grpc, payments_pb2
from tests.e2e.conftest import E2E_WEBHOOK_SECRET, stripe_environment
from tests.e2e.helpers import create_account, new_user
from tests.support import stripe_events as se
from tests.support.processes import start_billing_server, stop_process

PAYMENTS = 12
COPIES = 3


@pytest.fixture(scope="module")
def two_replicas(e2e, stripe_standin, tmp_path_factory):
    second = start_billing_server(e2e.database_url, tmp_path_factory.mktemp("replica"), migrate=False,
                                  extra_env=stripe_environment(stripe_standin))
    try:
        yield [e2e.grpc_target, second.grpc_target]
    finally:
        assert stop_process(second.process) == 0


def _deliver(target: str, event: dict) -> str:
    payload, signature = se.signed(event, E2E_WEBHOOK_SECRET)
    request = payments_pb2.HandleStripeWebhookRequest(raw=httpbody_pb2.HttpBody(content_type="application/json", data=payload))
    # No key: the webhook is authenticated by Stripe's signature alone.
    with grpc.insecure_channel(target) as channel:
        stub = billing_service_pb2_grpc.BillingServiceStub(channel)
        return stub.HandleStripeWebhook(request, metadata=(("stripe-signature", signature),), timeout=30).outcome


@pytest.mark.slow
def test_each_payment_and_refund_applies_once_across_replicas(e2e, http, two_replicas):
    users = [new_user() for _ in range(3)]
    for user in users:
        create_account(http, user)
    now = int(time.time())
    events, refunds = [], []
    for n in range(PAYMENTS):
        user = users[n % len(users)]
        pi = f"pi_{user}_{n}"
        events.append(se.payment_intent_succeeded(pi, user, "booster", 300, 2000, now))
        events.append(se.checkout_completed(f"cs_{user}_{n}", pi, user, "booster", 300, 2000, now))
        if n % 4 == 0:  # a paid subscription period too: one invoice, credited once
            start, end = now - 60, now + 30 * 86400
            events.append(se.invoice_paid(f"in_{user}_{n}", f"pi_in_{user}_{n}", f"sub_{user}", user, "starter",
                                          start, end, 999, now, "subscription_cycle"))
        if n % 3 == 0:  # refunded in two halves (cumulative amounts), delivered in any order
            refunds += [se.charge_refunded(f"ch_{n}", pi, 2000, 1000, now, user_id=user),
                        se.charge_refunded(f"ch_{n}", pi, 2000, 2000, now, user_id=user)]
    deliveries = [(two_replicas[i % 2], evt) for i, evt in enumerate(events * COPIES)]
    random.Random(11).shuffle(deliveries)
    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(lambda d: _deliver(*d), deliveries))
    assert set(outcomes) <= {"processed", "duplicate"}
    refund_deliveries = [(two_replicas[i % 2], evt) for i, evt in enumerate(refunds * COPIES)]
    random.Random(12).shuffle(refund_deliveries)
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda d: _deliver(*d), refund_deliveries))

    with psycopg.connect(libpq_url(e2e.database_url)) as connection:
        credits = connection.execute(
            "SELECT metadata->>'payment_id', count(*), sum(seconds) FROM ledger_events "
            "WHERE account_id = ANY(%s) AND type = 'package_credit' GROUP BY 1", (users,)).fetchall()
        refunded = connection.execute(
            "SELECT metadata->>'refund_of', -sum(seconds) FROM ledger_events "
            "WHERE account_id = ANY(%s) AND type = 'adjustment' AND metadata ? 'refund_of' GROUP BY 1", (users,)).fetchall()
        invoices = connection.execute(
            "SELECT metadata->>'invoice_id', count(*) FROM ledger_events "
            "WHERE account_id = ANY(%s) AND type = 'subscription_credit' GROUP BY 1", (users,)).fetchall()
    assert len(credits) == PAYMENTS and all(count == 1 and seconds == 18000 for _, count, seconds in credits)
    assert len(invoices) == PAYMENTS // 4 and all(count == 1 for _, count in invoices)
    assert len(refunded) == len(refunds) // 2 and all(seconds == 18000 for _, seconds in refunded)
    assert asyncio.run(find_violations_in_database(e2e.database_url)) == []
