"""Legacy migration writes, set-based: each batch is COPYed into a temporary staging table, then
one statement opens the accounts that are new (accounts, buckets, ledger_events,
legacy_migrations) and reports the rows it did not migrate. One transaction per batch.

The statement mirrors service/legacy_rows.opening_buckets: bucket (and event) numbers 1, 2, 3
go to welcome, paid, daily in that order, skipping the empty ones, one ledger entry per bucket,
event_seq = bucket_seq. The new accounts come from `INSERT ... ON CONFLICT DO NOTHING
RETURNING`, and only those get buckets: an account that exists (a service account, or one
created meanwhile) is never written. Foreign keys stay on; their checks run at the end of the
statement, after every part is in.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime
from typing import Iterator, Sequence

import psycopg

from billing.domain.buckets import Source
from billing.domain.catalog import Catalog
from billing.domain.clock_math import assert_utc, next_utc_midnight
from billing.domain.limits import ACCOUNT_ID_MAX_LENGTH
from billing.service.legacy_migration import ALREADY_MIGRATED, CONFLICT, NotMigrated
from billing.service.legacy_rows import REASONS, LegacyRow, bonus_days, opening
from billing.settings import libpq_url

# Two runs at once take turns batch by batch, so each sees what the other committed.
ADVISORY_LOCK_KEY = 0x6C656761637931  # "legacy1"

SESSION_SETTINGS = (
    "SET work_mem = '64MB'",
    "SET temp_buffers = '64MB'",
)

CREATE_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS legacy_stage (
    line int NOT NULL,
    account_id text NOT NULL,
    plan_key text NOT NULL,
    subscription_status text NOT NULL,
    paid int NOT NULL,
    welcome int NOT NULL,
    used int NOT NULL,
    daily int NOT NULL,
    bonus_used int NOT NULL
) ON COMMIT DELETE ROWS
"""

COPY_STAGE = ("COPY legacy_stage (line, account_id, plan_key, subscription_status, paid, welcome, used, daily,"
              " bonus_used) FROM STDIN")

# Rows the batch did not migrate: the account exists. Read with the statement's snapshot, so a
# record this statement writes is not seen: only what an earlier batch or run wrote.
_NOT_MIGRATED = """
SELECT s.line, m.account_id IS NOT NULL AS migrated_before,
       (m.plan_key, m.paid_seconds_remaining, m.welcome_bonus_seconds, m.daily_gift_used_today)
         IS NOT DISTINCT FROM (s.plan_key, s.paid, s.welcome, s.used) AS same_values,
       m.source_file, m.source_line
FROM legacy_stage s
LEFT JOIN legacy_migrations m ON m.account_id = s.account_id
"""

MIGRATE_BATCH = """
WITH opened AS (
    INSERT INTO accounts (account_id, plan_key, subscription_status, created_at, updated_at,
                          last_bucket_seq, last_event_seq, bonus_last_grant_on, bonus_month, bonus_used_seconds)
    SELECT account_id, plan_key, subscription_status, %(now)s, %(now)s, n, n, %(today)s, %(month)s, bonus_used
    FROM (SELECT s.*, (s.welcome > 0)::int + (s.paid > 0)::int + (s.daily > 0)::int AS n FROM legacy_stage s) s
    ORDER BY account_id
    ON CONFLICT (account_id) DO NOTHING
    RETURNING account_id
),
parts AS (
    SELECT s.account_id, s.line, v.bucket_seq, v.source, v.seconds, v.expires_at, v.type, v.reason
    FROM legacy_stage s
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
""" + _NOT_MIGRATED + """
WHERE NOT EXISTS (SELECT 1 FROM opened o WHERE o.account_id = s.account_id)
"""

CLASSIFY_BATCH = _NOT_MIGRATED + """
WHERE EXISTS (SELECT 1 FROM accounts a WHERE a.account_id = s.account_id)
"""


class PostgresLegacyImport:
    """A LegacyImportTarget on one connection of its own (`open_legacy_import`)."""

    def __init__(self, connection: psycopg.Connection, catalog: Catalog, now: datetime, source_file: str,
                 *, dry_run: bool = False):
        assert_utc(now)
        self._connection = connection
        self._plans = {plan.key: plan for plan in catalog.plans}
        for key in self._plans:
            assert key.isidentifier(), "plan keys go into COPY text unescaped"
        self._dry_run = dry_run
        today, month = bonus_days(now)
        self._params = {
            "now": now, "today": today, "month": month, "midnight": next_utc_midnight(now),
            "source_file": source_file, "welcome_reason": REASONS[Source.WELCOME],
            "paid_reason": REASONS[Source.SUBSCRIPTION], "daily_reason": REASONS[Source.DAILY],
        }

    def write_batch(self, rows: Sequence[LegacyRow]) -> list[NotMigrated]:
        connection = self._connection
        with connection.transaction(force_rollback=self._dry_run):
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK_KEY,))
            with connection.cursor() as cursor:
                with cursor.copy(COPY_STAGE) as copy:
                    copy.write(self._stage_text(rows))
                # The planner has no statistics for a fresh temporary table: with them it probes
                # the big tables' indexes rather than scanning them once per batch.
                cursor.execute("ANALYZE legacy_stage")
                cursor.execute(CLASSIFY_BATCH if self._dry_run else MIGRATE_BATCH, self._params)
                found = cursor.fetchall()
        return [self._not_migrated(*row) for row in found]

    def _stage_text(self, rows: Sequence[LegacyRow]) -> bytes:
        # user_id matches [A-Za-z0-9_.:@|-]+ and plan keys are identifiers: nothing to escape.
        plans = self._plans
        lines = []
        for row in rows:
            assert len(row.user_id) <= ACCOUNT_ID_MAX_LENGTH
            opened = opening(row, plans[row.plan_key])
            lines.append(
                f"{row.line}\t{row.user_id}\t{row.plan_key}\t{opened.subscription_status}\t{row.paid_seconds}\t"
                f"{row.welcome_seconds}\t{row.daily_used_seconds}\t{opened.daily_bonus_seconds}\t"
                f"{opened.bonus_used_seconds}\n"
            )
        return "".join(lines).encode()

    @staticmethod
    def _not_migrated(line: int, migrated_before: bool, same_values: bool, source_file: str | None,
                      source_line: int | None) -> NotMigrated:
        if not migrated_before:
            return NotMigrated(line, CONFLICT, "the account exists and was not opened by a legacy migration")
        if same_values:
            return NotMigrated(line, ALREADY_MIGRATED)
        return NotMigrated(
            line, CONFLICT,
            f"migrated before with other legacy values (line {source_line} of {source_file}); not overwritten",
        )


@contextmanager
def open_legacy_import(database_url: str, catalog: Catalog, now: datetime, source_file: str,
                       *, dry_run: bool = False) -> Iterator[PostgresLegacyImport]:
    with psycopg.connect(libpq_url(database_url), options="-c timezone=UTC", autocommit=True) as connection:
        for statement in SESSION_SETTINGS:
            connection.execute(statement)
        connection.execute(CREATE_STAGE)
        yield PostgresLegacyImport(connection, catalog, now, source_file, dry_run=dry_run)
