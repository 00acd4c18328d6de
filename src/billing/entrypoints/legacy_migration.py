"""`billing migrate-legacy FILE [--dry-run] [--batch-size N] [--writers N]`: opens the accounts
of a legacy export (service/legacy_migration.py). Bad rows and conflicts go to stdout, one line
each, as they are found; on a terminal a progress line (rows/s, ETA) is redrawn on stderr; a
summary ends the run. Exit code 0 when every row was migrated or already was, 1 when any row
was skipped (a conflict or a bad row), 2 when the run could not start, 130 when interrupted."""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, TextIO

import psycopg

from billing.service.legacy_migration import DEFAULT_BATCH_SIZE, READING, migrate_legacy_file
from billing.service.legacy_rows import BadRow, HeaderError

PROGRESS_EVERY_S = 0.25
DEFAULT_WRITERS = 2


class ConsoleReporter:
    def __init__(self, out: TextIO = sys.stdout, err: TextIO = sys.stderr, *, progress: bool | None = None):
        self._out, self._err = out, err
        self._progress = err.isatty() if progress is None else progress
        self._drawn = 0  # characters of the progress line on screen
        self._last_drawn_at = 0.0
        self._writing_since: float | None = None

    def bad_row(self, row: BadRow) -> None:
        user = f" user_id {row.user_id}:" if row.user_id else ""
        self._say(f"line {row.line}:{user} bad row: {row.reason}")

    def conflict(self, line: int, user_id: str, why: str) -> None:
        self._say(f"line {line}: user_id {user_id}: conflict: {why}")

    def progress(self, phase: str, done: int, total: int, elapsed_s: float) -> None:
        if phase != READING and self._writing_since is None:
            self._writing_since = elapsed_s  # the write rate (and ETA) leaves the reading phase out
        now = time.monotonic()
        if not self._progress or (done < total and now - self._last_drawn_at < PROGRESS_EVERY_S):
            return
        self._last_drawn_at = now
        share = done / total if total else 1.0
        if phase == READING:
            self._draw(f"reading: {share:.0%} of {total / 2**20:,.1f} MiB, {elapsed_s:.0f} s")
            return
        spent = elapsed_s - (self._writing_since or 0.0)
        rate = done / spent if spent > 0 else 0.0
        eta = f"{(total - done) / rate:,.0f} s" if rate > 0 else "?"
        self._draw(f"writing: {done:,}/{total:,} rows ({share:.0%}), {rate:,.0f} rows/s, ETA {eta}")

    def finish(self) -> None:
        self._clear()

    def _draw(self, text: str) -> None:
        self._err.write("\r" + text.ljust(self._drawn))
        self._err.flush()
        self._drawn = len(text)

    def _clear(self) -> None:
        if self._drawn:
            self._err.write("\r" + " " * self._drawn + "\r")
            self._err.flush()
            self._drawn = 0

    def _say(self, text: str) -> None:
        self._clear()  # a report line must not land on top of the progress line
        print(text, file=self._out)


def migrate_legacy_main(argv: list[str], database_url: Callable[[bool], str]) -> int:
    """database_url(dry_run): the database to write, migrated to head unless this is a dry run."""
    parser = argparse.ArgumentParser(prog="billing migrate-legacy", description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path, help="JSON lines (.jsonl) or CSV (.csv, with a header) of legacy balances")
    parser.add_argument("--dry-run", action="store_true", help="validate and report what would be done; write nothing")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
                        help=f"rows per transaction (default {DEFAULT_BATCH_SIZE:,})")
    parser.add_argument("--writers", type=int, default=DEFAULT_WRITERS,
                        help=f"database connections writing batches at once (default {DEFAULT_WRITERS})")
    parser.add_argument("--check-foreign-keys", action="store_true",
                        help="run the foreign-key triggers even where the role may skip them (~1.7x slower)")
    args = parser.parse_args(argv)
    if args.batch_size < 1 or args.writers < 1:
        parser.error("--batch-size and --writers must be positive")
    if not args.file.is_file():
        print(f"billing migrate-legacy: {args.file}: no such file", file=sys.stderr)
        return 2

    from billing.adapters.catalog_file import load_catalog
    from billing.adapters.db.legacy_import import MigrationRunning, open_legacy_import
    from billing.adapters.db.migration_runs import record_run_finished, record_run_started
    from billing.service.migration_runs import RunCounts, RunSamples
    from billing.settings import Settings

    url = database_url(args.dry_run)
    catalog, _ = load_catalog(Settings.from_environment(database_url=url).server.catalog_path)
    reporter = ConsoleReporter()
    samples = RunSamples(reporter)  # the run's record keeps its first bad lines (the console's operations page)
    now = datetime.now(timezone.utc)
    run_id = "run_" + secrets.token_hex(8)
    try:
        with open_legacy_import(url, catalog, now, args.file.name, writers=args.writers, dry_run=args.dry_run,
                                check_foreign_keys=args.check_foreign_keys) as targets:
            if not args.dry_run:  # under the run lock: one run at a time is recorded as running
                record_run_started(url, run_id, args.file.name, now)
            summary = migrate_legacy_file(args.file, catalog, targets, samples, batch_size=args.batch_size,
                                          dry_run=args.dry_run)
            if not args.dry_run:
                record_run_finished(url, run_id, RunCounts.of(summary), samples.samples, datetime.now(timezone.utc))
            fk_checks = "skipped (rows consistent by construction)" if targets[0].skips_fk_checks else "on"
    except (HeaderError, MigrationRunning) as error:
        return _fail(reporter, f"{args.file}: {error}")
    except psycopg.errors.UndefinedTable:
        return _fail(reporter, "the database is not migrated; run `billing migrate` first")
    except psycopg.OperationalError as error:
        return _fail(reporter, f"database error ({str(error).strip()}); the batches committed so far stay. Run "
                               "the same command again to resume.")
    except KeyboardInterrupt:
        return _fail(reporter, "interrupted; the batches committed so far stay. Run the same command again "
                               "to resume (they read as already migrated).", 130)
    reporter.finish()
    print(("dry run, nothing written: " if args.dry_run else "") + str(args.file))
    for line in summary.lines():
        print("  " + line)
    if not args.dry_run:
        print(f"  foreign-key triggers: {fk_checks}")
    return summary.exit_code


def _fail(reporter: ConsoleReporter, message: str, code: int = 2) -> int:
    reporter.finish()
    print(f"billing migrate-legacy: {message}", file=sys.stderr)
    return code
