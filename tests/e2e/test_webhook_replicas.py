"""Stripe's deliveries, each several times, shuffled, concurrently on two replicas: every
payment credited once, every refund applied once, the ledger whole. Refunds are shuffled in with
their payments: one that arrives before its payment's credit is refused (FAILED_PRECONDITION, HTTP 409) and
delivered again later, as Stripe retries it."""

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
from tests.e2e.conftest import E2E_WEBHOOK_SECRET
from tests.e2e.helpers import create_account, new_user
from tests.support import stripe_events as se

PAYMENTS = 12
COPIES = 3
REDELIVERY_SECONDS = 0.2
REDELIVERIES_MAX = 50


@pytest.fixture
def two_replicas(e2e, second_replica):
    return [e2e.grpc_target, second_replica.grpc_target]


def _deliver(target: str, event: dict) -> str:
    payload, signature = se.signed(event, E2E_WEBHOOK_SECRET)
    request = payments_pb2.HandleStripeWebhookRequest(raw=httpbody_pb2.HttpBody(content_type="application/json", data=payload))
    # No key: the webhook is authenticated by Stripe's signature alone.
    with grpc.insecure_channel(target) as channel:
        stub = billing_service_pb2_grpc.BillingServiceStub(channel)
        return stub.HandleStripeWebhook(request, metadata=(("stripe-signature", signature),), timeout=30).outcome


def _deliver_until_accepted(target: str, event: dict) -> tuple[str, int]:
    """As Stripe does: an answer asking for a retry (a refund before its credit) is delivered again."""
    for refused in range(REDELIVERIES_MAX):
        try:
            return _deliver(target, event), refused
        except grpc.RpcError as answer:
            if answer.code() != grpc.StatusCode.FAILED_PRECONDITION:  # HTTP 409
                raise
            time.sleep(REDELIVERY_SECONDS)
    raise AssertionError(f"{event['type']} {event['id']} never accepted")


def _register_customer(database_url: str, user: str) -> None:
    """What the user's first checkout would have stored: the events name this customer."""
    with psycopg.connect(libpq_url(database_url)) as connection:
        connection.execute("INSERT INTO payment_profiles (account_id, customer_id, updated_at) VALUES (%s, %s, now())",
                           (user, f"cus_{user}"))
        connection.execute("INSERT INTO payment_customers (customer_id, account_id, created_at) VALUES (%s, %s, now())",
                           (f"cus_{user}", user))


@pytest.mark.slow
def test_each_payment_and_refund_applies_once_across_replicas(e2e, http, two_replicas):
    users = [new_user() for _ in range(3)]
    for user in users:
        create_account(http, user)
        _register_customer(e2e.database_url, user)
    now = int(time.time())
    events, refunds = [], []
    for n in range(PAYMENTS):
        user = users[n % len(users)]
        pi = f"pi_{user}_{n}"
        customer = f"cus_{user}"
        events.append(se.payment_intent_succeeded(pi, user, "booster", 300, 1999, now, customer=customer))
        events.append(se.checkout_completed(f"cs_{user}_{n}", pi, user, "booster", 300, 1999, now, customer=customer))
        if n % 4 == 0:  # a paid subscription period too: one invoice, credited once
            start, end = now - 60, now + 30 * 86400
            events.append(se.invoice_paid(f"in_{user}_{n}", f"pi_in_{user}_{n}", f"sub_{user}", user, "starter",
                                          start, end, 999, now, "subscription_cycle", customer=customer))
        if n % 3 == 0:  # refunded in two halves (cumulative amounts), delivered in any order
            refunds += [se.charge_refunded(f"ch_{n}", pi, 1999, 1000, now, user_id=user, customer=customer),
                        se.charge_refunded(f"ch_{n}", pi, 1999, 1999, now, user_id=user, customer=customer)]
    deliveries = [(two_replicas[i % 2], evt) for i, evt in enumerate((events + refunds) * COPIES)]
    rng = random.Random(11)
    rng.shuffle(deliveries)
    # Some refunds first of all, so the test surely sees refunds that come before their credits.
    deliveries.sort(key=lambda d: 0 if d[1]["type"] == "charge.refunded" and rng.random() < 0.3 else 1)
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(lambda d: _deliver_until_accepted(*d), deliveries))
    assert {outcome for outcome, _ in answers} <= {"processed", "duplicate"}
    assert sum(refused for _, refused in answers) > 0  # the early refunds were refused, then applied

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
