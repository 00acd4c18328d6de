"""The operator console's reads on PostgreSQL (service/ports.py OperatorReads).

Each read takes a reading unit of work of the storage (so an outage is Unavailable, and the
availability probe answers first). Ledger pages follow the ledger's own order (event_seq, unique
per account), so keyset paging never skips nor repeats a row, whatever occurred_at's ties. Their
running balance is the sum of every row of the account up to each row: the page's range is
summed with a window, and the sum before it is taken from the nearer end of the ledger (the rows
before the page, or the buckets' total, which equals the ledger's sum, less the rows from the page
on), all on the primary key's range of the account (no covering index: docs/decisions.md). The same
statement reads the account's expiring buckets and the rows that emptied them after their expiry
(what had expired by each row: domain/expiry_timeline.py)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any, Sequence

from psycopg.rows import TupleRow

from billing.adapters.db.holds import PostgresHolds
from billing.adapters.db.unit_of_work import PostgresStorage
from billing.domain.activity import COUNTERS, HourCounts
from billing.domain.console import (
    AccountExtras, BadLine, HealthCounts, IssuedKeyRow, LedgerFilter, LedgerLine, LedgerSlice, MigrationRunRecord,
    PaymentRow, PoolState, ReplicaRecord, RunningAnchor,
)
from billing.domain.expiry_timeline import ExpiredSeconds, ExpiringBucket, LaterDebit

# The running maximum of occurred_at looks this many rows back before a page: a clock that steps back
# further than that (over more rows) may count an expiry twice; reading every row before the page
# would cost a page in the middle of a long ledger its whole first half.
CLOCK_STEP_ROWS = 100
# Counts of a backlog stop here: the panel says "at least", and a flood costs a bounded scan.
BACKLOG_COUNT_MAX = 100_000
KEYS_SHOWN = 50
PAYMENTS_SHOWN = 50
REPLICAS_SHOWN = 100
# A delivery fails at most ~5 days after its event (domain/delivery_outcomes.py): older ones are not counted.
DELIVERY_LIFETIME = timedelta(days=7)
# A bound past every account id with the prefix (ids are ASCII; U+10FFFF sorts after them in byte order).
PREFIX_END = chr(0x10FFFF)
KEPT_FOR_AN_OPERATOR = "outcome <> 'processed' AND (payload IS NOT NULL OR payload_text IS NOT NULL)"

_BY_PREFIX = """
SELECT account_id FROM accounts
WHERE account_id COLLATE "C" >= %(low)s AND account_id COLLATE "C" < %(high)s
ORDER BY account_id COLLATE "C" LIMIT %(limit)s
"""
_BY_STRIPE_ID = {
    "stripe_customer": "SELECT account_id FROM payment_customers WHERE customer_id = %s",
    "stripe_payment": "SELECT account_id FROM payment_owners WHERE payment_id = %s",
    "stripe_subscription": (
        "SELECT account_id FROM payment_profiles WHERE subscription_id = %s ORDER BY updated_at DESC LIMIT 1"
    ),
}

_EXTRAS = f"""
SELECT p.customer_id, p.subscription_id, a.holds_open_count,
  (SELECT coalesce(json_agg(k ORDER BY k.created_at DESC, k.key_id), '[]') FROM (
     SELECT key_id, scope, user_id, created_at, expires_at, revoked_at FROM api_keys
     WHERE user_id = %(account_id)s ORDER BY created_at DESC, key_id LIMIT {KEYS_SHOWN}) k),
  (SELECT coalesce(json_agg(m ORDER BY m.paid_at DESC, m.payment_id), '[]') FROM (
     SELECT payment_id, kind, item_key, amount_cents, currency, granted_seconds, refunded_cents, paid_at FROM payments
     WHERE account_id = %(account_id)s ORDER BY paid_at DESC, payment_id LIMIT {PAYMENTS_SHOWN}) m),
  (SELECT coalesce(sum(seconds), 0) FROM ledger_events WHERE account_id = %(account_id)s)
FROM accounts a LEFT JOIN payment_profiles p ON p.account_id = a.account_id
WHERE a.account_id = %(account_id)s
"""

_LEDGER_COLUMNS = "l.event_seq, l.type, l.seconds, l.reason, l.occurred_at, l.operation, l.bucket_seq, l.metadata"
# One row per page row, or one row of NULLs when the page is empty; none when there is no account.
_LEDGER_PAGE = """
SELECT a.last_event_seq, {columns}
FROM accounts a
LEFT JOIN LATERAL (
  SELECT * FROM ledger_events l
  WHERE l.account_id = a.account_id AND l.event_seq {after} %(after)s {filters}
  ORDER BY l.event_seq {direction} LIMIT %(limit)s
) l ON true
WHERE a.account_id = %(account_id)s
ORDER BY l.event_seq {direction}
"""
_SUM_BEFORE = "(SELECT coalesce(sum(seconds), 0) FROM ledger_events WHERE account_id = %(account_id)s AND event_seq < %(low)s)"
_SUM_FROM_THE_END = (
    "((SELECT coalesce(sum(remaining_seconds), 0) FROM buckets WHERE account_id = %(account_id)s)"
    " - (SELECT coalesce(sum(seconds), 0) FROM ledger_events WHERE account_id = %(account_id)s AND event_seq >= %(low)s))"
)
# One statement (one snapshot), four kinds of rows:
# - 'row': the running sum at each page row (the anchor plus a window over the page's range, every
#   type), its instant and the instant of the account's row before it (whatever the filter), both
#   the running maximum of occurred_at (replicas' clocks may step back), from the CLOCK_STEP_ROWS rows
#   before the page on;
# - 'bucket': the account's expiring buckets, empty ones too (an expired bucket may have been emptied
#   after its expiry: that is what expired);
# - 'debit': rows that took seconds out of an expiring bucket at or after its expiry
#   (ledger_debits_by_bucket): a period close's discard, a refund or adjustment; not a hold's commit
#   (consumption: held seconds count as available until it) nor a rollover's outgoing leg (its
#   seconds were not lost: they move, at that row, into the rollover bucket);
# - 'newest': the instant of the account's newest row.
_EXPLAINED = f"""
SELECT 'row', r.event_seq, r.running + {{anchor}}, r.previous_at, r.at, NULL::int
FROM (SELECT event_seq, running, greatest(seen, before.at) AS at,
             lag(greatest(seen, before.at), 1, before.at) OVER (ORDER BY event_seq) AS previous_at
      FROM (SELECT event_seq, sum(seconds) OVER w AS running, max(occurred_at) OVER w AS seen
            FROM ledger_events
            WHERE account_id = %(account_id)s AND event_seq >= %(low)s AND event_seq <= %(high)s
            WINDOW w AS (ORDER BY event_seq)) page_range,
           (SELECT max(p.occurred_at) AS at FROM (
              SELECT occurred_at FROM ledger_events
              WHERE account_id = %(account_id)s AND event_seq < %(low)s
              ORDER BY event_seq DESC LIMIT {CLOCK_STEP_ROWS}) p) before) r
WHERE r.event_seq = ANY(%(seqs)s)
UNION ALL
SELECT 'bucket', bucket_seq, remaining_seconds, expires_at, NULL, NULL FROM buckets
WHERE account_id = %(account_id)s AND expires_at IS NOT NULL
UNION ALL
SELECT 'debit', l.event_seq, l.seconds, l.occurred_at, NULL, l.bucket_seq
FROM buckets b JOIN ledger_events l
  ON l.account_id = b.account_id AND l.bucket_seq = b.bucket_seq AND l.occurred_at >= b.expires_at
 AND l.seconds < 0 AND l.type NOT IN ('consumption', 'rollover_created')
WHERE b.account_id = %(account_id)s AND b.expires_at IS NOT NULL
UNION ALL
(SELECT 'newest', event_seq, NULL, occurred_at, NULL, NULL FROM ledger_events WHERE account_id = %(account_id)s
 ORDER BY event_seq DESC LIMIT 1)
"""

_HEALTH = f"""
SELECT
  (SELECT coalesce(json_agg(r ORDER BY r.started_at, r.replica_id), '[]') FROM (
     SELECT replica_id, host, pid, started_at, seen_at FROM replica_heartbeats WHERE seen_at >= %(seen_since)s
     ORDER BY started_at, replica_id LIMIT {REPLICAS_SHOWN}) r),
  (SELECT finished_at FROM job_runs WHERE job = 'tick'),
  (SELECT count(*) FROM (SELECT 1 FROM outbound_events WHERE NOT dispatched LIMIT {BACKLOG_COUNT_MAX}) e),
  (SELECT count(*) FROM (SELECT 1 FROM webhook_deliveries WHERE status = 'pending' LIMIT {BACKLOG_COUNT_MAX}) d),
  (SELECT count(*) FROM (SELECT 1 FROM webhook_deliveries WHERE status = 'failed' AND created_at >= %(oldest)s
                         AND finished_at >= %(day_ago)s LIMIT {BACKLOG_COUNT_MAX}) f),
  (SELECT count(*) FROM (SELECT 1 FROM webhook_events WHERE {KEPT_FOR_AN_OPERATOR} LIMIT {BACKLOG_COUNT_MAX}) k)
"""

_ACTIVITY = f"""
SELECT hour_at, {", ".join(f"sum({c})" for c in COUNTERS)} FROM service_activity
WHERE hour_at >= %(since)s GROUP BY hour_at ORDER BY hour_at
"""

_RUN_COLUMNS = ("run_id, source_file, started_at, finished_at, rows_read, accounts_migrated, accounts_skipped, "
                "bad_lines, bad_line_samples")
_RUNS = f"SELECT {_RUN_COLUMNS} FROM migration_runs ORDER BY started_at DESC, run_id DESC LIMIT %(limit)s"
_RUNS_BEFORE = f"""
SELECT {_RUN_COLUMNS} FROM migration_runs WHERE (started_at, run_id) < (%(started_at)s, %(run_id)s)
ORDER BY started_at DESC, run_id DESC LIMIT %(limit)s
"""


class PostgresOperatorReads:
    def __init__(self, storage: PostgresStorage):
        self._storage = storage

    async def _rows(self, query: str, params: Any) -> list[TupleRow]:
        async with self._storage.reader() as uow:
            cursor = await (await uow.connection()).execute(query, params)
            return await cursor.fetchall()

    async def accounts_by_prefix(self, prefix: str, limit: int) -> list[str]:
        rows = await self._rows(_BY_PREFIX, {"low": prefix, "high": prefix + PREFIX_END, "limit": limit})
        return [row[0] for row in rows]

    async def account_of_stripe_id(self, kind: str, stripe_id: str) -> str | None:
        rows = await self._rows(_BY_STRIPE_ID[kind], (stripe_id,))
        return rows[0][0] if rows else None

    async def account_extras(self, account_id: str) -> AccountExtras:
        async with self._storage.reader() as uow:
            connection = await uow.connection()
            row = await (await connection.execute(_EXTRAS, {"account_id": account_id})).fetchone()
            assert row is not None, "the caller read the account first"
            customer_id, subscription_id, open_holds, keys, payments, ledger_sum = row
            holds = await PostgresHolds(connection).open_and_one(account_id, None) if open_holds else []
        return AccountExtras(
            customer_id=customer_id, subscription_id=subscription_id,
            holds=tuple(sorted(holds, key=lambda h: (h.expires_at, h.hold_id))),
            keys=tuple(IssuedKeyRow(k["key_id"], k["scope"], k["user_id"], _instant(k["created_at"]),
                                    _instant(k["expires_at"]), _maybe_instant(k["revoked_at"])) for k in keys),
            payments=tuple(PaymentRow(p["payment_id"], p["kind"], p["item_key"], p["amount_cents"], p["currency"],
                                      p["granted_seconds"], p["refunded_cents"], _instant(p["paid_at"]))
                           for p in payments),
            ledger_sum_seconds=int(ledger_sum),
        )

    async def ledger_page(
        self, account_id: str, where: LedgerFilter, after_event_seq: int | None, limit: int,
        anchor: RunningAnchor | None = None,
    ) -> LedgerSlice | None:
        assert anchor is None or (where.oldest_first and anchor.event_seq == after_event_seq)
        params: dict[str, Any] = {"account_id": account_id, "limit": limit}
        filters = []
        if where.types:
            filters.append("AND l.type = ANY(%(types)s)")
            params["types"] = list(where.types)
        if where.from_at is not None:
            filters.append("AND l.occurred_at >= %(from_at)s")
            params["from_at"] = where.from_at
        if where.to_at is not None:
            filters.append("AND l.occurred_at < %(to_at)s")
            params["to_at"] = where.to_at
        if where.oldest_first:
            params["after"] = 0 if after_event_seq is None else after_event_seq
            query = _LEDGER_PAGE.format(columns=_LEDGER_COLUMNS, after=">", direction="ASC", filters=" ".join(filters))
        else:
            params["after"] = 2**63 - 1 if after_event_seq is None else after_event_seq
            query = _LEDGER_PAGE.format(columns=_LEDGER_COLUMNS, after="<", direction="DESC", filters=" ".join(filters))
        async with self._storage.reader() as uow:
            connection = await uow.connection()
            rows = await (await connection.execute(query, params)).fetchall()
            if not rows:
                return None
            page = [row[1:] for row in rows if row[1] is not None]
            last_event_seq = int(rows[0][0])
            seqs = [int(row[0]) for row in page]
            low, high = (min(seqs), max(seqs)) if seqs else (0, -1)
            sums: dict[str, Any] = {"account_id": account_id, "low": low, "high": high, "seqs": seqs}
            if anchor is not None:
                sums["low"], sums["anchor"] = anchor.event_seq + 1, anchor.balance_seconds
                start = "%(anchor)s::bigint"
            elif low - 1 <= last_event_seq - low:
                start = _SUM_BEFORE
            else:
                start = _SUM_FROM_THE_END
            explained = await (await connection.execute(_EXPLAINED.format(anchor=start), sums)).fetchall()
        running = {int(seq): (int(total), at, previous_at) for kind, seq, total, previous_at, at, _ in explained
                   if kind == "row"}
        expired = ExpiredSeconds(
            (ExpiringBucket(int(seq), at, int(remaining)) for kind, seq, remaining, at, _, _ in explained
             if kind == "bucket"),
            (LaterDebit(int(seq), int(bucket_seq), at, int(seconds)) for kind, seq, seconds, at, _, bucket_seq in explained
             if kind == "debit"))
        newest_row_at = next((at for kind, _, _, at, _, _ in explained if kind == "newest"), None)
        assert len(running) == len(page), "every page row has its running sum"
        lines = [_line(row, *running[int(row[0])], expired) for row in page]
        return LedgerSlice(lines, newest_row_at, expired)

    async def service_health(self, now: datetime, seen_since: datetime) -> HealthCounts:
        day_ago = now - timedelta(days=1)
        params = {"seen_since": seen_since, "day_ago": day_ago, "oldest": day_ago - DELIVERY_LIFETIME}
        (replicas, last_tick_at, undispatched, pending, failed, kept), = await self._rows(_HEALTH, params)
        return HealthCounts(
            replicas=tuple(ReplicaRecord(r["replica_id"], r["host"], r["pid"], _instant(r["started_at"]),
                                         _instant(r["seen_at"])) for r in replicas),
            last_tick_at=last_tick_at, webhook_undispatched_events=undispatched, webhook_pending_deliveries=pending,
            webhook_failed_last_24h=failed, stripe_events_kept=kept,
        )

    async def activity(self, since: datetime) -> list[tuple[datetime, HourCounts]]:
        rows = await self._rows(_ACTIVITY, {"since": since})
        return [(row[0], HourCounts(*(int(value) for value in row[1:]))) for row in rows]

    async def migration_runs(self, before: tuple[datetime, str] | None, limit: int) -> list[MigrationRunRecord]:
        if before is None:
            rows = await self._rows(_RUNS, {"limit": limit})
        else:
            rows = await self._rows(_RUNS_BEFORE, {"started_at": before[0], "run_id": before[1], "limit": limit})
        return [
            MigrationRunRecord(
                run_id, source_file, started_at, finished_at, rows_read, migrated, skipped, bad_lines,
                tuple(BadLine(int(s["line"]), str(s["error"])) for s in samples),
            )
            for run_id, source_file, started_at, finished_at, rows_read, migrated, skipped, bad_lines, samples in rows
        ]

    async def round_trip(self) -> None:
        await self._rows("SELECT 1", None)

    def pool_state(self) -> PoolState:
        stats: dict[str, int] = getattr(self._storage.pool, "get_stats", dict)()  # the bench wraps the pool
        return PoolState(size=stats.get("pool_size", 0), available=stats.get("pool_available", 0),
                         waiting=stats.get("requests_waiting", 0), max_size=stats.get("pool_max", 0))


def _line(
    row: Sequence[Any], balance_after: int, at: datetime, previous_at: datetime | None, expired: ExpiredSeconds,
) -> LedgerLine:
    """`at` and `previous_at`: the running maximum of occurred_at at this row and the one before."""
    event_seq, type_, seconds, reason, occurred_at, operation, bucket_seq, metadata = row
    explained = expired.explain(balance_after, at, previous_at, int(event_seq))
    return LedgerLine(int(event_seq), type_, seconds, reason, occurred_at, operation, bucket_seq,
                      metadata if isinstance(metadata, dict) else json.loads(metadata), balance_after,
                      explained.available_after_seconds, explained.expired_before_seconds)


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _maybe_instant(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)
