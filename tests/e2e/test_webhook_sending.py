"""Outbound events end to end (issue 22): two server replicas send the outbox to a real HTTP receiver
that verifies every signature with `standardwebhooks`, answers 500 to some first attempts and drops
the connection of others: every event arrives, each account's in order (none before its predecessor
was answered 2xx), duplicates only with the same id. And the commit-to-delivery latency at 200 events/s.

The servers run on a database of this module's own (BILLING_WEBHOOK_ALLOW_PRIVATE=1: the receiver is
on loopback); outbox rows are inserted directly, each with the NOTIFY the wallet-change path's
notifier sends after its commit."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import statistics
import time
import uuid
from collections import defaultdict
from datetime import datetime, timezone
from typing import Iterator

import psycopg
import pytest

from billing.adapters.catalog_file import load_catalog
from billing.adapters.clock import SystemClock
from billing.adapters.db.change_notifier import CHANNEL
from billing.adapters.db.unit_of_work import PostgresStorage, open_pool
from billing.service.accounts import create_account
from billing.service.dependencies import Dependencies
from billing.service.handlers import message_bus
from billing.settings import DEFAULT_CATALOG_PATH, libpq_url
from testkit.processes import start_billing_server, stop_process
from testkit.webhook_receiver import DROP, WebhookReceiver
from tests.support.database import fresh_database
from tests.support.defaults import CHECKOUT_PAGES

SECRET = "whsec_" + base64.b64encode(b"e2e-outbound-secret-0123").decode()
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def outbound_database() -> Iterator[str]:
    with fresh_database("billing_outbound") as url:
        yield url


@pytest.fixture(scope="module")
def two_senders(outbound_database, tmp_path_factory):
    env = {"BILLING_WEBHOOK_ALLOW_PRIVATE": "1", "BILLING_AUTHENTICATION": "off"}
    first = start_billing_server(outbound_database, tmp_path_factory.mktemp("sender-a"), extra_env=env)
    second = start_billing_server(outbound_database, tmp_path_factory.mktemp("sender-b"), migrate=False, extra_env=env)
    try:
        yield first, second
    finally:
        assert stop_process(second.process) == 0 and stop_process(first.process) == 0, "both stop cleanly"


def make_accounts(database_url: str, count: int) -> list[str]:
    async def make() -> list[str]:
        pool = await open_pool(database_url, 2)
        try:
            catalog, _ = load_catalog(DEFAULT_CATALOG_PATH)
            deps = Dependencies(storage=PostgresStorage(pool, None), catalog=catalog, clock=SystemClock(),
                                bus=message_bus(), checkout_pages=CHECKOUT_PAGES)
            ids = [(await create_account(deps, f"out-{uuid.uuid4().hex[:10]}", "free")).user_id for _ in range(count)]
            async with pool.connection() as connection:  # their welcome credits are not this test's events
                await connection.execute(
                    "UPDATE outbound_events SET dispatched = true WHERE account_id = ANY(%s)", (ids,))
            return ids
        finally:
            await pool.close()

    return asyncio.run(make())


def add_endpoint(connection: psycopg.Connection, url: str) -> str:
    endpoint_id = f"ep_{uuid.uuid4().hex[:10]}"
    connection.execute("UPDATE webhook_endpoints SET deleted_at = now() WHERE deleted_at IS NULL")  # one receiver per test
    connection.execute(
        "INSERT INTO webhook_endpoints (endpoint_id, url, event_types, enabled, secret, created_at, updated_at)"
        " VALUES (%s, %s, '{}', true, %s, now() - interval '1 minute', now())", (endpoint_id, url, SECRET))
    return endpoint_id


def add_event(connection: psycopg.Connection, account_id: str) -> tuple[str, float]:
    """One outbox row in its own transaction, with the NOTIFY the change notifier sends; (id, commit time)."""
    with connection.transaction():
        (seq,) = connection.execute(
            "UPDATE accounts SET last_outbound_seq = last_outbound_seq + 1 WHERE account_id = %s"
            " RETURNING last_outbound_seq", (account_id,)).fetchone()
        event_id = f"evt_{account_id}_{seq}"
        now = datetime.now(timezone.utc)
        payload = {"id": event_id, "type": "credit.granted", "created_at": now.isoformat(), "user_id": account_id,
                   "data": {"seq": seq}}
        connection.execute("INSERT INTO outbound_events (account_id, seq, event_id, type, created_at, payload)"
                           " VALUES (%s, %s, %s, 'credit.granted', %s, %s)",
                           (account_id, seq, event_id, now, json.dumps(payload)))
        connection.execute("SELECT pg_notify(%s, %s)", (CHANNEL, account_id))
    return event_id, time.time()


def wait_until(condition, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _fraction(event_id: str) -> float:
    return int(hashlib.sha256(event_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def test_two_replicas_deliver_every_event_in_order_through_failures(outbound_database, two_senders):
    # 20 % of first attempts answered 500, 10 % dropped: retried 5 s later (+-10 %).
    def answer(event_id: str, attempt: int):
        if attempt == 1 and _fraction(event_id) < 0.2:
            return 500
        if attempt == 1 and _fraction(event_id) < 0.3:
            return DROP
        return 200

    receiver = WebhookReceiver(answer, SECRET)
    accounts = make_accounts(outbound_database, 10)
    with psycopg.connect(libpq_url(outbound_database), autocommit=True) as connection:
        add_endpoint(connection, receiver.url)
        expected = [add_event(connection, account)[0] for _ in range(10) for account in accounts]
    try:
        wait_until(lambda: receiver.delivered() >= set(expected), 40)
        time.sleep(0.5)  # nothing more should come
    finally:
        receiver.close()
    received = [{"id": r.id, "account": r.payload["user_id"], "seq": r.payload["data"]["seq"],
                 "answered": r.answered, "verified": r.verified} for r in receiver.requests()]
    assert all(r["verified"] for r in received), "every request verifies with standardwebhooks"
    assert {r["id"] for r in received} == set(expected), "nothing invented"
    assert sum(1 for r in received if r["answered"] != 200) >= 10, "the failures happened"
    assert len(receiver.delivered()) == len([r for r in received if r["answered"] == 200]), "no duplicate after a 2xx"
    by_account = defaultdict(list)
    for r in received:
        by_account[r["account"]].append(r)
    for account, rows in by_account.items():
        delivered_seqs = [r["seq"] for r in rows if r["answered"] == 200]
        first = delivered_seqs[0]  # after the account's own events (its welcome credit), not sent here
        assert delivered_seqs == sorted(delivered_seqs) == list(range(first, first + 10)), (account, delivered_seqs)
        answered_up_to = first - 1  # no event arrives before its predecessor was answered 2xx
        for r in rows:
            assert r["seq"] <= answered_up_to + 1, (account, [(x["seq"], x["answered"]) for x in rows])
            if r["answered"] == 200:
                answered_up_to = r["seq"]


def test_every_event_written_at_200_a_second_arrives(outbound_database, two_senders):
    """Functional only (every event arrives); the latency is printed here and held to its target by
    `make bench`, never by a timed assertion."""
    receiver = WebhookReceiver(lambda event_id, attempt: 200, SECRET)
    accounts = make_accounts(outbound_database, 50)
    committed: dict[str, float] = {}
    rate, seconds = 200, 5
    with psycopg.connect(libpq_url(outbound_database), autocommit=True) as connection:
        add_endpoint(connection, receiver.url)
        start = time.monotonic()
        for i in range(rate * seconds):
            event_id, at = add_event(connection, accounts[i % len(accounts)])
            committed[event_id] = at
            pause = start + (i + 1) / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        sent_for = time.monotonic() - start
    try:
        wait_until(lambda: len(receiver.delivered()) >= len(committed), 30)
    finally:
        receiver.close()
    first_arrival: dict[str, float] = {}
    for r in receiver.requests():
        first_arrival.setdefault(r.id, r.at)
    lags = sorted(first_arrival[event_id] - at for event_id, at in committed.items())
    p50, p99 = statistics.median(lags), lags[int(len(lags) * 0.99) - 1]
    print(f"\n{len(lags)} events at {len(lags) / sent_for:.0f}/s: commit-to-delivery p50 {p50 * 1000:.0f} ms, "
          f"p99 {p99 * 1000:.0f} ms, max {lags[-1] * 1000:.0f} ms")
    assert set(first_arrival) >= set(committed)
