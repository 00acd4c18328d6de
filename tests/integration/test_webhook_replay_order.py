"""Replays keep each (account, endpoint) line in order (review of issue 22): a replayed earlier event
goes before the later ones, never beside them, and nothing in flight is claimed twice."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from billing.adapters.catalog_file import load_catalog
from billing.adapters.clock import FixedClock
from billing.adapters.db.outbound_queue import PostgresOutboundQueue
from billing.adapters.db.unit_of_work import PostgresStorage
from billing.domain.delivery_outcomes import FAILED, AttemptResult, Outcome
from billing.service.delivery_log import replay_event, replay_failed
from billing.service.dependencies import Dependencies
from billing.service.handlers import message_bus
from billing.service.webhook_sender import LEASE, SenderOptions, WebhookSender
from billing.settings import DEFAULT_CATALOG_PATH
from tests.integration.test_webhook_sending_on_postgres import (  # noqa: F401 - fixtures
    accounts, add_endpoint, add_events, db,
)
from tests.support.defaults import CHECKOUT_PAGES
from tests.support.fake_outbound import NO_SHARES


def admin_deps(pool, now):
    catalog, _ = load_catalog(DEFAULT_CATALOG_PATH)
    return Dependencies(storage=PostgresStorage(pool, None), catalog=catalog, clock=FixedClock(now),
                        bus=message_bus(), checkout_pages=CHECKOUT_PAGES)


async def claimed(queue, account_id, at):
    return [d for d in await queue.claim(at, at + LEASE, 100, NO_SHARES) if d.account_id == account_id]


async def test_a_replayed_event_waits_for_the_one_in_flight_then_goes_before_the_later_ones(pool, db, accounts):
    now = datetime.now(timezone.utc)
    await add_endpoint(db, now - timedelta(minutes=1))
    [alice] = await accounts(1)
    e1, e2, e3 = await add_events(db, alice, 3, now)
    queue = PostgresOutboundQueue(pool)
    sender = WebhookSender(queue, None, FixedClock(now), SenderOptions())  # type: ignore[arg-type]
    await queue.dispatch(now, 100)
    [d1] = await claimed(queue, alice, now)
    assert await sender.record(d1, AttemptResult(200, 1)) == "delivered"
    [d2] = await claimed(queue, alice, now)  # e2 in flight
    await replay_event(admin_deps(pool, now), e1)
    later = now + timedelta(seconds=1)
    assert await claimed(queue, alice, later) == []  # not beside e2: after it
    assert await sender.record(d2, AttemptResult(200, 1)) == "delivered"
    [again] = await claimed(queue, alice, later)
    assert again.event_id == e1  # before e3
    assert await sender.record(again, AttemptResult(200, 1)) == "delivered"
    [last] = await claimed(queue, alice, later)
    assert last.event_id == e3


async def test_replaying_failed_deliveries_of_one_line_sends_them_one_at_a_time_in_order(pool, db, accounts):
    now = datetime.now(timezone.utc)
    await add_endpoint(db, now - timedelta(minutes=1))
    [alice] = await accounts(1)
    e1, e2 = await add_events(db, alice, 2, now)
    queue = PostgresOutboundQueue(pool)
    await queue.dispatch(now, 100)
    for _ in range(2):
        [d] = await claimed(queue, alice, now)
        assert await queue.record(d, AttemptResult(500, 1), Outcome(FAILED, None, None, True), now)
    replayed = await replay_failed(admin_deps(pool, now), now - timedelta(seconds=1), "")
    assert replayed.replayed == 2
    assert [d.event_id for d in await claimed(queue, alice, now + timedelta(seconds=1))] == [e1]


async def test_a_replay_waits_for_a_claim_in_progress_and_sees_its_lease(pool, db, accounts):
    """A claim has locked e2 (the line's head) and not yet committed its lease when e1 is replayed:
    the replay waits for it, then sees e2 in flight, and e1 waits its turn (it was made due beside
    e2 when the replay judged "in flight" from a snapshot taken before the claim committed)."""
    now = datetime.now(timezone.utc)
    endpoint = await add_endpoint(db, now - timedelta(minutes=1))
    [alice] = await accounts(1)
    e1, e2 = await add_events(db, alice, 2, now)
    queue = PostgresOutboundQueue(pool)
    await queue.dispatch(now, 100)
    [d1] = await claimed(queue, alice, now)
    assert await queue.record(d1, AttemptResult(500, 1), Outcome(FAILED, None, None, True), now)
    async with pool.connection() as claiming:
        async with claiming.transaction():
            await claiming.execute(  # the claim's lease on e2, not committed yet
                "UPDATE webhook_deliveries SET lease_until = %s, next_attempt_at = %s"
                " WHERE account_id = %s AND endpoint_id = %s AND event_id = %s",
                (now + LEASE, now + LEASE, alice, endpoint, e2))
            replaying = asyncio.create_task(replay_event(admin_deps(pool, now), e1))
            async with asyncio.timeout(10):  # the replay is blocked behind the claim
                while not (await (await db.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")).fetchone())[0]:
                    await asyncio.sleep(0.01)
        await replaying
    cursor = await db.execute("SELECT event_id, next_attempt_at = 'infinity'::timestamptz FROM webhook_deliveries"
                              " WHERE account_id = %s AND endpoint_id = %s ORDER BY seq", (alice, endpoint))
    assert await cursor.fetchall() == [(e1, True), (e2, False)]  # e1 waits for e2's record
