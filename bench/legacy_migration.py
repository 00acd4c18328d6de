"""The legacy migration at bulk speed, against the ceiling of a plain COPY of what it wrote.

    python -m bench.legacy_migration [--rows 1000000] [--format jsonl|csv] [--batch-size 50000] [--keep]

(`make bench` runs it after its service scenarios.) In a fresh database `billing_bench_legacy`
on the benchmark's PostgreSQL:

1. generates `--rows` legacy rows into a temporary file (server-side, generate_series, COPY
   TO STDOUT: no row built in Python), a mix of plans, welcome bonuses, paid time and gift use;
2. migrates the file as `billing migrate-legacy` does (same code, its default batch size):
   rows/s over the whole run, the first pass over the file included;
3. checks the ledger invariants (find_violations) and that the balances add up to the
   contract helper's totals;
4. runs it again: every row must read as already migrated (rows/s of a resumed run);
5. the ceiling: the rows the migration wrote (accounts, buckets, ledger_events,
   legacy_migrations) are exported, the tables truncated, and the same rows loaded back with
   plain `COPY ... FROM STDIN` (text format, one transaction per table) with what the
   migration had: as many connections and the same foreign-key mode (triggers skipped, the
   tables then load in parallel). ratio = ceiling seconds / migration seconds. When the
   migration skipped the triggers, a COPY with them on (one connection, key order) is
   timed as well, for comparison.

Every timed step starts right after a CHECKPOINT (see bench/run.py `checkpoint`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import psycopg
from psycopg import sql

from billing.adapters.catalog_file import load_catalog
from billing.entrypoints.legacy_migration import DEFAULT_WRITERS
from billing.adapters.db.invariants import find_violations_in_database
from billing.adapters.db.legacy_import import open_legacy_import
from billing.adapters.db.migrate import upgrade_to_head
from billing.service.legacy_migration import DEFAULT_BATCH_SIZE, Summary, migrate_legacy_file
from billing.service.legacy_rows import BadRow
from billing.settings import DEFAULT_CATALOG_PATH, libpq_url

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DATABASE = "billing_bench_legacy"
TABLES = ("accounts", "buckets", "ledger_events", "legacy_migrations")  # foreign-key order
TARGET_ROWS_PER_SECOND = 20_000
TARGET_RATIO = 0.3

# h spreads the values per row; plan_key is left out for the free plan, as exports would.
_GENERATED = """
SELECT i, 'u' || i AS user_id,
       CASE WHEN h %% 10 < 3 THEN 0 ELSE h %% 360000 END AS paid,
       CASE WHEN h %% 7 < 4 THEN 1800 ELSE 0 END AS welcome,
       CASE WHEN h %% 2 = 0 THEN 0 ELSE (h / 7) %% 1200 END AS used,
       CASE WHEN h %% 100 < 85 THEN NULL WHEN h %% 100 < 93 THEN 'starter'
            WHEN h %% 100 < 98 THEN 'pro' ELSE 'business' END AS plan_key
FROM (SELECT i, (hashint8(i::bigint) & 2147483647)::bigint AS h FROM generate_series(1, %(n)s::int) AS i) AS g
ORDER BY i
"""
GENERATE = {
    "jsonl": """COPY (SELECT '{"user_id": "' || user_id || '", "paid_seconds_remaining": ' || paid
                || ', "welcome_bonus_seconds": ' || welcome || ', "daily_gift_used_today": ' || used
                || coalesce(', "plan_key": "' || plan_key || '"', '') || '}' FROM (""" + _GENERATED + """) AS r)
             TO STDOUT""",
    "csv": """COPY (SELECT user_id, paid, welcome, used, coalesce(plan_key, '') FROM (""" + _GENERATED + """) AS r)
              TO STDOUT WITH (FORMAT csv, HEADER false)""",
}
CSV_HEADER = b"user_id,paid_seconds_remaining,welcome_bonus_seconds,daily_gift_used_today,plan_key\n"

# What the contract's migrateLegacyBalance promises, summed over the file: paid = paid + welcome,
# bonus = the plan's daily bonus less today's use (the helper's 900 is the free plan's).
EXPECTED_TOTALS = """
SELECT count(*), sum(m.paid_seconds_remaining + m.welcome_bonus_seconds),
       sum(greatest(0, p.daily - m.daily_gift_used_today))
FROM legacy_migrations m JOIN (SELECT * FROM jsonb_to_recordset(%s::jsonb) AS x(key text, daily int)) p
  ON p.key = m.plan_key
"""
ACTUAL_TOTALS = """
SELECT (SELECT count(*) FROM accounts),
       (SELECT sum(remaining_seconds) FROM buckets WHERE source <> 'daily'),
       (SELECT sum(remaining_seconds) FROM buckets WHERE source = 'daily')
"""


class _Quiet:
    def __init__(self) -> None:
        self.bad: list[BadRow] = []
        self.conflicts: list[tuple[int, str, str]] = []

    def bad_row(self, row: BadRow) -> None:
        self.bad.append(row)

    def conflict(self, line: int, user_id: str, why: str) -> None:
        self.conflicts.append((line, user_id, why))

    def progress(self, phase: str, done: int, total: int, elapsed_s: float) -> None:
        if sys.stderr.isatty():
            sys.stderr.write(f"\r  {phase}: {done:,}/{total:,} at {elapsed_s:.1f} s   ")
            sys.stderr.flush()


def fresh_database(server_url: str) -> str:
    conninfo = libpq_url(server_url)
    with psycopg.connect(conninfo, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DATABASE)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
    url = server_url.rsplit("/", 1)[0] + f"/{DATABASE}"
    upgrade_to_head(url)
    return url


def drop_database(server_url: str) -> None:
    with psycopg.connect(libpq_url(server_url), autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DATABASE)))


def generate(url: str, rows: int, fmt: str, path: Path) -> float:
    started = time.perf_counter()
    with psycopg.connect(libpq_url(url)) as connection, open(path, "wb") as out:
        if fmt == "csv":
            out.write(CSV_HEADER)
        with connection.cursor().copy(GENERATE[fmt], {"n": rows}) as copy:
            for chunk in copy:
                out.write(chunk)
    return time.perf_counter() - started


def checkpoint(url: str) -> None:
    with psycopg.connect(libpq_url(url), autocommit=True) as connection:
        connection.execute("CHECKPOINT")


def migrate(url: str, path: Path, batch_size: int, writers: int, check_foreign_keys: bool
            ) -> tuple[Summary, _Quiet, bool]:
    catalog, _ = load_catalog(DEFAULT_CATALOG_PATH)
    reporter = _Quiet()
    with open_legacy_import(url, catalog, datetime.now(timezone.utc), path.name, writers=writers,
                            check_foreign_keys=check_foreign_keys) as targets:
        summary = migrate_legacy_file(path, catalog, targets, reporter, batch_size=batch_size)
        skips_fk_checks = targets[0].skips_fk_checks
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    return summary, reporter, skips_fk_checks


def totals(url: str) -> dict:
    catalog, _ = load_catalog(DEFAULT_CATALOG_PATH)
    plans = json.dumps([{"key": plan.key, "daily": plan.daily_bonus_seconds} for plan in catalog.plans])
    with psycopg.connect(libpq_url(url)) as connection:
        expected = connection.execute(EXPECTED_TOTALS, (plans,)).fetchone()
        actual = connection.execute(ACTUAL_TOTALS).fetchone()
    return {"expected (accounts, paid, bonus)": list(expected), "actual": list(actual),
            "equal": list(expected) == list(actual)}


def export_rows(url: str, workdir: Path) -> dict[str, int]:
    """What the migration wrote, one COPY text file per table, in the order it lies on disk."""
    counts: dict[str, int] = {}
    with psycopg.connect(libpq_url(url), autocommit=True) as connection:
        for table in TABLES:
            with open(workdir / f"{table}.copy", "wb") as out, connection.cursor().copy(
                sql.SQL("COPY {} TO STDOUT").format(sql.Identifier(table))
            ) as copy:
                for chunk in copy:
                    out.write(chunk)
            counts[table] = connection.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()[0]
    return counts


def _truncate(url: str) -> None:
    with psycopg.connect(libpq_url(url), autocommit=True) as connection:
        # CASCADE names the service's other tables referencing accounts (empty here).
        connection.execute(sql.SQL("TRUNCATE {} CASCADE").format(sql.SQL(", ").join(map(sql.Identifier, TABLES))))


def _copy_tables(url: str, workdir: Path, tables: tuple[str, ...], skip_fk_checks: bool) -> dict[str, float]:
    seconds = {}
    with psycopg.connect(libpq_url(url)) as connection:
        if skip_fk_checks:
            connection.execute("SET session_replication_role = replica")
        for table in tables:
            started = time.perf_counter()
            with open(workdir / f"{table}.copy", "rb") as source, connection.cursor().copy(
                sql.SQL("COPY {} FROM STDIN").format(sql.Identifier(table))
            ) as copy:
                while chunk := source.read(1 << 20):
                    copy.write(chunk)
            connection.commit()
            seconds[table] = round(time.perf_counter() - started, 2)
    return seconds


def copy_ceiling(url: str, workdir: Path, connections: int, skip_fk_checks: bool) -> dict:
    """Truncates the tables and times plain COPY of the exported rows back. With the foreign-key
    triggers off the tables are independent and load on `connections` connections at once
    (largest first, each to the least loaded); with them on, one after another in key order."""
    _truncate(url)
    checkpoint(url)
    sizes = {table: (workdir / f"{table}.copy").stat().st_size for table in TABLES}
    if skip_fk_checks:
        shares: list[list[str]] = [[] for _ in range(max(1, connections))]
        for table in sorted(TABLES, key=sizes.__getitem__, reverse=True):
            min(shares, key=lambda share: sum(sizes[t] for t in share)).append(table)
    else:
        shares = [list(TABLES)]
    started = time.perf_counter()
    with ThreadPoolExecutor(len(shares)) as pool:
        parts = list(pool.map(lambda share: _copy_tables(url, workdir, tuple(share), skip_fk_checks), shares))
    return {"seconds": round(time.perf_counter() - started, 2), "connections": len(shares),
            "foreign_key_triggers": "off" if skip_fk_checks else "on",
            "seconds_by_table": {table: s for part in parts for table, s in part.items()}}


def run(server_url: str, rows: int = 1_000_000, fmt: str = "jsonl", batch_size: int = DEFAULT_BATCH_SIZE,
        writers: int = DEFAULT_WRITERS, check_foreign_keys: bool = False, keep: bool = False, say=print) -> dict:
    url = fresh_database(server_url)
    result: dict = {"rows": rows, "format": fmt, "batch_size": batch_size, "writers": writers}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-legacy-") as workdir:
            path = Path(workdir) / f"legacy.{fmt}"
            result["generate_seconds"] = round(generate(url, rows, fmt, path), 2)
            result["file_bytes"] = path.stat().st_size
            say(f"legacy migration: {rows:,} generated rows ({result['file_bytes'] / 2**20:,.0f} MiB {fmt}) "
                f"in {result['generate_seconds']:.1f} s; migrating ...")
            checkpoint(url)
            summary, reporter, skips_fk_checks = migrate(url, path, batch_size, writers, check_foreign_keys)
            result["migration"] = _summary(summary, reporter)
            result["foreign_key_triggers"] = "skipped" if skips_fk_checks else "on"
            say(f"  migrated {summary.migrated:,} rows in {summary.elapsed_s:.1f} s (reading {summary.reading_s:.1f} s): "
                f"{summary.rows_per_second:,.0f} rows/s (bad {summary.bad_rows}, conflicts {summary.conflicts}; "
                f"{writers} writers, foreign-key triggers {result['foreign_key_triggers']})")
            t = time.perf_counter()
            violations = asyncio.run(find_violations_in_database(url))
            result["invariants_seconds"] = round(time.perf_counter() - t, 1)
            result["invariant_violations"] = violations[:20]
            result["totals"] = totals(url)
            say(f"  ledger invariants: {'hold' if not violations else f'{len(violations)} VIOLATIONS'}; balances "
                f"{'equal' if result['totals']['equal'] else 'DIFFER from'} the contract helper's totals "
                f"({result['invariants_seconds']:.0f} s to check)")
            checkpoint(url)
            again, again_reporter, _ = migrate(url, path, batch_size, writers, check_foreign_keys)
            result["rerun"] = _summary(again, again_reporter)
            say(f"  re-run: {again.already_migrated:,} already migrated, {again.migrated} migrated, in "
                f"{again.elapsed_s:.1f} s: {again.rows_per_second:,.0f} rows/s")
            counts = export_rows(url, Path(workdir))
            result["rows_written"] = counts
            say(f"  the migration wrote {sum(counts.values()):,} rows "
                f"({', '.join(f'{table} {n:,}' for table, n in counts.items())})")
            # The ceiling: COPY with what the migration had (its connections, its foreign-key mode).
            ceiling = copy_ceiling(url, Path(workdir), writers, skips_fk_checks)
            result["copy_ceiling"] = ceiling
            ratio = ceiling["seconds"] / summary.elapsed_s
            result["ratio_to_copy"] = round(ratio, 3)
            say(f"  plain COPY of the same rows ({ceiling['connections']} connection(s), foreign-key triggers "
                f"{ceiling['foreign_key_triggers']}): {ceiling['seconds']:.1f} s; COPY time / migration time = {ratio:.2f}")
            if skips_fk_checks:
                plain = copy_ceiling(url, Path(workdir), 1, False)
                result["copy_with_fk_checks"] = plain
                say(f"  (for comparison, one connection with the foreign-key triggers on: {plain['seconds']:.1f} s)")
            result["targets"] = {
                f">= {TARGET_ROWS_PER_SECOND:,} rows/s": summary.rows_per_second >= TARGET_ROWS_PER_SECOND,
                f">= {TARGET_RATIO} of COPY": ratio >= TARGET_RATIO,
                "ledger invariants hold": not violations,
                "balances equal the contract's totals": result["totals"]["equal"],
                "re-run migrates nothing": again.migrated == 0 and again.already_migrated == summary.migrated,
            }
            for name, met in result["targets"].items():
                say(f"  {'ok  ' if met else 'MISS'} {name}")
    finally:
        if not keep:
            drop_database(server_url)
    return result


def _summary(summary: Summary, reporter: _Quiet) -> dict:
    return {
        "read": summary.read, "migrated": summary.migrated, "already_migrated": summary.already_migrated,
        "conflicts": summary.conflicts, "bad_rows": summary.bad_rows, "seconds": round(summary.elapsed_s, 2),
        "reading_seconds": round(summary.reading_s, 2),
        "rows_per_second": round(summary.rows_per_second), "first_problems": [
            *(f"line {r.line}: {r.reason}" for r in reporter.bad[:5]),
            *(f"line {line}: {user}: {why}" for line, user, why in reporter.conflicts[:5]),
        ],
    }


def main(argv: list[str] | None = None) -> int:
    from bench.run import server_url

    parser = argparse.ArgumentParser(prog="python -m bench.legacy_migration", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--format", choices=sorted(GENERATE), default="jsonl")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--writers", type=int, default=DEFAULT_WRITERS)
    parser.add_argument("--check-foreign-keys", action="store_true", help="as billing migrate-legacy's flag")
    parser.add_argument("--keep", action="store_true", help=f"keep the database {DATABASE} afterwards")
    args = parser.parse_args(argv)
    started_at = datetime.now(timezone.utc)
    result = run(server_url(), args.rows, args.format, args.batch_size, args.writers, args.check_foreign_keys,
                 args.keep)
    document = {"started_at": started_at.isoformat(), "machine": {"cpus": os.cpu_count()}, "legacy_migration": result}
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"legacy-{started_at:%Y-%m-%dT%H%M%SZ}.json"
    path.write_text(json.dumps(document, indent=2, default=str))
    print(f"wrote {path}")
    return 0 if all(result["targets"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
