"""The operator console's account page on a long ledger (issue 23: under 300 ms on 100,000 rows).

    python -m bench.console --database-url URL [--rows 100000] [--rounds 30]

Opens an account of its own on the dataset (`bench-console-<run id>`) and gives it `--rows` ledger
rows on one bucket (a credit of 10 every 10th row, a consumption of 1 otherwise, as the ledger's
invariants want), then times, in process through the composition root (the server's use cases and
SQL; Envoy and gRPC add about a millisecond), each `--rounds` times:
  - the account page: GetAccountOverview, then the ledger's first page (50 rows, newest first);
  - a page deep in the ledger (the middle, by its token's position), and a filtered one (one type);
  - the account's usage chart (30 days).
`bench/run.py --only console` runs it on the 1M dataset and writes the result."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from contextlib import AsyncExitStack
from typing import Any, Awaitable, Callable

import psycopg

from bench.load_stats import latency_summary
from billing.settings import libpq_url, normalize_database_url

SEED = """
WITH a AS (
  INSERT INTO accounts (account_id, plan_key, subscription_status, created_at, updated_at, last_bucket_seq, last_event_seq)
  VALUES (%(account)s, 'free', 'inactive', now(), now(), 1, %(rows)s) RETURNING account_id
), bucket AS (
  INSERT INTO buckets (account_id, bucket_seq, source, granted_seconds, remaining_seconds, granted_at)
  SELECT account_id, 1, 'gift', 10 * %(credits)s, 11 * %(credits)s - %(rows)s, now() FROM a
)
INSERT INTO ledger_events (account_id, event_seq, type, seconds, reason, bucket_seq, operation, occurred_at, metadata)
SELECT %(account)s, n, CASE WHEN n %% 10 = 1 THEN 'adjustment' ELSE 'consumption' END,
       CASE WHEN n %% 10 = 1 THEN 10 ELSE -1 END, '', 1, CASE WHEN n %% 10 = 1 THEN NULL ELSE 'build' END,
       now() - interval '60 days' + n * interval '50 seconds', jsonb_build_object('n', n)
FROM generate_series(1, %(rows)s) AS n
"""


def seed(database_url: str, account_id: str, rows: int) -> None:
    with psycopg.connect(libpq_url(database_url), autocommit=True) as connection:
        connection.execute(SEED, {"account": account_id, "rows": rows, "credits": (rows + 9) // 10})
        connection.execute("ANALYZE ledger_events")


async def _timed(rounds: int, call: Callable[[], Awaitable[Any]]) -> dict[str, float]:
    await call()  # warm: the first call reads the account's pages from disk
    latencies = []
    for _ in range(rounds):
        started = time.perf_counter()
        await call()
        latencies.append(time.perf_counter() - started)
    return latency_summary(latencies)


async def measure(database_url: str, rows: int, rounds: int) -> dict[str, Any]:
    from billing.bootstrap import build_service
    from billing.service.operator_account import get_account_overview
    from billing.service.operator_inputs import encode_token
    from billing.service.operator_ledger import list_account_ledger
    from billing.service.operator_usage import get_account_usage
    from billing.settings import Settings

    account_id = f"bench-console-{uuid.uuid4().hex[:10]}"
    seed(database_url, account_id, rows)
    async with AsyncExitStack() as stack:
        service = await build_service(Settings.from_environment(database_url=normalize_database_url(database_url)),
                                      stack, pool_size=2, announce_changes=False)
        deps = service.deps

        async def account_page() -> None:
            await get_account_overview(deps, account_id)
            await list_account_ledger(deps, account_id, (), None, None, 50, "", "")

        middle = encode_token("ledger", "newest_first", str(rows // 2))
        return {
            "rows": rows, "rounds": rounds, "account_id": account_id,
            "account_page": await _timed(rounds, account_page),
            "ledger_middle_page": await _timed(rounds, lambda: list_account_ledger(
                deps, account_id, (), None, None, 200, middle, "")),
            "ledger_one_type": await _timed(rounds, lambda: list_account_ledger(
                deps, account_id, ("adjustment",), None, None, 50, middle, "")),
            "usage_30_days": await _timed(rounds, lambda: get_account_usage(deps, account_id, 30)),
        }


def line(result: dict[str, Any]) -> str:
    page = result["account_page"]
    return (f"console account page ({result['rows']:,} ledger rows): p50 {page['p50_ms']:.1f} ms, "
            f"p99 {page['p99_ms']:.1f} ms; middle page p50 {result['ledger_middle_page']['p50_ms']:.1f} ms; "
            f"one type p50 {result['ledger_one_type']['p50_ms']:.1f} ms; usage p50 {result['usage_30_days']['p50_ms']:.1f} ms")


def run(database_url: str, rows: int = 100_000, rounds: int = 30) -> dict[str, Any]:
    result = asyncio.run(measure(database_url, rows, rounds))
    print(line(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.console", description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    print(json.dumps(run(args.database_url, args.rows, args.rounds), indent=2))


if __name__ == "__main__":
    main()
