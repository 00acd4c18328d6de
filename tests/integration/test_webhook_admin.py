"""Issue 22's admin surface on PostgreSQL: endpoints, the delivery log (pages, filters, attempts) and replays."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import timedelta

import pytest
from psycopg.types.json import Jsonb

from billing.adapters.webhook_targets import WebhookTargetPolicy
from billing.domain.errors import WebhookEndpointNotFound, WebhookEventNotFound
from billing.service import delivery_log, webhook_endpoints
from billing.service.accounts import create_account
from tests.support.fake_storage import resolve_test_names

URL = "https://hooks.example.com/billing"


@pytest.fixture
def admin(deps):
    return dataclasses.replace(deps, webhook_targets=WebhookTargetPolicy(False, resolve_test_names))


@pytest.fixture
def insert(pool):
    """await insert(account, endpoint, seq, created_at, status, attempts, event_id): an outbox row and its delivery."""

    async def add(account_id, endpoint_id, seq, created_at, status, attempts=1, event_id=None):
        event_id = event_id or f"evt_{uuid.uuid4().hex}"
        async with pool.connection() as connection:
            await connection.execute(
                "INSERT INTO outbound_events (account_id, seq, event_id, type, created_at, payload) "
                "VALUES (%s, %s, %s, 'credit.granted', %s, %s) ON CONFLICT DO NOTHING",
                (account_id, seq, event_id, created_at, Jsonb({"id": event_id})))
            finished = None if status == "pending" else created_at + timedelta(minutes=5)
            await connection.execute(
                "INSERT INTO webhook_deliveries (account_id, endpoint_id, seq, event_id, event_type, status, attempts, "
                "next_attempt_at, last_status_code, created_at, updated_at, finished_at) "
                "VALUES (%s, %s, %s, %s, 'credit.granted', %s, %s, %s, %s, %s, %s, %s)",
                (account_id, endpoint_id, seq, event_id, status, attempts, created_at, 500 if attempts else None,
                 created_at, created_at, finished))
            for n in range(1, attempts + 1):
                await connection.execute(
                    "INSERT INTO webhook_attempts (account_id, endpoint_id, seq, attempt, attempted_at, status_code, "
                    "latency_ms, response_excerpt, error) VALUES (%s, %s, %s, %s, %s, %s, 12, 'nope', %s)",
                    (account_id, endpoint_id, seq, n, created_at + timedelta(seconds=n), None if n == 1 else 500,
                     "connection refused" if n == 1 else None))
        return event_id

    return add


@pytest.fixture
async def two_accounts(admin):
    users = [f"wh-{uuid.uuid4().hex[:10]}" for _ in range(2)]
    for user in users:
        await create_account(admin, user, "free")
    return users


async def test_endpoints_round_trip(admin, clock):
    created = await webhook_endpoints.create_endpoint(admin, URL, ["hold.expired", "balance.low"], "ops")
    endpoint_id = created.endpoint.endpoint_id
    assert created.endpoint in await webhook_endpoints.list_endpoints(admin)
    async with admin.storage.reader() as uow:
        stored = await uow.webhook_endpoints.get(endpoint_id)
    assert stored == created.endpoint and stored.secret == created.secret
    assert stored.event_types == ("balance.low", "hold.expired")
    assert not (await webhook_endpoints.disable_endpoint(admin, endpoint_id)).enabled
    rotated = await webhook_endpoints.rotate_secret(admin, endpoint_id)
    async with admin.storage.reader() as uow:
        stored = await uow.webhook_endpoints.get(endpoint_id)
    assert (stored.secret, stored.previous_secret) == (rotated.secret, created.secret)
    assert stored.previous_secret_until == clock.now() + timedelta(hours=24)
    assert (stored.enabled, stored.disabled_reason) == (False, "disabled by an operator")
    enabled = await webhook_endpoints.enable_endpoint(admin, endpoint_id)
    assert (enabled.enabled, enabled.disabled_reason, enabled.failing_since) == (True, None, None)


async def test_delete_fails_pending_deliveries_and_hides_the_endpoint(admin, clock, insert, two_accounts):
    endpoint_id = (await webhook_endpoints.create_endpoint(admin, URL, [], "")).endpoint.endpoint_id
    alice, bob = two_accounts
    await insert(alice, endpoint_id, 1, clock.now(), "pending", 0)
    await insert(bob, endpoint_id, 1, clock.now(), "delivered", 1)
    deleted = await webhook_endpoints.delete_endpoint(admin, endpoint_id)
    assert deleted.failed_deliveries == 1
    assert all(e.endpoint_id != endpoint_id for e in await webhook_endpoints.list_endpoints(admin))
    with pytest.raises(WebhookEndpointNotFound):
        await webhook_endpoints.disable_endpoint(admin, endpoint_id)
    page = await delivery_log.list_deliveries(admin, endpoint_id, alice, "", 10, "")
    assert [(d.status, d.last_error, d.finished_at) for d in page.deliveries] == [("failed", "endpoint deleted", clock.now())]


async def test_the_log_pages_newest_first_with_every_filter(admin, clock, insert, two_accounts):
    a = (await webhook_endpoints.create_endpoint(admin, URL, [], "")).endpoint.endpoint_id
    b = (await webhook_endpoints.create_endpoint(admin, URL, [], "")).endpoint.endpoint_id
    alice, bob = two_accounts
    expected = []
    for seq in range(1, 9):
        at = clock.now() + timedelta(seconds=seq // 3)  # ties of created_at across a page boundary
        for user in (alice, bob):
            for endpoint in (a, b):
                status = ("failed", "delivered", "pending")[seq % 3]
                await insert(user, endpoint, seq, at, status, seq % 3)
                expected.append((at, user, endpoint, seq, status))
    expected.sort(reverse=True)
    for endpoint_id, user_id, status in (("", alice, ""), (a, "", ""), (a, bob, ""), ("", bob, "failed"), (b, "", "pending")):
        want = [e for e in expected if (not endpoint_id or e[2] == endpoint_id) and (not user_id or e[1] == user_id)
                and (not status or e[4] == status)]
        seen, token = [], ""
        while True:
            page = await delivery_log.list_deliveries(admin, endpoint_id, user_id, status, 3, token)
            seen += [(d.created_at, d.account_id, d.endpoint_id, d.seq, d.status) for d in page.deliveries]
            token = page.next_page_token
            if not token:
                break
        assert seen == want, (endpoint_id, user_id, status)
    one = (await delivery_log.list_deliveries(admin, a, alice, "delivered", 1, "")).deliveries[0]
    assert [(x.attempt, x.status_code, x.error, x.latency_ms) for x in one.attempt_log] == [(1, None, "connection refused", 12)]
    assert one.next_attempt_at is None and one.finished_at is not None


async def test_the_log_queries_use_indexes(pool, admin):
    """Each filter reads index ranges, never the whole table."""
    async with pool.connection() as connection:
        await connection.execute("SET enable_seqscan = off")
        for where in ("status = 'failed'", "account_id = 'x' AND status = 'failed'",
                      "endpoint_id = 'x' AND status = 'failed'", "event_id = 'x'"):
            cursor = await connection.execute(
                f"EXPLAIN SELECT * FROM webhook_deliveries WHERE {where} ORDER BY created_at DESC LIMIT 5")
            plan = "\n".join(row[0] for row in await cursor.fetchall())
            assert "Index" in plan and "Seq Scan" not in plan, plan
        await connection.execute("RESET enable_seqscan")


async def test_replay_an_event_and_the_failed_since(admin, clock, insert, two_accounts):
    a = (await webhook_endpoints.create_endpoint(admin, URL, [], "")).endpoint.endpoint_id
    b = (await webhook_endpoints.create_endpoint(admin, URL, [], "")).endpoint.endpoint_id
    alice, bob = two_accounts
    event = f"evt_{uuid.uuid4().hex}"
    await insert(alice, a, 1, clock.now(), "failed", 3, event)
    await insert(alice, b, 1, clock.now(), "delivered", 1, event)
    replayed = await delivery_log.replay_event(admin, event)
    assert replayed.replayed == 2
    page = await delivery_log.list_deliveries(admin, a, alice, "", 10, "")
    d = page.deliveries[0]
    assert (d.status, d.attempts, len(d.attempt_log), d.next_attempt_at, d.finished_at) == ("pending", 3, 3, clock.now(), None)
    with pytest.raises(WebhookEventNotFound):
        await delivery_log.replay_event(admin, "evt_never")
    since = clock.now()
    for seq in range(2, 6):
        await insert(bob, a, seq, since + timedelta(minutes=seq), "failed", 1)
    await insert(bob, a, 9, since - timedelta(minutes=1), "failed", 1)
    first = await delivery_log.replay_failed(admin, since, a)
    assert (first.replayed, first.more) == (4, False)
    statuses = {d.seq: d.status for d in (await delivery_log.list_deliveries(admin, a, bob, "", 100, "")).deliveries}
    assert statuses == {2: "pending", 3: "pending", 4: "pending", 5: "pending", 9: "failed"}
    assert (await delivery_log.replay_failed(admin, since, a)).replayed == 0


async def test_deleting_an_endpoint_while_an_attempt_is_recorded_cannot_deadlock(admin, clock, insert, two_accounts, pool):
    """A record locks its delivery, then the endpoint's row (outbound_queue.py); the delete takes
    them in the same order, so it waits for the record instead of deadlocking with it."""
    endpoint_id = (await webhook_endpoints.create_endpoint(admin, URL, [], "")).endpoint.endpoint_id
    alice, _ = two_accounts
    await insert(alice, endpoint_id, 1, clock.now(), "pending", 0)
    async with pool.connection() as recording, pool.connection() as watcher:
        await watcher.set_autocommit(True)
        async with recording.transaction():
            await recording.execute(  # the record's first lock: its delivery
                "UPDATE webhook_deliveries SET attempts = attempts + 1 WHERE endpoint_id = %s", (endpoint_id,))
            deleting = asyncio.create_task(webhook_endpoints.delete_endpoint(admin, endpoint_id))
            async with asyncio.timeout(10):  # the delete is blocked behind the record
                while not (await (await watcher.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                        " AND query LIKE 'UPDATE webhook_deliveries%%'")).fetchone())[0]:
                    await asyncio.sleep(0.01)
            await recording.execute(  # the record's second lock: the endpoint's row
                "UPDATE webhook_endpoints SET failing_since = NULL WHERE endpoint_id = %s", (endpoint_id,))
        deleted = await deleting
    assert deleted.failed_deliveries == 1
