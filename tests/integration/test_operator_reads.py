"""The operator console's reads on PostgreSQL (issue 23): search, the account page, the ledger with its
running balance (100,000 rows) and the time that expired under it, keyset paging with ties, the CSV
export's chunks and its end, usage, the service's records (heartbeats, hourly activity, the last tick)
and the legacy migration's runs."""

from __future__ import annotations

import dataclasses
import uuid
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from itertools import accumulate

import psycopg
import pytest

from billing.adapters.db.migration_runs import record_run_finished, record_run_started
from billing.adapters.db.operator_reads import PostgresOperatorReads
from billing.adapters.db.service_records import PostgresServiceRecords
from billing.domain.activity import HourCounts
from billing.domain.buckets import Source
from billing.domain.console import BadLine, ReplicaRecord
from billing.domain.errors import AccountNotFound, InvalidArgument
from billing.service.accounts import create_account
from billing.service.balance import get_balance
from billing.service.consume import consume
from billing.service.grants import create_grant
from billing.service.idle_upkeep import upkeep_idle_accounts
from billing.service.migration_runs import RunCounts, list_migration_runs
from billing.service.operator_account import get_account_overview
from billing.service.operator_health import get_service_activity, get_service_health
from billing.service.operator_ledger import ExportEnd, export_account_ledger, list_account_ledger
from billing.service.operator_search import search_accounts
from billing.service.operator_usage import get_account_usage
from billing.settings import libpq_url
from tests.support.database import _with_database

UTC = timezone.utc
LONG_LEDGER_ROWS = 100_000


@pytest.fixture
def console(deps):
    storage = deps.storage
    return dataclasses.replace(deps, operator_reads=PostgresOperatorReads(storage),
                               service_records=PostgresServiceRecords(storage))


def _sql(database_url: str, statement: str, params=None):
    with psycopg.connect(libpq_url(database_url), autocommit=True) as connection:
        cursor = connection.execute(statement, params)
        return cursor.fetchall() if cursor.description else None


def _append_ledger(database_url: str, account_id: str, rows: int, tie_every: int, start: datetime) -> None:
    """`rows` ledger rows on a bucket of their own, consistent with it (the ledger's invariants hold):
    a credit of 10 every 10th row, a consumption of 1 otherwise; `tie_every` rows share an occurred_at."""
    _sql(database_url, """
WITH a AS (
  UPDATE accounts SET last_bucket_seq = last_bucket_seq + 1, last_event_seq = last_event_seq + %(rows)s
  WHERE account_id = %(account)s RETURNING last_bucket_seq AS bucket, last_event_seq - %(rows)s AS base
), bucket AS (
  INSERT INTO buckets (account_id, bucket_seq, source, granted_seconds, remaining_seconds, granted_at)
  SELECT %(account)s, bucket, 'gift', 10 * %(credits)s, 11 * %(credits)s - %(rows)s, %(start)s FROM a
)
INSERT INTO ledger_events (account_id, event_seq, type, seconds, reason, bucket_seq, operation, occurred_at, metadata)
SELECT %(account)s, a.base + n,
       CASE WHEN n %% 10 = 1 THEN 'adjustment' ELSE 'consumption' END,
       CASE WHEN n %% 10 = 1 THEN 10 ELSE -1 END,
       CASE WHEN n %% 10 = 1 THEN 'seeded' ELSE '' END,
       a.bucket, CASE WHEN n %% 10 = 1 THEN NULL ELSE 'build' END,
       %(start)s + ((n - 1) / %(tie)s) * interval '1 second', jsonb_build_object('n', n)
FROM a, generate_series(1, %(rows)s) AS n
""", {"account": account_id, "rows": rows, "credits": (rows + 9) // 10, "tie": tie_every, "start": start})


def _expected(database_url: str, account_id: str) -> dict[int, int]:
    rows = _sql(database_url, "SELECT event_seq, seconds FROM ledger_events WHERE account_id = %s ORDER BY event_seq",
                (account_id,))
    return dict(zip((seq for seq, _ in rows), accumulate(seconds for _, seconds in rows)))


async def _all_pages(console, user_id, size, **options):
    seen, token = [], ""
    while True:
        page = await list_account_ledger(console, user_id, options.get("types", ()), options.get("from_at"),
                                         options.get("to_at"), size, token, options.get("order", ""))
        seen += page.lines
        if not page.next_page_token:
            return seen
        token = page.next_page_token


async def test_the_running_balance_of_a_100k_row_ledger(console, database_url, user_id, assert_ledger_balanced):
    await create_account(console, user_id, "free")
    _append_ledger(database_url, user_id, LONG_LEDGER_ROWS, tie_every=7, start=datetime(2026, 1, 1, tzinfo=UTC))
    await assert_ledger_balanced(user_id)
    expected = _expected(database_url, user_id)
    newest = max(expected)

    first = await list_account_ledger(console, user_id, (), None, None, 0, "", "")
    assert [line.event_seq for line in first.lines] == list(range(newest, newest - 50, -1))
    assert all(line.balance_after_seconds == expected[line.event_seq] for line in first.lines)

    # Pages deep in the ledger, from either end, and their anchors from the nearer one.
    page = first
    for _ in range(3):
        page = await list_account_ledger(console, user_id, (), None, None, 200, page.next_page_token, "")
        assert all(line.balance_after_seconds == expected[line.event_seq] for line in page.lines)
    oldest = await list_account_ledger(console, user_id, (), None, None, 200, "", "oldest_first")
    assert [line.event_seq for line in oldest.lines] == sorted(expected)[:200]
    assert all(line.balance_after_seconds == expected[line.event_seq] for line in oldest.lines)

    # A filter keeps its rows; their balances are still the whole ledger's.
    credits = await _all_pages(console, user_id, 200, types=("adjustment",))
    assert len(credits) == LONG_LEDGER_ROWS // 10 + 1  # the seeded ones and the welcome credit
    assert all(line.type == "adjustment" and line.balance_after_seconds == expected[line.event_seq] for line in credits)
    assert [line.event_seq for line in credits] == sorted((line.event_seq for line in credits), reverse=True)

    # The export: every row once, oldest first, in chunks that carry the running sum forward.
    exported = [line async for chunk in export_account_ledger(console, user_id, (), None, None) for line in chunk.lines]
    assert [line.event_seq for line in exported] == sorted(expected)
    assert all(line.balance_after_seconds == expected[line.event_seq] for line in exported)


async def test_the_timeline_explains_expired_time(console, user_id, advance, seed_bucket, assert_ledger_balanced):
    """Daily bonuses that expire unused, day after day, and a package that expires partly used: each
    row's available_after_seconds is what GetBalance said right after it, and the seconds between
    are explained by expired_before_seconds (no open hold here, so held seconds play no part)."""
    said: dict[datetime, int] = {}  # GetBalance's total at each instant something was written

    async def balance_now() -> int:
        said[console.clock.now()] = (await get_balance(console, user_id)).view.totals.total_seconds
        return said[console.clock.now()]

    await create_account(console, user_id, "free")  # welcome (never expires) + today's bonus
    await balance_now()
    for _ in range(3):  # three bonuses expire unused
        advance(days=1)
        await balance_now()  # grants the day's bonus
    package_expires_at = advance(days=1) + timedelta(days=1, hours=3)
    await seed_bucket(user_id, Source.PACKAGE, 3000, package_expires_at)
    await consume(console, user_id, "build", 1000, "t-1")  # today's bonus (900), then 100 of the package
    await balance_now()
    advance(days=2)  # the package (2,900 left) and two days' bonuses expire
    assert await balance_now() == 1800 + 900  # the welcome credit and today's bonus
    await assert_ledger_balanced(user_id)

    lines = await _all_pages(console, user_id, 3, order="oldest_first")
    last_at_instant = {line.occurred_at: line for line in lines}  # the last row written at each instant
    assert set(last_at_instant) == set(said)
    assert all(last_at_instant[at].available_after_seconds == total for at, total in said.items())
    previous = 0
    for line in lines:  # available after = available before + the row's seconds - what expired between
        assert line.available_after_seconds == previous + line.seconds - line.expired_before_seconds
        previous = line.available_after_seconds
    # Each day's bonus row shows yesterday's expiring unused; the package's credit, the day before's;
    # the last day's, the package's rest (day 4's bonus was used up, day 5 had no read, so no bonus).
    assert [(line.type, line.expired_before_seconds) for line in lines if line.expired_before_seconds] == [
        ("daily_bonus", 900), ("daily_bonus", 900), ("daily_bonus", 900), ("package_credit", 900), ("daily_bonus", 2900)]
    assert lines[-1].balance_after_seconds - lines[-1].available_after_seconds == 900 * 4 + 2900

    # A filter keeps each row's numbers (they are the whole ledger's); so does the export.
    by_seq = {line.event_seq: line for line in lines}
    filtered = await _all_pages(console, user_id, 2, types=("daily_bonus",))
    assert filtered and all(line == by_seq[line.event_seq] for line in filtered)
    exported = [line async for chunk in export_account_ledger(console, user_id, (), None, None, 2) for line in chunk.lines]
    assert exported == lines

    # Expiry after the newest row: the page says how much, and the rest is what GetBalance shows.
    advance(days=1)
    page = await list_account_ledger(console, user_id, (), None, None, 0, "", "")
    assert page.expired_since_last_row_seconds == 900
    available = page.lines[0].available_after_seconds - page.expired_since_last_row_seconds
    assert await balance_now() == available + 900  # today's bonus, granted by that read
    assert (await list_account_ledger(console, user_id, (), None, None, 0, "", "")).expired_since_last_row_seconds == 0


async def test_the_timeline_counts_seconds_taken_after_expiry_as_expired_at_the_expiry(
    console, user_id, advance, assert_ledger_balanced,
):
    """A starter period ends with its 300 minutes unused: the close (at the next read, a day later)
    rolls 150 over and discards the 150 over the cap out of the expired period bucket. The discarded
    seconds were lost at the period's end: the first row after it says they expired, the discard's
    row (which takes them out of an empty-looking, expired bucket) does not move what is available,
    and each instant's last row shows what GetBalance said then."""
    import json

    from billing.service.webhooks import handle_webhook
    from tests.support import stripe_events as se
    from tests.support.fake_payments import VALID_SIGNATURE, FakePaymentProvider

    provider = FakePaymentProvider()
    paying = dataclasses.replace(console, payments=provider)
    said: dict[datetime, int] = {}

    async def balance_now() -> int:
        said[paying.clock.now()] = (await get_balance(paying, user_id)).view.totals.total_seconds
        return said[paying.clock.now()]

    await create_account(paying, user_id, "free")
    await balance_now()
    customer = f"cus_{user_id}"
    async with paying.storage.transaction() as uow:
        await uow.payment_profiles.add_customer(user_id, customer, paying.clock.now())
        await uow.commit()
    start = paying.clock.now()
    end = start + timedelta(days=30)
    provider.set_subscription(f"sub_{user_id}", user_id, "starter", "active", start, end)
    await handle_webhook(paying, json.dumps(se.invoice_paid(
        f"in_{user_id}", f"pi_in_{user_id}", f"sub_{user_id}", user_id, "starter", int(start.timestamp()),
        int(end.timestamp()), 999, int(start.timestamp()), "subscription_create", customer=customer)).encode(),
        VALID_SIGNATURE)
    await balance_now()
    advance(days=31)
    await balance_now()  # closes the period: rollover out, rollover in, discard
    await assert_ledger_balanced(user_id)

    lines = await _all_pages(console, user_id, 2, order="oldest_first")
    last_at_instant = {line.occurred_at: line for line in lines}
    assert set(last_at_instant) == set(said)
    assert all(last_at_instant[at].available_after_seconds == total for at, total in said.items())
    discards = [line for line in lines if line.type == "rollover_discard"]
    assert [line.seconds for line in discards] == [-150 * 60]
    previous = 0
    for line in lines:  # a row taking expired seconds leaves available as it was
        moved = 0 if line.type == "rollover_discard" else line.seconds
        assert line.available_after_seconds == previous + moved - line.expired_before_seconds, line
        previous = line.available_after_seconds
    closing = [line for line in lines if line.occurred_at == paying.clock.now()]
    assert sum(line.expired_before_seconds for line in closing) >= 150 * 60  # the discarded part, and bonuses


async def test_a_clock_stepping_back_counts_an_expiry_once(console, database_url, user_id, advance, seed_bucket):
    """Rows of two replicas: the second is stamped a minute before its predecessor, across a bucket's
    expiry. The timeline takes the running maximum of occurred_at: the expiry is counted at the first
    row after it, and neither un-expired nor counted again."""
    await create_account(console, user_id, "free")
    expires_at = advance(hours=1) + timedelta(hours=1)
    await seed_bucket(user_id, Source.PACKAGE, 500, expires_at)
    advance(hours=2)
    await consume(console, user_id, "build", 60, "c-1")
    advance(minutes=30)
    await consume(console, user_id, "build", 60, "c-2")
    advance(minutes=30)
    await consume(console, user_id, "build", 60, "c-3")
    rows = _sql(database_url, "SELECT event_seq FROM ledger_events WHERE account_id = %s AND type = 'consumption' "
                "ORDER BY event_seq", (user_id,))
    stepped_back = rows[1][0]  # c-2, stamped before the expiry (and before c-1)
    _sql(database_url, "UPDATE ledger_events SET occurred_at = %s WHERE account_id = %s AND event_seq = %s",
         (expires_at - timedelta(minutes=1), user_id, stepped_back))

    lines = await _all_pages(console, user_id, 1, order="oldest_first")
    consumed = [line for line in lines if line.type == "consumption"]
    assert [line.expired_before_seconds for line in consumed] == [500, 0, 0]
    assert consumed[1].available_after_seconds == consumed[0].available_after_seconds - 60  # not un-expired
    assert consumed[2].available_after_seconds == consumed[1].available_after_seconds - 60


async def test_the_export_says_how_it_ended(console, database_url, user_id):
    await create_account(console, user_id, "free")
    _append_ledger(database_url, user_id, 5, tie_every=1, start=datetime(2026, 3, 1, tzinfo=UTC))
    rows = len(_expected(database_url, user_id))

    async def ends(**limits):
        chunks = [chunk async for chunk in export_account_ledger(console, user_id, (), None, None, **limits)]
        assert all(chunk.end is None for chunk in chunks[:-1])
        return [len(chunk.lines) for chunk in chunks], chunks[-1].end

    assert await ends(chunk_rows=2) == ([2, 2, 2, 1][: (rows + 1) // 2], ExportEnd(rows, truncated=False))
    assert await ends(chunk_rows=2, rows_max=rows) == ([2] * (rows // 2) + [rows % 2] * (rows % 2),
                                                       ExportEnd(rows, truncated=False))
    assert await ends(chunk_rows=2, rows_max=3) == ([2, 1], ExportEnd(3, truncated=True))
    assert await ends(chunk_rows=10, rows_max=rows - 1) == ([rows - 1], ExportEnd(rows - 1, truncated=True))
    nothing = [chunk async for chunk in export_account_ledger(console, user_id, ("auto_topup_triggered",), None, None)]
    assert [(chunk.lines, chunk.end) for chunk in nothing] == [([], ExportEnd(0, truncated=False))]


@pytest.mark.parametrize("order", ["newest_first", "oldest_first"])
async def test_keyset_pages_skip_and_repeat_nothing_with_ties_on_occurred_at(console, database_url, user_id, order):
    await create_account(console, user_id, "free")
    _append_ledger(database_url, user_id, 103, tie_every=25, start=datetime(2026, 3, 1, tzinfo=UTC))
    expected = _expected(database_url, user_id)
    for size in (1, 7, 50, 200):
        lines = await _all_pages(console, user_id, size, order=order)
        seqs = [line.event_seq for line in lines]
        assert seqs == sorted(expected, reverse=order == "newest_first")
        assert all(line.balance_after_seconds == expected[line.event_seq] for line in lines)


async def test_a_date_range_is_from_inclusive_to_exclusive(console, database_url, user_id):
    await create_account(console, user_id, "free")
    start = datetime(2026, 3, 1, tzinfo=UTC)
    _append_ledger(database_url, user_id, 60, tie_every=10, start=start)  # 6 instants, 10 rows each
    lines = await _all_pages(console, user_id, 7, from_at=start + timedelta(seconds=1),
                             to_at=start + timedelta(seconds=3), types=("consumption",))
    assert len(lines) == 18 and {line.occurred_at for line in lines} == {start + timedelta(seconds=s) for s in (1, 2)}


async def test_bad_ledger_requests_name_their_field(console, user_id):
    await create_account(console, user_id, "free")
    with pytest.raises(InvalidArgument) as bad:
        await list_account_ledger(console, user_id, ("consumption", "refund_of_sorts"), None, None, 0, "", "")
    assert bad.value.field == "types"
    with pytest.raises(InvalidArgument) as bad:
        await list_account_ledger(console, user_id, (), None, None, 201, "", "")
    assert bad.value.field == "page_size"
    with pytest.raises(InvalidArgument) as bad:
        await list_account_ledger(console, user_id, (), None, None, 0, "bm90LWEtdG9rZW4=", "")
    assert bad.value.field == "page_token"
    with pytest.raises(InvalidArgument) as bad:
        await list_account_ledger(console, user_id, (), None, None, 0, "", "sideways")
    assert bad.value.field == "order"
    page = await list_account_ledger(console, user_id, (), None, None, 1, "", "")
    with pytest.raises(InvalidArgument) as bad:  # a newest-first token read oldest first
        await list_account_ledger(console, user_id, (), None, None, 1, page.next_page_token, "oldest_first")
    assert bad.value.field == "page_token"
    with pytest.raises(AccountNotFound):
        await list_account_ledger(console, "nobody-" + uuid.uuid4().hex, (), None, None, 0, "", "")


async def test_search_by_prefix_and_by_stripe_ids(console, clock):
    stem = f"srch-{uuid.uuid4().hex[:8]}"
    for suffix in ("b", "a", "c-1", "c-2"):
        await create_account(console, f"{stem}-{suffix}", "free")
    await create_account(console, f"{stem}x", "free")
    found = await search_accounts(console, f"{stem}-", 0)
    assert [(f.user_id, f.matched_by) for f in found] == [
        (f"{stem}-{s}", "user_id_prefix") for s in ("a", "b", "c-1", "c-2")]
    assert found[0].totals.total_seconds > 0 and found[0].plan_key == "free"
    assert [f.user_id for f in await search_accounts(console, f"{stem}-", 2)] == [f"{stem}-a", f"{stem}-b"]

    owner = f"{stem}-b"
    customer, payment, subscription = (f"{kind}_{uuid.uuid4().hex[:10]}" for kind in ("cus", "pi", "sub"))
    async with console.storage.transaction() as uow:
        await uow.payment_profiles.add_customer(owner, customer, clock.now())
        await uow.payment_profiles.claim_payment(payment, owner, clock.now())
        await uow.payment_profiles.set_subscription(owner, subscription, clock.now())
        await uow.commit()
    for stripe_id, kind in ((customer, "stripe_customer"), (payment, "stripe_payment"), (subscription, "stripe_subscription")):
        assert [(f.user_id, f.matched_by) for f in await search_accounts(console, stripe_id, 0)] == [(owner, kind)]
    assert await search_accounts(console, "pi_unknown_" + uuid.uuid4().hex, 0) == []
    for query, field in (("", "query"), ("x" * 201, "query"), ("a\nb", "query")):
        with pytest.raises(InvalidArgument) as bad:
            await search_accounts(console, query, 0)
        assert bad.value.field == field
    with pytest.raises(InvalidArgument) as bad:
        await search_accounts(console, stem, 51)
    assert bad.value.field == "limit"


async def test_the_account_overview(console, database_url, user_id, clock):
    await create_account(console, user_id, "free")
    await create_grant(console, user_id, "gift", 600, "sorry", "g-1")
    await consume(console, user_id, "build", 100, "c-1")
    key_at = clock.now()
    _sql(database_url, "INSERT INTO api_keys (key_id, scope, user_id, created_at, expires_at, revoked_at) "
                       "VALUES (%s, 'user', %s, %s, %s, %s), (%s, 'user', %s, %s, %s, NULL)",
         (f"k_old_{user_id}", user_id, key_at - timedelta(hours=2), key_at, key_at - timedelta(hours=1),
          f"k_new_{user_id}", user_id, key_at, key_at + timedelta(hours=1)))
    overview = await get_account_overview(console, user_id)
    balance = await get_balance(console, user_id)
    assert overview.report.view.totals == balance.view.totals
    assert overview.extras.ledger_sum_seconds == balance.view.totals.total_seconds  # nothing expired or held
    assert [k.key_id for k in overview.extras.keys] == [f"k_new_{user_id}", f"k_old_{user_id}"]
    assert overview.extras.keys[1].revoked_at is not None and overview.extras.keys[0].revoked_at is None
    assert overview.extras.customer_id is None and overview.extras.payments == () and overview.extras.holds == ()
    with pytest.raises(AccountNotFound):
        await get_account_overview(console, "nobody-" + uuid.uuid4().hex)


async def test_usage_per_day_and_operation(console, user_id, clock):
    now = clock.now()
    clock.set(now - timedelta(days=3))
    await create_account(console, user_id, "free")
    await consume(console, user_id, "build", 40, "u-1")
    clock.set(now)
    await consume(console, user_id, "plan", 5, "u-2")
    await consume(console, user_id, "build", 7, "u-3")
    usage = await get_account_usage(console, user_id, 0)
    assert [(r.day, r.operation, r.seconds) for r in usage.rows] == [
        ((now - timedelta(days=3)).date(), "build", 40), (now.date(), "build", 7), (now.date(), "plan", 5)]
    assert usage.total_seconds == 52
    assert (await get_account_usage(console, user_id, 1)).total_seconds == 12
    with pytest.raises(InvalidArgument) as bad:
        await get_account_usage(console, user_id, 91)
    assert bad.value.field == "days"


async def test_heartbeats_activity_and_the_last_tick(console, clock, database_url):
    now = clock.now()
    records = console.service_records
    replica = ReplicaRecord("r_it_" + uuid.uuid4().hex[:8], "host-a", 4242, now - timedelta(minutes=5), now)
    live_since = now - timedelta(seconds=30)
    live = await records.heartbeat(replica, live_since)  # this one, and any other test's live replica
    assert live >= 1
    # A heartbeat answers how many replicas are live (a replica's share of the per-key limits).
    other = ReplicaRecord("r_it_" + uuid.uuid4().hex[:8], "host-b", 4243, now, now)
    assert await records.heartbeat(other, live_since) == live + 1
    assert await records.heartbeat(replica, live_since) == live + 1  # counted once, however often it beats
    hour = now.replace(minute=0, second=0, microsecond=0)
    before = dict(await get_service_activity(console, 2))
    await records.set_activity(replica.replica_id, {hour: HourCounts(consumed_seconds=30, consumes=2, refusals=1)})
    # A replica's row is set, not added to: the second report holds the hour's counts so far.
    await records.set_activity(replica.replica_id, {hour: HourCounts(consumed_seconds=42, consumes=3, refusals=1,
                                                                     webhooks_failed=1)})
    await records.set_activity(replica.replica_id, {hour: HourCounts(consumed_seconds=42, consumes=3, refusals=1,
                                                                     webhooks_failed=1)})
    await records.set_activity("r_other_" + uuid.uuid4().hex[:8], {hour: HourCounts(topups_succeeded=3)})
    hours = await get_service_activity(console, 2)
    assert [h for h, _ in hours] == [hour - timedelta(hours=1), hour]
    counted, earlier = hours[1][1], before[hour]
    assert (counted.consumed_seconds - earlier.consumed_seconds, counted.consumes - earlier.consumes,
            counted.refusals - earlier.refusals, counted.topups_succeeded - earlier.topups_succeeded,
            counted.webhooks_failed - earlier.webhooks_failed) == (42, 3, 1, 3, 1)

    # Pruning: heartbeats unseen for a day and hours older than 30 days go, the rest stays.
    stale = ReplicaRecord("r_stale_" + uuid.uuid4().hex[:8], "host-b", 1, now - timedelta(days=3), now - timedelta(days=2))
    assert await records.heartbeat(stale, now - timedelta(days=2)) >= 3  # seen since: the three of this test
    await records.set_activity(stale.replica_id, {hour - timedelta(days=31): HourCounts(consumes=1)})
    await records.prune(now - timedelta(days=1), now - timedelta(days=30))
    assert _sql(database_url, "SELECT count(*) FROM replica_heartbeats WHERE replica_id = %s", (stale.replica_id,)) == [(0,)]
    assert _sql(database_url, "SELECT count(*) FROM service_activity WHERE replica_id = %s", (stale.replica_id,)) == [(0,)]
    assert _sql(database_url, "SELECT count(*) FROM service_activity WHERE replica_id = %s", (replica.replica_id,)) == [(1,)]

    await upkeep_idle_accounts(console)
    health = await get_service_health(console)
    assert health.database_ok and health.pool.max_size == 8
    assert replica.replica_id in [r.replica_id for r in health.counts.replicas]
    assert health.counts.last_tick_at == now
    with pytest.raises(InvalidArgument) as bad:
        await get_service_activity(console, 169)
    assert bad.value.field == "hours"


async def test_migration_runs_page_newest_first(console, database_url, clock):
    (latest,), = _sql(database_url, "SELECT max(started_at) FROM migration_runs")
    start = max(clock.now(), latest or clock.now()) + timedelta(days=1)  # after any run recorded before
    ids = [f"run_it_{uuid.uuid4().hex[:8]}_{n}" for n in range(3)]
    for n, run_id in enumerate(ids):
        record_run_started(database_url, run_id, f"legacy-{n}.csv", start + timedelta(minutes=n))
    record_run_finished(database_url, ids[0], RunCounts(10, 7, 1, 2), [BadLine(3, "bad plan"), BadLine(9, "no id")],
                        start + timedelta(minutes=1))
    first = await list_migration_runs(console, 2, "")
    assert [r.run_id for r in first.runs] == [ids[2], ids[1]] and first.runs[0].finished_at is None
    rest = await list_migration_runs(console, 2, first.next_page_token)
    finished = rest.runs[0]
    assert finished.run_id == ids[0] and finished.finished_at == start + timedelta(minutes=1)
    assert (finished.rows_read, finished.accounts_migrated, finished.accounts_skipped, finished.bad_lines) == (10, 7, 1, 2)
    assert finished.bad_line_samples == (BadLine(3, "bad plan"), BadLine(9, "no id"))
    with pytest.raises(InvalidArgument) as bad:
        await list_migration_runs(console, 0, "garbage!")
    assert bad.value.field == "page_token"


def test_migrating_builds_the_prefix_index_concurrently_and_two_migrators_take_turns(database_url):
    """Two processes migrating one fresh database at once (replicas with BILLING_MIGRATE_ON_START):
    one migrates under the session lock, the other waits, finds nothing to do; 0013's concurrent
    build (outside a transaction) leaves a valid index."""
    name = f"billing_two_{uuid.uuid4().hex[:10]}"
    server = database_url.rsplit("/", 1)[0] + "/postgres"
    _sql(server, f'CREATE DATABASE "{name}"')
    url = _with_database(database_url, name)
    try:
        script = f"from billing.adapters.db.migrate import upgrade_to_head; upgrade_to_head({url!r})"
        migrators = [subprocess.Popen([sys.executable, "-c", script]) for _ in range(2)]  # Alembic is per process
        assert [migrator.wait(timeout=300) for migrator in migrators] == [0, 0]
        (valid, definition), = _sql(url, """
SELECT i.indisvalid, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE c.relname = 'accounts_id_prefix'""")
        assert valid and 'COLLATE "C"' in definition
        assert _sql(url, "SELECT version_num FROM alembic_version") == _sql(database_url, "SELECT version_num FROM alembic_version")
    finally:
        _sql(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
