"""`make bench-data`: a benchmark dataset built server-side, once, and reused.

    python -m bench.data --database-url URL --accounts N [--buckets-per-account 10] [--force]

Accounts "1".."N" on the business plan (no daily bonus, so reads never write), each with
`buckets-per-account` buckets and exactly one credit ledger event per bucket
(event_seq = bucket_seq), so every invariant in billing.adapters.db.invariants holds:

    seq 1 welcome, seq 2 gift (never expire; ledger type "adjustment"),
    then package x4, subscription x2, rollover x2, repeating for larger counts,
    expiring 30-89 days after the generation time (spread per bucket), so the
    consumption order has real choices and the dataset stays live for weeks.

Every bucket holds `--granted-seconds` (default 1,000,000) untouched, so a benchmark never
runs an account dry. Rows are generated in PostgreSQL (INSERT ... SELECT over
generate_series; no row goes through Python), with FK triggers off (session_replication_role
= replica) and the Alembic indexes in place, maintained as rows arrive; buckets and ledger
load concurrently on two connections. `--layout grant` (default) writes rows in the order a
live system accumulates them (every account's bucket 1, then every account's bucket 2 ...),
`--layout account` in primary-key order. Then VACUUM (FREEZE, ANALYZE), so the benchmark
does not pay for hint bits, freezing or missing statistics. A sample of accounts is checked
with find_violations before the dataset is recorded.

The parameters are recorded in bench_dataset; a second run with the same ones does nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from billing.adapters.db.migrate import upgrade_to_head
from billing.domain.wallet import BALANCE_SECONDS_MAX
from billing.settings import libpq_url, normalize_database_url

CREATED_AT = datetime(2025, 1, 1, tzinfo=timezone.utc)
DEFAULT_BUCKETS_PER_ACCOUNT = 10
DEFAULT_GRANTED_SECONDS = 1_000_000
DATA_TABLES = (
    "accounts", "buckets", "ledger_events", "idempotency_records", "resume_tokens", "payments", "payment_profiles",
    "legacy_migrations", "plan_changes", "payment_owners", "holds",
    "outbound_events", "webhook_deliveries", "webhook_attempts",  # the outbox references accounts (issue 22)
)
SESSION_SETTINGS = (
    "SET maintenance_work_mem = '1GB'",
    "SET work_mem = '256MB'",
    # Only the commit waits for the WAL flush; a crash mid-load leaves no bench_dataset row anyway.
    "SET synchronous_commit = off",
)

CREATE_RECORD_TABLE = """
CREATE TABLE IF NOT EXISTS bench_dataset (
    accounts int NOT NULL,
    buckets_per_account int NOT NULL,
    generated_at timestamptz NOT NULL,
    layout text NOT NULL DEFAULT 'grant'
);
ALTER TABLE bench_dataset ADD COLUMN IF NOT EXISTS layout text NOT NULL DEFAULT 'grant'
"""

INSERT_ACCOUNTS = """
INSERT INTO accounts (account_id, plan_key, subscription_status, created_at, updated_at,
                      last_bucket_seq, last_event_seq, bonus_last_grant_on, bonus_month, bonus_used_seconds)
SELECT i::text, 'business', 'active', %(created_at)s, %(now)s, %(b)s::int, %(b)s::int, NULL, NULL, 0
FROM generate_series(1, %(n)s::int) AS i
ORDER BY 1
"""

# One row per bucket. Buckets and ledger are generated from this same deterministic query,
# which lets them load concurrently; h is a per-bucket hash that spreads the expiries.
# A subquery with ORDER BY is never flattened, and a LATERAL one is always the inner side
# of the nested loop, so the FROM clauses below fix the order rows are written in:
LAYOUTS = {
    # Grant order: every account's first bucket, then every account's second ... as rows
    # accumulate in production (bucket k was granted k days after bucket 1, for everyone).
    # An account's buckets sit on different heap pages, and the indexes fill by inserts.
    "grant": """
FROM generate_series(1, %(b)s::int) AS s
CROSS JOIN LATERAL (
    SELECT i::text AS id, hashint8(i::bigint * 1000003 + s)::bigint + 2147483648 AS h
    FROM generate_series(1, %(n)s::int) AS i
    ORDER BY 1
) AS a
""",
    # Account order (primary-key order): an account's rows share a heap page and index
    # inserts append. Faster to load and kinder to the cache than a live system would be.
    "account": """
FROM (SELECT i, i::text AS id FROM generate_series(1, %(n)s::int) AS i ORDER BY 2) AS acc
CROSS JOIN LATERAL (
    SELECT acc.id, s, hashint8(acc.i::bigint * 1000003 + s)::bigint + 2147483648 AS h
    FROM generate_series(1, %(b)s::int) AS s
    ORDER BY 2
) AS a
""",
}
DEFAULT_LAYOUT = "grant"


def bucket_rows(layout: str) -> str:
    return """
SELECT a.id AS account_id, s AS bucket_seq, source,
       %(now)s - make_interval(days => %(b)s::int + 1 - s) AS granted_at,
       CASE WHEN source IN ('welcome', 'gift') THEN NULL
            ELSE %(now)s + make_interval(days => 30 + (a.h %% 60)::int, secs => ((a.h / 60) %% 86400)::int)
       END AS expires_at
FROM (
  SELECT a.id, s, a.h,
         CASE WHEN s = 1 THEN 'welcome' WHEN s = 2 THEN 'gift'
              ELSE (ARRAY['package', 'package', 'package', 'package',
                          'subscription', 'subscription', 'rollover', 'rollover'])[(s - 3) %% 8 + 1]
         END AS source
  """ + LAYOUTS[layout] + """) AS a
"""


INSERT_BUCKETS = """
INSERT INTO buckets (account_id, bucket_seq, source, granted_seconds, remaining_seconds, granted_at, expires_at)
SELECT account_id, bucket_seq, source, %(granted)s, %(granted)s, granted_at, expires_at
FROM ({rows}) AS r
"""

INSERT_LEDGER = """
INSERT INTO ledger_events (account_id, event_seq, type, seconds, reason, bucket_seq, operation, occurred_at, metadata)
SELECT account_id, bucket_seq,
       CASE source WHEN 'package' THEN 'package_credit'
                   WHEN 'subscription' THEN 'subscription_credit'
                   WHEN 'rollover' THEN 'rollover_created'
                   ELSE 'adjustment' END,
       %(granted)s,
       CASE source WHEN 'package' THEN 'Package purchase'
                   WHEN 'subscription' THEN 'Business plan minutes'
                   WHEN 'rollover' THEN 'Rollover from the previous period'
                   WHEN 'welcome' THEN 'Welcome bonus'
                   ELSE 'Gift from support' END,
       bucket_seq, NULL, granted_at, jsonb_build_object('source', source)
FROM ({rows}) AS r
"""


@dataclass
class Outcome:
    database_url: str
    generated: bool
    accounts: int
    buckets_per_account: int
    generated_at: datetime
    timings: dict[str, float] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    database_bytes: int = 0
    sampled_accounts: int = 0
    violations: list[str] = field(default_factory=list)


def ensure_database(database_url: str) -> bool:
    """Creates the URL's database unless it exists (through the server's `postgres` database)."""
    conninfo = libpq_url(database_url)
    name = conninfo_to_dict(conninfo)["dbname"]
    with psycopg.connect(make_conninfo(conninfo, dbname="postgres"), autocommit=True) as admin:
        if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return False
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


def _connect(database_url: str, **kwargs) -> psycopg.Connection:
    return psycopg.connect(libpq_url(database_url), options="-c timezone=UTC", **kwargs)


def _bulk_session(connection: psycopg.Connection, say: Callable[[str], None]) -> bool:
    """Session settings for a bulk load; True when FK triggers are off (needs superuser)."""
    for statement in SESSION_SETTINGS:
        connection.execute(statement)
    try:
        connection.execute("SET session_replication_role = replica")
        replica = True
    except psycopg.errors.InsufficientPrivilege:
        say("  (not a superuser: FK triggers stay on, loading tables one after another)")
        replica = False
    connection.commit()
    return replica


def _timed(database_url: str, name: str, statement: str, params: dict, say) -> tuple[str, int, float]:
    with _connect(database_url) as connection:
        _bulk_session(connection, lambda _: None)
        started = time.perf_counter()
        rows = connection.execute(statement, params).rowcount
        connection.commit()
        elapsed = time.perf_counter() - started
    say(f"  {name:<14} {rows:>12,} rows  {elapsed:8.1f} s")
    return name, rows, elapsed


def _vacuum(database_url: str, table: str, say) -> tuple[str, float]:
    with _connect(database_url, autocommit=True) as connection:
        connection.execute("SET maintenance_work_mem = '1GB'")
        started = time.perf_counter()
        connection.execute(f"VACUUM (FREEZE, ANALYZE) {table}")
        elapsed = time.perf_counter() - started
    say(f"  vacuum {table:<14}           {elapsed:8.1f} s")
    return table, elapsed


def build(
    database_url: str,
    accounts: int,
    buckets_per_account: int = DEFAULT_BUCKETS_PER_ACCOUNT,
    *,
    now: datetime | None = None,
    force: bool = False,
    layout: str = DEFAULT_LAYOUT,
    jobs: int = 2,
    granted_seconds: int = DEFAULT_GRANTED_SECONDS,
    sample: int = 100,
    sample_budget_seconds: float = 60.0,
    say: Callable[[str], None] = print,
) -> Outcome:
    """Generates the dataset unless the database already holds it; see the module docstring."""
    if accounts < 1 or buckets_per_account < 1:
        raise ValueError("accounts and buckets_per_account must be positive")
    if not 0 < granted_seconds < 2**31 or granted_seconds * buckets_per_account > BALANCE_SECONDS_MAX:
        raise ValueError(f"granted_seconds x buckets_per_account must stay within {BALANCE_SECONDS_MAX:,}")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}")
    database_url = normalize_database_url(database_url)
    started = time.perf_counter()
    timings: dict[str, float] = {}

    if ensure_database(database_url):
        say(f"created database {conninfo_to_dict(libpq_url(database_url))['dbname']}")
    t = time.perf_counter()
    upgrade_to_head(database_url)
    timings["migrate"] = time.perf_counter() - t

    with _connect(database_url) as connection:
        connection.execute(CREATE_RECORD_TABLE)
        connection.commit()
        recorded = connection.execute(
            "SELECT accounts, buckets_per_account, generated_at, layout FROM bench_dataset"
        ).fetchall()
        holds_rows = any(
            connection.execute(f"SELECT EXISTS (SELECT 1 FROM {table})").fetchone()[0] for table in DATA_TABLES
        )
        wanted = (accounts, buckets_per_account, layout)
        if not force and len(recorded) == 1 and (recorded[0][0], recorded[0][1], recorded[0][3]) == wanted:
            generated_at = recorded[0][2]
            age = datetime.now(timezone.utc) - generated_at
            say(f"dataset of {accounts:,} accounts x {buckets_per_account} buckets ({layout} layout) already present "
                f"(generated {generated_at:%Y-%m-%d %H:%M} UTC); nothing to do (--force regenerates)")
            if age > timedelta(days=25):
                say(f"  note: generated {age.days} days ago; its first buckets expire 30 days after generation")
            return Outcome(database_url, False, accounts, buckets_per_account, generated_at)
        if not force and (recorded or holds_rows):
            what = (f"a dataset of {recorded[0][0]:,} accounts x {recorded[0][1]} buckets ({recorded[0][3]} layout)"
                    if len(recorded) == 1 else "rows not generated by bench.data (or an interrupted run)")
            raise SystemExit(f"{database_url} holds {what}; pass --force to truncate and regenerate")
        now = now or connection.execute("SELECT date_trunc('second', now())").fetchone()[0]
        if now - timedelta(days=buckets_per_account + 1) <= CREATED_AT:
            raise ValueError(f"now must be later than {CREATED_AT + timedelta(days=buckets_per_account + 1)}")

        params = {
            "n": accounts, "b": buckets_per_account, "granted": granted_seconds,
            "now": now, "created_at": CREATED_AT,
        }
        say(f"generating {accounts:,} accounts x {buckets_per_account} buckets (+1 ledger event each, "
            f"{layout} layout) into {database_url}, now = {now:%Y-%m-%d %H:%M:%S} UTC")
        replica = _bulk_session(connection, say)
        t = time.perf_counter()
        connection.execute(f"TRUNCATE {', '.join(DATA_TABLES)}, bench_dataset")
        connection.commit()
        timings["truncate"] = time.perf_counter() - t

    rows: dict[str, int] = {}
    _, rows["accounts"], timings["accounts"] = _timed(database_url, "accounts", INSERT_ACCOUNTS, params, say)
    generated_rows = bucket_rows(layout)
    loads = [("buckets", INSERT_BUCKETS.format(rows=generated_rows)),
             ("ledger_events", INSERT_LEDGER.format(rows=generated_rows))]
    # Without replica mode the ledger's FK needs its buckets first.
    parallel = max(1, min(jobs, len(loads))) if replica else 1
    t = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        for name, count, elapsed in pool.map(lambda load: _timed(database_url, *load, params, say), loads):
            rows[name], timings[name] = count, elapsed
    timings["buckets + ledger_events (wall)"] = time.perf_counter() - t
    expected = {"accounts": accounts, "buckets": accounts * buckets_per_account,
                "ledger_events": accounts * buckets_per_account}
    if rows != expected:
        raise RuntimeError(f"row counts {rows} differ from {expected}")
    t = time.perf_counter()
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        for table, elapsed in pool.map(lambda table: _vacuum(database_url, table, say), reversed(DATA_TABLES[:3])):
            timings[f"vacuum {table}"] = elapsed
    timings["vacuum (wall)"] = time.perf_counter() - t

    outcome = Outcome(database_url, True, accounts, buckets_per_account, now, timings, rows)
    if sample:
        t = time.perf_counter()
        ids = list(dict.fromkeys([1, accounts, *random.sample(range(2, accounts), max(0, min(sample, accounts - 2)))]))
        checked, outcome.violations = asyncio.run(
            sampled_violations(database_url, [str(i) for i in ids], buckets_per_account, sample_budget_seconds)
        )
        outcome.sampled_accounts = checked
        timings["sampled check"] = time.perf_counter() - t
        say(f"  sampled check  {checked:>12,} accounts {timings['sampled check']:8.1f} s: "
            + ("invariants hold" if not outcome.violations else f"{len(outcome.violations)} violations"))
        if checked < len(ids):
            say(f"    (stopped after {sample_budget_seconds:.0f} s; find_violations(connection, account_id) "
                f"took {timings['sampled check'] / checked:.1f} s per account)")
        for violation in outcome.violations[:20]:
            say(f"    {violation}")
        if outcome.violations:
            raise SystemExit("the generated dataset breaks the ledger invariants; not recorded as reusable")

    with _connect(database_url) as connection:
        connection.execute(
            "INSERT INTO bench_dataset (accounts, buckets_per_account, generated_at, layout) VALUES (%s, %s, %s, %s)",
            (accounts, buckets_per_account, now, layout),
        )
        connection.commit()
        outcome.database_bytes = connection.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    timings["total"] = time.perf_counter() - started
    say(f"done in {timings['total']:.1f} s; database size {outcome.database_bytes / 2**20:,.0f} MiB")
    return outcome


async def sampled_violations(
    database_url: str, account_ids: list[str], buckets_per_account: int, budget_seconds: float = 60.0
) -> tuple[int, list[str]]:
    """find_violations for each account (plus its row counts and counters) until the budget is spent;
    returns how many accounts were checked, and the violations found."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from billing.adapters.db.invariants import find_violations

    engine = create_async_engine(database_url, connect_args={"options": "-c timezone=UTC"})
    violations: list[str] = []
    deadline = time.perf_counter() + budget_seconds
    checked = 0
    try:
        async with engine.connect() as connection:
            for account_id in account_ids:
                if checked and time.perf_counter() > deadline:
                    break
                checked += 1
                violations += await find_violations(connection, account_id)
                shape = (await connection.execute(text(
                    "SELECT a.last_bucket_seq, a.last_event_seq,"
                    " (SELECT count(*) FROM buckets b WHERE b.account_id = a.account_id),"
                    " (SELECT count(*) FROM ledger_events e WHERE e.account_id = a.account_id)"
                    " FROM accounts a WHERE a.account_id = :account_id"
                ), {"account_id": account_id})).first()
                if shape is None or tuple(shape) != (buckets_per_account,) * 4:
                    violations.append(f"account {account_id} (last_bucket_seq, last_event_seq, buckets, events) "
                                      f"= {None if shape is None else tuple(shape)}")
    finally:
        await engine.dispose()
    return checked, violations


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.data", description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"),
                        help="target database (created if missing); default $DATABASE_URL")
    parser.add_argument("--accounts", type=int, required=True)
    parser.add_argument("--buckets-per-account", type=int, default=DEFAULT_BUCKETS_PER_ACCOUNT)
    parser.add_argument("--granted-seconds", type=int, default=DEFAULT_GRANTED_SECONDS,
                        help="seconds granted (and remaining) in every bucket")
    parser.add_argument("--now", type=datetime.fromisoformat,
                        help="generation time (ISO 8601, UTC if no offset); default the database's now()")
    parser.add_argument("--force", action="store_true", help="truncate the data tables and regenerate")
    parser.add_argument("--layout", choices=sorted(LAYOUTS), default=DEFAULT_LAYOUT,
                        help="row order on disk: grant (as a live system accumulates them; default) "
                             "or account (primary-key order: faster to load, optimistic cache locality)")
    parser.add_argument("--jobs", type=int, default=2, help="connections loading in parallel (default 2)")
    parser.add_argument("--sample", type=int, default=100,
                        help="random accounts checked with find_violations afterwards (0: none; at most 60 s)")
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("--database-url (or DATABASE_URL) is required")
    now = args.now
    if now is not None and now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    build(
        args.database_url, args.accounts, args.buckets_per_account, now=now, force=args.force, layout=args.layout,
        jobs=args.jobs,        granted_seconds=args.granted_seconds, sample=args.sample,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
