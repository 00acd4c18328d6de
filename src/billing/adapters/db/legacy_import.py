"""Legacy migration writes, set-based: each batch is COPYed into a temporary staging table, then
one statement opens the accounts that are new (accounts, buckets, ledger_events,
legacy_migrations) and returns the rows it did not migrate. One transaction per batch; each
writer has a connection (and staging table) of its own.

The statement mirrors service/legacy_rows.py: `opening` (status, today's daily bucket, bonus
used) through the small `legacy_plans` table, and `opening_buckets` in its VALUES: bucket
(and event) numbers 1, 2, 3 go to welcome, paid, daily in that order, skipping the empty
ones, one ledger entry per bucket, event_seq = bucket_seq. The new accounts come from
`INSERT ... ON CONFLICT DO NOTHING RETURNING`, and only those get buckets: an account that
exists (a service account, or one created meanwhile) is never written.

Foreign keys hold by construction: every bucket belongs to an account the same statement
opened, every ledger row to a bucket it inserted, and nothing in the service deletes accounts
or buckets (what the triggers' row locks guard against). So, where the role may, a batch runs
with `session_replication_role = replica` (SET LOCAL: that transaction only), which skips the
foreign-key triggers, as bench/data.py loads its datasets: with their per-row checks (a query
each, locking the parent row it finds, one WAL record apiece) a million rows took 58 s, not 34.
Without the privilege, or with check_foreign_keys, they run, at the end of each statement.
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from datetime import datetime
from typing import Iterator

import psycopg

from billing.domain.buckets import Source
from billing.domain.catalog import Catalog
from billing.domain.clock_math import assert_utc, next_utc_midnight
from billing.service.legacy_migration import ALREADY_MIGRATED, CONFLICT, Batch, NotMigrated
from billing.service.legacy_rows import REASONS, bonus_days, subscription_status
from billing.settings import libpq_url

# Held by a run for its whole length: a second run on the same database would otherwise race it.
RUN_LOCK_KEY = 0x6C65676163792D6D  # "legacy-m"

SESSION_SETTINGS = (
    "SET work_mem = '64MB'",
    "SET temp_buffers = '64MB'",
)

CREATE_STAGE = """
CREATE TEMP TABLE legacy_stage (
    line int NOT NULL,
    account_id text NOT NULL,
    plan_key text NOT NULL,
    paid int NOT NULL,
    welcome int NOT NULL,
    used int NOT NULL
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE legacy_plans (plan_key text PRIMARY KEY, subscription_status text NOT NULL, daily int NOT NULL)
"""
COPY_STAGE = "COPY legacy_stage (line, account_id, plan_key, paid, welcome, used) FROM STDIN"

# The accounts of the batch that exist already, and what a migration recorded for them. A
# LATERAL subquery with LIMIT is never flattened into a join: each row probes the primary key
# (a hash join would read the whole table for every batch, and the staging table has no
# statistics to tell the planner otherwise). Read with the statement's snapshot: a record this
# statement writes is not seen, only what an earlier batch or run committed.
_EXISTING = """
SELECT s.line, s.account_id, m.account_id IS NOT NULL AS migrated_before,
       (m.plan_key, m.paid_seconds_remaining, m.welcome_bonus_seconds, m.daily_gift_used_today)
         IS NOT DISTINCT FROM (s.plan_key, s.paid, s.welcome, s.used) AS same_values,
       m.source_file, m.source_line
FROM legacy_stage s
LEFT JOIN LATERAL (
    SELECT * FROM legacy_migrations m WHERE m.account_id = s.account_id LIMIT 1
) m ON true
"""

MIGRATE_BATCH = """
WITH staged AS (
    SELECT s.*, p.subscription_status, greatest(0, p.daily - s.used) AS daily, least(s.used, p.daily) AS bonus_used
    FROM legacy_stage s JOIN legacy_plans p ON p.plan_key = s.plan_key
),
opened AS (
    INSERT INTO accounts (account_id, plan_key, subscription_status, created_at, updated_at,
                          last_bucket_seq, last_event_seq, bonus_last_grant_on, bonus_month, bonus_used_seconds)
    SELECT account_id, plan_key, subscription_status, %(now)s, %(now)s, n, n, %(today)s, %(month)s, bonus_used
    FROM (SELECT s.*, (s.welcome > 0)::int + (s.paid > 0)::int + (s.daily > 0)::int AS n FROM staged s) s
    ORDER BY account_id
    ON CONFLICT (account_id) DO NOTHING
    RETURNING account_id
),
parts AS (
    SELECT s.account_id, s.line, v.bucket_seq, v.source, v.seconds, v.expires_at, v.type, v.reason
    FROM staged s
    JOIN opened o ON o.account_id = s.account_id
    CROSS JOIN LATERAL (VALUES
        (1, 'welcome', s.welcome, NULL::timestamptz, 'adjustment', %(welcome_reason)s::text),
        (1 + (s.welcome > 0)::int, 'subscription', s.paid, NULL::timestamptz, 'adjustment', %(paid_reason)s::text),
        (1 + (s.welcome > 0)::int + (s.paid > 0)::int, 'daily', s.daily, %(midnight)s::timestamptz,
         'daily_bonus', %(daily_reason)s::text)
    ) AS v (bucket_seq, source, seconds, expires_at, type, reason)
    WHERE v.seconds > 0
),
new_buckets AS (
    INSERT INTO buckets (account_id, bucket_seq, source, granted_seconds, remaining_seconds, granted_at, expires_at)
    SELECT account_id, bucket_seq, source, seconds, seconds, %(now)s, expires_at
    FROM parts ORDER BY account_id, bucket_seq
),
new_events AS (
    INSERT INTO ledger_events (account_id, event_seq, type, seconds, reason, bucket_seq, operation, occurred_at, metadata)
    SELECT account_id, bucket_seq, type, seconds, reason, bucket_seq, NULL, %(now)s,
           jsonb_build_object('source', source, 'migration', 'legacy', 'source_file', %(source_file)s::text,
                              'source_line', line)
    FROM parts ORDER BY account_id, bucket_seq
),
records AS (
    INSERT INTO legacy_migrations (account_id, plan_key, paid_seconds_remaining, welcome_bonus_seconds,
                                   daily_gift_used_today, source_file, source_line, migrated_at)
    SELECT s.account_id, s.plan_key, s.paid, s.welcome, s.used, %(source_file)s, s.line, %(now)s
    FROM legacy_stage s JOIN opened o ON o.account_id = s.account_id
    ORDER BY s.account_id
)
""" + _EXISTING + """
WHERE NOT EXISTS (SELECT 1 FROM opened o WHERE o.account_id = s.account_id)
"""

CLASSIFY_BATCH = _EXISTING + """
JOIN LATERAL (SELECT 1 FROM accounts a WHERE a.account_id = s.account_id LIMIT 1) a ON true
"""


class PostgresLegacyImport:
    """A LegacyImportTarget on a connection of its own (see `open_legacy_import`)."""

    def __init__(self, connection: psycopg.Connection, catalog: Catalog, now: datetime, source_file: str,
                 *, dry_run: bool = False, skip_fk_checks: bool = False):
        assert_utc(now)
        self._connection = connection
        self._dry_run = dry_run
        self.skips_fk_checks = skip_fk_checks
        today, month = bonus_days(now)
        self._params = {
            "now": now, "today": today, "month": month, "midnight": next_utc_midnight(now),
            "source_file": source_file, "welcome_reason": REASONS[Source.WELCOME],
            "paid_reason": REASONS[Source.SUBSCRIPTION], "daily_reason": REASONS[Source.DAILY],
        }
        for statement in SESSION_SETTINGS:
            connection.execute(statement)
        connection.execute(CREATE_STAGE)
        with connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO legacy_plans VALUES (%s, %s, %s)",
                [(plan.key, subscription_status(plan), plan.daily_bonus_seconds) for plan in catalog.plans],
            )

    def write_batch(self, batch: Batch) -> list[NotMigrated]:
        connection = self._connection
        with connection.transaction(force_rollback=self._dry_run), connection.cursor() as cursor:
            if self.skips_fk_checks:
                cursor.execute("SET LOCAL session_replication_role = replica")
            with cursor.copy(COPY_STAGE) as copy:
                copy.write(batch.records)
            cursor.execute(CLASSIFY_BATCH if self._dry_run else MIGRATE_BATCH, self._params)
            found = cursor.fetchall()
        return [_not_migrated(*row) for row in found]


def _not_migrated(line: int, user_id: str, migrated_before: bool, same_values: bool, source_file: str | None,
                  source_line: int | None) -> NotMigrated:
    if not migrated_before:
        return NotMigrated(line, user_id, CONFLICT, "the account exists and was not opened by a legacy migration")
    if same_values:
        return NotMigrated(line, user_id, ALREADY_MIGRATED)
    return NotMigrated(
        line, user_id, CONFLICT,
        f"migrated before with other legacy values (line {source_line} of {source_file}); not overwritten",
    )


class MigrationRunning(Exception):
    """Another legacy migration holds the run lock on this database."""


def may_skip_fk_checks(connection: psycopg.Connection) -> bool:
    """session_replication_role needs a superuser (or, from PostgreSQL 15, GRANT SET ON PARAMETER)."""
    try:
        connection.execute("SET session_replication_role = replica")
    except psycopg.errors.InsufficientPrivilege:
        return False
    connection.execute("RESET session_replication_role")
    return True


def _unlock_quietly(connection: psycopg.Connection) -> None:
    if connection.closed:
        return
    try:
        connection.execute("SELECT pg_advisory_unlock(%s)", (RUN_LOCK_KEY,))
    except psycopg.Error:  # a broken connection: its lock goes with its session
        pass


@contextmanager
def open_legacy_import(database_url: str, catalog: Catalog, now: datetime, source_file: str, *,
                       writers: int = 2, dry_run: bool = False,
                       check_foreign_keys: bool = False) -> Iterator[list[PostgresLegacyImport]]:
    """`writers` targets, each on a connection of its own. A real run holds the run lock (a
    session advisory lock) throughout; a dry run writes nothing and takes no lock. Foreign-key
    triggers are skipped where the role may (see the module docstring) unless check_foreign_keys."""
    assert writers >= 1
    conninfo = libpq_url(database_url)
    with ExitStack() as stack:
        connections = [
            stack.enter_context(psycopg.connect(conninfo, options="-c timezone=UTC", autocommit=True))
            for _ in range(writers)
        ]
        if not dry_run:
            locked = connections[0].execute("SELECT pg_try_advisory_lock(%s)", (RUN_LOCK_KEY,)).fetchone()
            if not (locked and locked[0]):
                raise MigrationRunning("another legacy migration is running on this database")
            # Released before the connection closes: a closed session's locks go only when its
            # backend has exited, so a run started right after this one could find it still held.
            stack.callback(_unlock_quietly, connections[0])
        skip = not check_foreign_keys and may_skip_fk_checks(connections[0])
        yield [PostgresLegacyImport(connection, catalog, now, source_file, dry_run=dry_run, skip_fk_checks=skip)
               for connection in connections]
