"""The outbound events' sender on PostgreSQL (adapters/db/outbound_queue.py): two senders at once
send each delivery once while leases hold, each account's events in order; a killed sender's lease
runs out and another sends it; 410 and five days failing disable the endpoint; a disabled endpoint
is paused (its events wait, then go in order), a hanging one holds only its share of the slots; events
written before an endpoint existed, or of types it does not take, are not sent to it. Outbox rows are
inserted directly (the wallet-change path writes them in the real service)."""

from __future__ import annotations

import asyncio
import base64
import json
import random
import uuid
from collections import defaultdict
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from billing.adapters.catalog_file import load_catalog
from billing.adapters.clock import FixedClock
from billing.adapters.db.outbound_queue import PostgresOutboundQueue
from billing.adapters.db.unit_of_work import PostgresStorage
from billing.domain.delivery_outcomes import AttemptResult
from billing.service.accounts import create_account
from billing.service.dependencies import Dependencies
from billing.service.handlers import message_bus
from billing.service.webhook_sender_ports import EndpointShares, OutgoingWebhook
from billing.service.webhook_sender import LEASE, SenderOptions, WebhookSender
from billing.settings import DEFAULT_CATALOG_PATH, libpq_url
from tests.support.defaults import CHECKOUT_PAGES
from tests.support.fake_outbound import NO_SHARES

SECRET = "whsec_" + base64.b64encode(b"i" * 24).decode()
FAST = SenderOptions(poll_seconds=0.02, claim_batch=10, concurrency=8)


@pytest.fixture
async def accounts(pool):
    """make(n) -> n new account ids."""
    catalog, _ = load_catalog(DEFAULT_CATALOG_PATH)
    deps = Dependencies(storage=PostgresStorage(pool, None), catalog=catalog, clock=FixedClock(datetime.now(timezone.utc)),
                        bus=message_bus(), checkout_pages=CHECKOUT_PAGES)

    async def make(count: int) -> list[str]:
        ids = []
        for _ in range(count):
            account = await create_account(deps, f"wh-{uuid.uuid4().hex[:10]}", "free")
            ids.append(account.user_id)  # the account id is the user id
        async with pool.connection() as connection:  # opening an account announces its welcome credit: not ours
            await connection.execute(
                "UPDATE outbound_events SET dispatched = true WHERE account_id = ANY(%s)", (ids,))
        return ids

    return make


@pytest.fixture
async def db(database_url):
    """A plain connection (autocommit) for setting up and reading rows; every outbox row left is
    dispatched and every endpoint deleted afterwards, so tests do not see each other's."""
    async with await psycopg.AsyncConnection.connect(libpq_url(database_url), autocommit=True) as connection:
        # The events other tests' changes wrote (accounts opened, consumes) are not this test's to send,
        # nor are the endpoints other tests made this test's receivers.
        await connection.execute("UPDATE outbound_events SET dispatched = true WHERE NOT dispatched")
        await connection.execute("UPDATE webhook_endpoints SET deleted_at = now() WHERE deleted_at IS NULL")
        yield connection
        await connection.execute("UPDATE outbound_events SET dispatched = true WHERE NOT dispatched")
        await connection.execute("UPDATE webhook_endpoints SET deleted_at = now() WHERE deleted_at IS NULL")


async def add_endpoint(db, created_at: datetime, event_types: list[str] | None = None) -> str:
    endpoint_id = f"ep_{uuid.uuid4().hex[:10]}"
    await db.execute(
        "INSERT INTO webhook_endpoints (endpoint_id, url, event_types, enabled, secret, created_at, updated_at)"
        " VALUES (%s, %s, %s, true, %s, %s, %s)",
        (endpoint_id, f"https://receiver.test/{endpoint_id}", event_types or [], SECRET, created_at, created_at))
    return endpoint_id


async def add_events(db, account_id: str, count: int, created_at: datetime, event_type: str = "credit.granted") -> list[str]:
    """The account's next `count` outbox rows, numbered as the wallet-change path numbers them."""
    ids = []
    async with db.transaction():
        cursor = await db.execute(
            "UPDATE accounts SET last_outbound_seq = last_outbound_seq + %s WHERE account_id = %s"
            " RETURNING last_outbound_seq", (count, account_id))
        (last,) = await cursor.fetchone()
        for seq in range(last - count + 1, last + 1):
            event_id = f"evt_{account_id}_{seq}"
            payload = {"id": event_id, "type": event_type, "created_at": created_at.isoformat(), "user_id": account_id,
                       "data": {"seq": seq}}
            await db.execute(
                "INSERT INTO outbound_events (account_id, seq, event_id, type, created_at, payload)"
                " VALUES (%s, %s, %s, %s, %s, %s)", (account_id, seq, event_id, event_type, created_at, json.dumps(payload)))
            ids.append(event_id)
    return ids


class Receiver:
    """A fake transport: who sent what, when; answers by script (default 200) after a short delay."""

    def __init__(self, fail: set[str] | None = None, delay: tuple[float, float] = (0.0, 0.01)):
        self.log: list[tuple[str, str, int]] = []  # (sender, event id, seq)
        self.fail = fail or set()
        self.in_flight: set[str] = set()
        self.overlaps: list[str] = []
        self.delay = delay

    def transport(self, name: str):
        receiver = self

        class Transport:
            async def send(self, webhook: OutgoingWebhook) -> AttemptResult:
                if webhook.event_id in receiver.in_flight:
                    receiver.overlaps.append(webhook.event_id)
                receiver.in_flight.add(webhook.event_id)
                payload = json.loads(webhook.body)
                receiver.log.append((name, webhook.event_id, payload["data"]["seq"]))
                await asyncio.sleep(random.uniform(*receiver.delay))
                receiver.in_flight.discard(webhook.event_id)
                if webhook.event_id in receiver.fail:
                    receiver.fail.discard(webhook.event_id)
                    return AttemptResult(500, 1, "try again")
                return AttemptResult(200, 1, "ok")

        return Transport()


async def wait_for(condition, seconds: float = 20.0) -> None:
    async with asyncio.timeout(seconds):
        while not await condition():
            await asyncio.sleep(0.02)


async def statuses(db, event_ids: list[str]) -> dict[str, str]:
    cursor = await db.execute("SELECT event_id, status FROM webhook_deliveries WHERE event_id = ANY(%s)", (event_ids,))
    return dict(await cursor.fetchall())


async def all_delivered(db, event_ids: list[str]) -> bool:
    found = await statuses(db, event_ids)
    return len(found) == len(event_ids) and set(found.values()) == {"delivered"}


async def test_two_senders_send_each_event_once_in_order_per_account(pool, db, accounts):
    now = datetime.now(timezone.utc)
    await add_endpoint(db, now - timedelta(minutes=1))
    ids = await accounts(8)
    receiver = Receiver()
    clock = FixedClock(now)
    senders = [WebhookSender(PostgresOutboundQueue(pool), receiver.transport(name), clock, FAST) for name in ("a", "b")]
    for sender in senders:
        sender.start()
    event_ids: list[str] = []
    try:
        for round_ in range(5):  # events keep coming while both send
            for account_id in ids:
                event_ids += await add_events(db, account_id, 3, now)
            for sender in senders:
                sender.wake()
            await asyncio.sleep(0.03)
        await wait_for(lambda: all_delivered(db, event_ids))
    finally:
        for sender in senders:
            await sender.close()
    sent = [event_id for _, event_id, _ in receiver.log]
    assert sorted(sent) == sorted(event_ids), "each event sent exactly once"
    assert receiver.overlaps == []
    by_account = defaultdict(list)
    for _, event_id, seq in receiver.log:
        by_account[event_id.rsplit("_", 1)[0]].append(seq)
    assert all(seqs == sorted(seqs) for seqs in by_account.values()), by_account
    assert {name for name, _, _ in receiver.log} == {"a", "b"}, "both senders took part"
    cursor = await db.execute("SELECT count(*) FROM webhook_attempts WHERE status_code = 200 AND seq > 0 AND account_id = ANY(%s)",
                              (ids,))
    assert (await cursor.fetchone())[0] == len(event_ids)


async def test_a_retry_holds_its_line_and_no_other(pool, db, accounts):
    now = datetime.now(timezone.utc)
    await add_endpoint(db, now - timedelta(minutes=1))
    alice, bob = await accounts(2)
    alice_events = await add_events(db, alice, 3, now)
    bob_events = await add_events(db, bob, 3, now)
    receiver = Receiver(fail={alice_events[0]})
    clock = FixedClock(now)
    sender = WebhookSender(PostgresOutboundQueue(pool), receiver.transport("a"), clock, FAST, draw=lambda: 0.5)
    sender.start()
    try:
        await wait_for(lambda: all_delivered(db, bob_events))
        await asyncio.sleep(0.2)
        assert [e for _, e, _ in receiver.log if e in alice_events] == [alice_events[0]]
        assert (await statuses(db, alice_events)) == dict.fromkeys(alice_events, "pending")
        clock.set(now + timedelta(seconds=5))  # the retry's time
        await wait_for(lambda: all_delivered(db, alice_events))
    finally:
        await sender.close()
    assert [e for _, e, _ in receiver.log if e in alice_events] == [alice_events[0], *alice_events]
    cursor = await db.execute("SELECT attempt, status_code, response_excerpt FROM webhook_attempts"
                              " WHERE account_id = %s AND seq = (SELECT seq FROM outbound_events"
                              " WHERE account_id = %s AND event_id = %s) ORDER BY attempt", (alice, alice, alice_events[0]))
    assert await cursor.fetchall() == [(1, 500, "try again"), (2, 200, "ok")]


async def test_a_killed_senders_lease_runs_out_and_another_sends_it(pool, db, accounts):
    now = datetime.now(timezone.utc)
    await add_endpoint(db, now - timedelta(minutes=1))
    [alice] = await accounts(1)
    [event_id] = await add_events(db, alice, 1, now)
    dead_queue = PostgresOutboundQueue(pool)
    await dead_queue.dispatch(now, 100)
    [dead] = await dead_queue.claim(now, now + LEASE, 100, NO_SHARES)  # claimed, committed, then the sender was killed
    receiver = Receiver()
    clock = FixedClock(now + LEASE - timedelta(seconds=1))
    sender = WebhookSender(PostgresOutboundQueue(pool), receiver.transport("b"), clock, FAST)
    sender.start()
    try:
        await asyncio.sleep(0.3)
        assert receiver.log == [], "not while the lease holds"
        clock.set(now + LEASE)
        await wait_for(lambda: all_delivered(db, [event_id]))
    finally:
        await sender.close()
    assert [e for _, e, _ in receiver.log] == [event_id]
    # The killed sender's late record finds its lease gone and records nothing.
    assert await sender.record(dead, AttemptResult(200, 1)) == "lost_lease"
    cursor = await db.execute("SELECT count(*) FROM webhook_attempts WHERE account_id = %s", (alice,))
    assert (await cursor.fetchone())[0] == 1


async def test_410_disables_the_endpoint_and_five_days_failing_too(pool, db, accounts):
    now = datetime.now(timezone.utc)
    gone = await add_endpoint(db, now - timedelta(minutes=1))
    [alice] = await accounts(1)
    events = await add_events(db, alice, 2, now)

    class Gone:
        async def send(self, webhook):
            return AttemptResult(410, 2, "gone")

    sender = WebhookSender(PostgresOutboundQueue(pool), Gone(), FixedClock(now), FAST)
    sender.start()
    try:
        async def disabled() -> bool:
            cursor = await db.execute("SELECT enabled, disabled_reason FROM webhook_endpoints WHERE endpoint_id = %s", (gone,))
            enabled, reason = await cursor.fetchone()
            return not enabled and "410" in reason
        await wait_for(disabled)
        await asyncio.sleep(0.2)
    finally:
        await sender.close()
    assert await statuses(db, events) == {events[0]: "failed", events[1]: "pending"}  # waits for the endpoint

    await db.execute("UPDATE webhook_endpoints SET deleted_at = now() WHERE deleted_at IS NULL")
    failing = await add_endpoint(db, now - timedelta(minutes=1))
    await db.execute("UPDATE webhook_endpoints SET failing_since = %s WHERE endpoint_id = %s",
                     (now - timedelta(days=5, seconds=1), failing))
    [bob] = await accounts(1)
    await add_events(db, bob, 1, now)

    class Down:
        async def send(self, webhook):
            return AttemptResult(503, 2, "down")

    sender = WebhookSender(PostgresOutboundQueue(pool), Down(), FixedClock(now), FAST)
    sender.start()
    try:
        async def disabled_failing() -> bool:
            cursor = await db.execute("SELECT enabled, disabled_reason FROM webhook_endpoints WHERE endpoint_id = %s",
                                      (failing,))
            enabled, reason = await cursor.fetchone()
            return not enabled and "5 days" in (reason or "")
        await wait_for(disabled_failing)
    finally:
        await sender.close()


async def test_only_endpoints_that_existed_and_take_the_type_get_an_event(pool, db, accounts):
    now = datetime.now(timezone.utc)
    everything = await add_endpoint(db, now - timedelta(minutes=1))
    low_only = await add_endpoint(db, now - timedelta(minutes=1), ["balance.low"])
    [alice] = await accounts(1)
    before = await add_events(db, alice, 1, now - timedelta(minutes=2), "balance.low")  # before both endpoints
    granted = await add_events(db, alice, 1, now, "credit.granted")
    low = await add_events(db, alice, 1, now, "balance.low")
    events, deliveries = await PostgresOutboundQueue(pool).dispatch(now, 500)
    assert events >= 3
    cursor = await db.execute("SELECT event_id, endpoint_id FROM webhook_deliveries WHERE account_id = %s", (alice,))
    assert sorted(await cursor.fetchall()) == sorted(
        [(granted[0], everything), (low[0], everything), (low[0], low_only)])
    assert before  # written, dispatched, sent to nobody
    cursor = await db.execute("SELECT dispatched FROM outbound_events WHERE account_id = %s", (alice,))
    assert {row[0] for row in await cursor.fetchall()} == {True}


async def test_a_rotation_sends_both_secrets_while_it_lasts(pool, db, accounts):
    now = datetime.now(timezone.utc)
    endpoint = await add_endpoint(db, now - timedelta(minutes=1))
    await db.execute("UPDATE webhook_endpoints SET previous_secret = 'whsec_b2xk', previous_secret_until = %s"
                     " WHERE endpoint_id = %s", (now + timedelta(hours=24), endpoint))
    [alice] = await accounts(1)
    await add_events(db, alice, 1, now)
    queue = PostgresOutboundQueue(pool)
    await queue.dispatch(now, 500)
    [claimed] = [c for c in await queue.claim(now, now + LEASE, 100, NO_SHARES) if c.account_id == alice]
    assert claimed.secrets == (SECRET, "whsec_b2xk")
    [after] = [c for c in await queue.claim(now + timedelta(hours=25), now + timedelta(hours=25) + LEASE, 100, NO_SHARES)
               if c.account_id == alice]
    assert after.secrets == (SECRET,)


async def test_a_disabled_endpoint_is_paused_its_events_wait_and_go_in_order_once_enabled(pool, db, accounts):
    """Events written while an endpoint is disabled are its deliveries too (pending, not sent): enabling
    it sends them, each account's in order. Only a deleted endpoint gets no more."""
    now = datetime.now(timezone.utc)
    endpoint = await add_endpoint(db, now - timedelta(minutes=1))
    await db.execute("UPDATE webhook_endpoints SET enabled = false WHERE endpoint_id = %s", (endpoint,))
    alice, bob = await accounts(2)
    written = await add_events(db, alice, 3, now) + await add_events(db, bob, 2, now)
    receiver = Receiver()
    sender = WebhookSender(PostgresOutboundQueue(pool), receiver.transport("a"), FixedClock(now), FAST)
    sender.start()
    try:
        async def dispatched() -> bool:
            return len(await statuses(db, written)) == len(written)
        await wait_for(dispatched)
        await asyncio.sleep(0.2)
        assert receiver.log == [] and set((await statuses(db, written)).values()) == {"pending"}
        await db.execute("UPDATE webhook_endpoints SET enabled = true WHERE endpoint_id = %s", (endpoint,))
        sender.wake()
        await wait_for(lambda: all_delivered(db, written))
    finally:
        await sender.close()
    sent = [(event_id, seq) for _, event_id, seq in receiver.log]
    assert [e for e, _ in sent if e.startswith(f"evt_{alice}_")] == written[:3]
    assert [e for e, _ in sent if e.startswith(f"evt_{bob}_")] == written[3:]

    await db.execute("UPDATE webhook_endpoints SET deleted_at = now() WHERE endpoint_id = %s", (endpoint,))
    later = await add_events(db, alice, 1, now)
    await PostgresOutboundQueue(pool).dispatch(now, 500)
    assert await statuses(db, later) == {}


async def test_an_endpoint_that_hangs_holds_its_share_of_the_slots_and_no_more(pool, db, accounts):
    """Every send to `stuck` hangs (as for a whole 15 s timeout); the deliveries to `healthy`, due later
    than all of stuck's, are all delivered meanwhile, and stuck never holds more than its share."""
    now = datetime.now(timezone.utc)
    stuck = await add_endpoint(db, now - timedelta(minutes=1), ["balance.low"])
    healthy = await add_endpoint(db, now - timedelta(minutes=1), ["credit.granted"])
    stuck_accounts = await accounts(12)
    for account_id in stuck_accounts:
        await add_events(db, account_id, 1, now, "balance.low")
    await PostgresOutboundQueue(pool).dispatch(now, 500)  # stuck's deliveries are due first
    healthy_accounts = await accounts(6)
    healthy_events = [e for a in healthy_accounts for e in await add_events(db, a, 2, now + timedelta(seconds=1))]
    release = asyncio.Event()
    hanging: set[str] = set()
    most_hanging = 0

    class Transport:
        async def send(self, webhook: OutgoingWebhook) -> AttemptResult:
            nonlocal most_hanging
            if webhook.url.endswith(stuck):
                hanging.add(webhook.event_id)
                most_hanging = max(most_hanging, len(hanging))
                await release.wait()
                hanging.discard(webhook.event_id)
            return AttemptResult(200, 1, "ok")

    options = SenderOptions(poll_seconds=0.02, claim_batch=10, concurrency=8, per_endpoint=3)
    sender = WebhookSender(PostgresOutboundQueue(pool), Transport(), FixedClock(now + timedelta(seconds=2)), options)
    sender.start()
    try:
        await wait_for(lambda: all_delivered(db, healthy_events))
        assert len(hanging) == 3 and most_hanging == 3
    finally:
        release.set()
        await sender.close()
    cursor = await db.execute("SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = %s AND status = 'delivered'",
                              (healthy,))
    assert (await cursor.fetchone())[0] == len(healthy_events)


async def test_a_failing_endpoint_at_its_share_is_left_out_of_the_claim_scan(pool, db, accounts):
    """A failing endpoint with its two slots in flight and many overdue heads, older than everything
    else: a claim still takes the other endpoint's deliveries (its heads would otherwise fill the
    scan, and the window keep none of them)."""
    now = datetime.now(timezone.utc)
    failing = await add_endpoint(db, now - timedelta(minutes=1), ["balance.low"])
    healthy = await add_endpoint(db, now - timedelta(minutes=1), ["credit.granted"])
    await db.execute("UPDATE webhook_endpoints SET failing_since = %s WHERE endpoint_id = %s", (now, failing))
    for account_id in await accounts(30):
        await add_events(db, account_id, 1, now, "balance.low")
    queue = PostgresOutboundQueue(pool)
    await queue.dispatch(now, 500)  # the failing endpoint's heads are due first
    [bob] = await accounts(1)
    healthy_events = await add_events(db, bob, 1, now + timedelta(seconds=1))
    await queue.dispatch(now + timedelta(seconds=1), 500)
    shares = EndpointShares(per_endpoint=16, failing_per_endpoint=2, in_flight={failing: 2})
    later = now + timedelta(seconds=2)
    claimed = await queue.claim(later, later + LEASE, 4, shares)  # scans 16 rows: all the failing endpoint's
    assert [(c.endpoint_id, c.event_id) for c in claimed] == [(healthy, healthy_events[0])]
