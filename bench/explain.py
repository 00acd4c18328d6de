"""Query plans of the statements the service sends, as markdown.

    python -m bench.explain --database-url URL --account 123456 [--include-writes] [--output plans.md]

The SQL is not copied here: the read use cases (GetBalance, ListEvents with a second
page, GetUsage for the day and the month) and one Consume run through the service code
against the database with a recording connection, and each distinct (statement,
parameters) they sent is explained, so a change to the queries is picked up by the next
run. Nothing the capture sends is committed (the recording connection keeps a transaction
open, ignores requests for autocommit and turns commit into rollback), and the account's
rows are compared before and after to prove the dataset was left as it was.

Every statement runs as EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF) with the
parameters the service bound, inside one transaction that is rolled back. psycopg
prepares a statement after a few uses and PostgreSQL may then switch to a generic plan,
so the generic plan (EXPLAIN (GENERIC_PLAN), PostgreSQL 16+) is shown too. The command
exits 1 when any plan reads a table with a sequential scan.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Mapping, Sequence

import psycopg

from billing.settings import libpq_url, normalize_database_url

EXPLAIN_ANALYZE = "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF) "
EXPLAIN_GENERIC = "EXPLAIN (GENERIC_PLAN, COSTS OFF) "
_PYFORMAT = re.compile(r"%\((\w+)\)s|%s|%%")
_NAMED = re.compile(r"(?<![:\w]):(\w+)")
_SCAN = re.compile(
    r"(?P<node>Seq Scan|Parallel Seq Scan|Index Only Scan|Index Scan|Bitmap Heap Scan|Bitmap Index Scan|Tid Scan)"
    r"(?P<backward> Backward)?(?: using (?P<index>\S+))? on (?P<relation>\S+)"
)

Params = Mapping[str, Any] | Sequence[Any] | None


@dataclass(frozen=True)
class Explained:
    name: str
    sql: str
    params: Params
    plan: str
    generic_plan: str | None

    def scans(self, generic: bool = False) -> list[str]:
        """One line per table access: "Index Scan using buckets_pkey on buckets"."""
        plan = self.generic_plan if generic else self.plan
        return [m.group(0) for m in _SCAN.finditer(plan or "")]

    @property
    def seq_scans(self) -> list[str]:
        return [s for s in self.scans() + self.scans(generic=True) if "Seq Scan" in s]


def to_pyformat(sql: str) -> str:
    """`:name` parameters (SQLAlchemy text() style) to psycopg's %(name)s; SQL already in psycopg style is kept."""
    if _PYFORMAT.search(sql):
        return sql
    return _NAMED.sub(r"%(\1)s", sql.replace("%", "%%"))


def to_numbered(sql: str, params: Params) -> str:
    """psycopg placeholders to $1, $2 ... (for EXPLAIN (GENERIC_PLAN), which takes no values)."""
    numbers: dict[str, int] = {}
    positional = iter(range(1, 1_000_000))

    def substitute(match: re.Match) -> str:
        if match.group(0) == "%%":
            return "%"
        if match.group(0) == "%s":
            return f"${next(positional)}"
        return f"${numbers.setdefault(match.group(1), len(numbers) + 1)}"

    return _PYFORMAT.sub(substitute, sql)


def explain_all(
    database_url: str, statements: Sequence[tuple[str, str, Params]], generic: bool = True
) -> list[Explained]:
    """Explains each statement in order, in one transaction that is rolled back."""
    results = []
    with psycopg.connect(libpq_url(database_url), options="-c timezone=UTC") as connection:
        # The outer block always rolls back; each statement runs in a savepoint inside it.
        with connection.transaction(force_rollback=True):
            for name, shown, params in statements:
                sql = to_pyformat(shown.strip())
                plan = _plan(connection, EXPLAIN_ANALYZE + sql, params)
                generic_plan = _plan(connection, EXPLAIN_GENERIC + to_numbered(sql, params), None) if generic else None
                results.append(Explained(name, shown.strip(), params, plan, generic_plan))
    return results


def _plan(connection: psycopg.Connection, sql: str, params: Params) -> str:
    # Inside explain_all's transaction, so the block below is a savepoint, never a COMMIT.
    assert connection.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
    try:
        # A savepoint rolled back: one failing statement does not hide the others, and each
        # statement is explained against the account as it was (a write does not stale the next).
        with connection.transaction(force_rollback=True):
            rows = connection.execute(sql, params, prepare=False).fetchall()
    except psycopg.Error as error:
        return f"(not explained: {type(error).__name__}: {str(error).strip()})"
    return "\n".join(row[0] for row in rows)


def explain(database_url: str, statements: list[tuple[str, str, dict]]) -> str:
    """EXPLAIN ANALYZE (and the generic plan) of each (name, sql, params), rendered as markdown."""
    return render_markdown(explain_all(database_url, statements))


def render_markdown(results: Sequence[Explained], title: str = "Query plans") -> str:
    lines = [f"# {title}", "", "| statement | table access (custom plan) | generic plan differs |", "|---|---|---|"]
    for result in results:
        custom, generic = result.scans(), result.scans(generic=True)
        differs = "n/a" if result.generic_plan is None else ("no" if custom == generic else "; ".join(generic) or "-")
        lines.append(f"| {result.name} | {'<br>'.join(custom) or '-'} | {differs} |")
    for result in results:
        lines += ["", f"## {result.name}", "", "```sql", result.sql, "```", "", f"Parameters: {_show(result.params)}",
                  "", "```text", result.plan, "```"]
        if result.generic_plan is not None:
            lines += ["", "Generic plan (as a prepared statement may run it):", "",
                      "```text", result.generic_plan, "```"]
    return "\n".join(lines) + "\n"


def _show(params: Params) -> str:
    def value(v: Any) -> str:
        if hasattr(v, "obj"):  # psycopg Json/Jsonb wrappers
            v = v.obj
        if isinstance(v, (datetime, date)):
            return v.isoformat()
        if isinstance(v, (dict, list)):
            text = json.dumps(v)
            return text if len(text) <= 200 else text[:200] + "..."
        return repr(v)

    if not params:
        return "none"
    if isinstance(params, Mapping):
        return ", ".join(f"`{k}` = `{value(v)}`" for k, v in params.items())
    return ", ".join(f"`${i}` = `{value(v)}`" for i, v in enumerate(params, 1))


# --- capturing what the service sends -----------------------------------------------------------


class _RecordingConnection:
    """Forwards to a real psycopg connection and records each execute, but never lets anything commit:
    autocommit stays off whatever the unit of work asks, a transaction is always open before a
    statement runs, and commit() rolls back. The pool rolls back again when the connection returns."""

    def __init__(self, connection, recorded: list, label: list[str]):
        self._connection = connection
        self._recorded = recorded
        self._label = label

    async def _hold(self) -> None:
        if self._connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            await self._connection.execute("SELECT 1")  # opens the transaction; not recorded

    async def execute(self, query, params=None, **kwargs):
        await self._hold()
        self._recorded.append((self._label[0], query, params))
        return await self._connection.execute(query, params, **kwargs)

    async def commit(self):
        await self._connection.rollback()

    async def set_autocommit(self, value: bool) -> None:
        pass

    @property
    def autocommit(self) -> bool:
        return False

    def transaction(self, *args, **kwargs):
        return _HeldTransaction(self, args, kwargs)

    def __getattr__(self, name):
        return getattr(self._connection, name)


class _HeldTransaction:
    """connection.transaction() nested in an open transaction: a savepoint, never a COMMIT."""

    def __init__(self, connection: _RecordingConnection, args, kwargs):
        self._connection, self._args, self._kwargs, self._inner = connection, args, kwargs, None

    async def __aenter__(self):
        await self._connection._hold()
        self._inner = self._connection._connection.transaction(*self._args, **self._kwargs)
        return await self._inner.__aenter__()

    async def __aexit__(self, *exc):
        return await self._inner.__aexit__(*exc)


class _RecordingPool:
    def __init__(self, pool, recorded: list, label: list[str]):
        self._pool, self._recorded, self._label = pool, recorded, label

    async def getconn(self, *args, **kwargs):
        connection = await self._pool.getconn(*args, **kwargs)
        await connection.set_autocommit(False)
        return _RecordingConnection(connection, self._recorded, self._label)

    async def putconn(self, connection):
        await connection._connection.rollback()
        await self._pool.putconn(connection._connection)


_ACCOUNT_STATE = """
SELECT (SELECT row(last_bucket_seq, last_event_seq, updated_at)::text FROM accounts WHERE account_id = %(a)s),
       (SELECT count(*) FROM buckets WHERE account_id = %(a)s),
       (SELECT count(*) FROM ledger_events WHERE account_id = %(a)s),
       (SELECT count(*) FROM idempotency_records WHERE account_id = %(a)s),
       (SELECT count(*) FROM resume_tokens WHERE account_id = %(a)s)
"""


def _account_state(database_url: str, account_id: str) -> tuple:
    with psycopg.connect(libpq_url(database_url)) as connection:
        return connection.execute(_ACCOUNT_STATE, {"a": account_id}).fetchone()


async def capture(database_url: str, account_id: str, include_writes: bool = False) -> list[tuple[str, str, Params]]:
    """The distinct (name, sql, params) the service sends for one account's reads (and one Consume)."""
    from contextlib import AsyncExitStack

    from billing.adapters.clock import SystemClock
    from billing.bootstrap import build_service
    from billing.domain.errors import InsufficientAiTime
    from billing.service.balance import get_balance
    from billing.service.consume import consume
    from billing.settings import Settings
    from billing.service.history import list_events
    from billing.service.usage import get_usage

    recorded: list = []
    label = [""]
    before = _account_state(database_url, account_id)
    if before[0] is None:
        raise SystemExit(f"no account {account_id!r} in {database_url}")
    async with AsyncExitStack() as stack:
        service = await build_service(
            Settings.from_environment(database_url=normalize_database_url(database_url)), stack, pool_size=1,
            clock=SystemClock(), storage_pool=lambda pool: _RecordingPool(pool, recorded, label),
        )
        deps = service.deps
        label[0] = "GetBalance"
        await get_balance(deps, account_id)
        label[0] = "ListEvents"
        page = await list_events(deps, account_id, 3, "")
        if page.next_page_token:
            label[0] = "ListEvents (next page)"
            await list_events(deps, account_id, 3, page.next_page_token)
        for period in ("day", "month"):
            label[0] = f"GetUsage ({period})"
            await get_usage(deps, account_id, period)
        label[0] = "Consume"
        try:
            await consume(deps, account_id, "build", 1, f"explain-{uuid.uuid4().hex}")
        except InsufficientAiTime:
            pass  # an account run dry: the statements up to the refusal are still worth explaining
    after = _account_state(database_url, account_id)
    if after != before:  # the recording connection should make this impossible
        raise RuntimeError(f"capturing changed account {account_id}: {before} -> {after}")

    statements, seen = [], set()
    names = _constant_names()
    for use_case, sql, params in recorded:
        key = (sql, repr(params))
        if key in seen or (not include_writes and not _is_read(sql)):
            continue
        seen.add(key)
        constant = names.get(sql) or " ".join(sql.split()[:4])
        statements.append((f"{use_case}: {constant}", sql, params))
    if include_writes:
        statements += _under_load(statements)
    return statements


def _under_load(statements: list[tuple[str, str, Params]]) -> list[tuple[str, str, Params]]:
    """Under load, group commit sends a Consume's read with other requests' writes in one
    statement: that statement with the Consume's own read and write."""
    from billing.adapters.db import wallet_sql

    by_sql = {sql: params for name, sql, params in statements if name.startswith("Consume:")}
    read, write = by_sql.get(wallet_sql.READ_WALLETS), by_sql.get(wallet_sql.SAVE_WALLETS)
    if read is None or write is None:
        return []
    params = {**read, **write, "all_or_nothing": False}
    return [("Consume under load (group commit): READ_AND_SAVE_WALLETS", wallet_sql.READ_AND_SAVE_WALLETS, params)]


def _is_read(sql: str) -> bool:
    """SELECT (FOR UPDATE included), as opposed to INSERT/UPDATE/DELETE or a WITH holding them."""
    words = re.sub(r"'[^']*'", "", sql).upper().split()
    return bool(words) and words[0] == "SELECT" and not {"INSERT", "UPDATE", "DELETE"} & set(words)


def _constant_names() -> dict[str, str]:
    """SQL text -> the module constant holding it, for readable headings."""
    import importlib

    names = {}
    for module_name in ("billing.adapters.db.wallet_sql", "billing.adapters.db.ledger_history"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for name, value in vars(module).items():
            if name.isupper() and isinstance(value, str):
                names.setdefault(value, name)
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.explain", description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--account", default="1", help="account id to run the use cases for (default 1)")
    parser.add_argument("--include-writes", action="store_true", help="also explain Consume's write statement")
    parser.add_argument("--output", help="write the markdown here instead of stdout")
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("--database-url (or DATABASE_URL) is required")
    statements = asyncio.run(capture(args.database_url, args.account, args.include_writes))
    results = explain_all(args.database_url, statements)
    markdown = render_markdown(results, title=f"Query plans for account {args.account}")
    if args.output:
        with open(args.output, "w") as out:
            out.write(markdown)
    else:
        sys.stdout.write(markdown)
    seq_scans = [f"{r.name}: {s}" for r in results for s in r.seq_scans]
    for line in seq_scans:
        print(f"sequential scan: {line}", file=sys.stderr)
    print(f"{len(results)} statements explained; "
          + ("no sequential scans" if not seq_scans else f"{len(seq_scans)} sequential scans"), file=sys.stderr)
    return 1 if seq_scans else 0


if __name__ == "__main__":
    sys.exit(main())
