"""The legacy migration's run records (migration_runs): a row when a run starts, its counts and
first bad lines when it ends (a run that dies keeps finished_at NULL). `billing migrate-legacy` is a
synchronous command: these are psycopg's blocking calls on a short connection of their own."""

from __future__ import annotations

from datetime import datetime
from typing import Sequence

import psycopg
from psycopg.types.json import Jsonb

from billing.domain.console import BadLine
from billing.service.migration_runs import RunCounts
from billing.settings import libpq_url


def record_run_started(database_url: str, run_id: str, source_file: str, now: datetime) -> None:
    with psycopg.connect(libpq_url(database_url), autocommit=True) as connection:
        connection.execute(
            "INSERT INTO migration_runs (run_id, source_file, started_at) VALUES (%s, %s, %s)",
            (run_id, source_file, now))


def record_run_finished(
    database_url: str, run_id: str, counts: RunCounts, samples: Sequence[BadLine], now: datetime,
) -> None:
    document = Jsonb([{"line": s.line, "error": s.error} for s in samples])
    with psycopg.connect(libpq_url(database_url), autocommit=True) as connection:
        connection.execute(
            "UPDATE migration_runs SET finished_at = %s, rows_read = %s, accounts_migrated = %s, "
            "accounts_skipped = %s, bad_lines = %s, bad_line_samples = %s WHERE run_id = %s",
            (now, counts.rows_read, counts.accounts_migrated, counts.accounts_skipped, counts.bad_lines, document,
             run_id))
