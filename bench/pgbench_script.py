"""The database's own ceiling for Consume: pgbench running exactly the SQL the service sends.

The statements are not copied here: one real Consume runs through the service code with a
recording connection, and the script is built from what it sent. Per-transaction values
become pgbench variables (a random account, a fresh idempotency key, sequence numbers
read back from the account row); the rest are bound as the service bound them.
"""

from __future__ import annotations

import json
import re
import uuid
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb

from devstack import embedded_postgres
from billing.adapters.clock import SystemClock
from billing.bootstrap import build_service
from billing.adapters.db.wallet_columns import ACCOUNT
from billing.service.consume import consume
from billing.settings import Settings, libpq_url

READ_PREFIX = "read_"  # \aset's: the read's columns become pgbench variables read_<column name>
# The read's account columns, by their names in its rows (account_last_event_seq, ...).
READ_LAST_EVENT_SEQ = f":{READ_PREFIX}{ACCOUNT.alias('last_event_seq')}"
READ_VERSION = f":{READ_PREFIX}{ACCOUNT.alias('version')}"
READ_LAST_BUCKET_SEQ = f":{READ_PREFIX}{ACCOUNT.alias('last_bucket_seq')}"
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


class _RecordingConnection:
    def __init__(self, connection, statements: list):
        self._connection = connection
        self._statements = statements

    async def execute(self, sql, params=None):
        self._statements.append((sql, dict(params or {})))
        return await self._connection.execute(sql, params)

    def __getattr__(self, name):
        return getattr(self._connection, name)


class _RecordingPool:
    def __init__(self, pool, statements: list):
        self._pool = pool
        self._statements = statements

    async def getconn(self):
        return _RecordingConnection(await self._pool.getconn(), self._statements)

    async def putconn(self, connection):
        await self._pool.putconn(connection._connection)


async def capture_consume(database_url: str, account_id: str) -> list[tuple[str, dict[str, Any]]]:
    """The (sql, params) one Consume of `account_id` sends, in order."""
    statements: list[tuple[str, dict[str, Any]]] = []
    async with AsyncExitStack() as stack:
        service = await build_service(
            Settings.from_environment(database_url=database_url), stack, pool_size=1, clock=SystemClock(),
            storage_pool=lambda pool: _RecordingPool(pool, statements),
        )
        await consume(service.deps, account_id, "build", 1, f"pgbench-capture-{uuid.uuid4().hex}")
    return statements


@dataclass(frozen=True)
class PgbenchScript:
    text: str
    defines: dict[str, str]  # -D name=value


def build_script(
    statements: list[tuple[str, dict[str, Any]]], accounts: int, clients: int, account_offset: int = 0
) -> PgbenchScript:
    """Consume's optimistic path: one read statement, one write statement, each its own transaction.

    Each pgbench client draws from its own accounts (client_id + k * clients): pgbench cannot
    retry the version-check failure the service retries, so two clients never share one.
    The statements' JSON documents (one request, one wallet: what a lone Consume sends) are
    rebuilt per transaction from pgbench variables where the service's values vary.
    """
    assert len(statements) == 2, f"expected read and save; the service sent {len(statements)} statements"
    (read_sql, read_params), (save_sql, save_params) = statements
    [wallet] = save_params["wallets"].obj
    assert wallet["new_buckets"] == [], "capture hit a daily-bonus grant; rerun"
    per_transaction = {
        "requests": {"account_id": ":account_id", "idempotency_key": ":idempotency_key"},
        "wallets": {
            "account_id": ":account_id",
            "idempotency_key": ":idempotency_key",
            "expected_version": READ_VERSION,
            "version": ":version",
            "first_event_seq": ":first_event_seq",
            "last_event_seq": ":last_event_seq",
            "last_bucket_seq": READ_LAST_BUCKET_SEQ,
        },
    }
    defines: dict[str, str] = {}

    def render(sql: str, params: dict[str, Any]) -> str:
        def substitute(match: re.Match) -> str:
            name = match.group(1)
            value = params[name]
            if name in per_transaction:
                return _json_from_variables(name, value.obj, per_transaction[name], defines)
            if value is None:
                return "NULL"
            defines[name] = _as_text(value)
            return f":{name}"

        return _PLACEHOLDER.sub(substitute, sql).strip()

    lines = [
        f"\\set account_id {account_offset + 1} + :client_id + {clients} * random(0, {accounts // clients - 1})",
        "\\set idempotency_key random(1, 9000000000000000000)",
        # \aset keeps the last row: every account row of the read carries the account's columns.
        render(read_sql, read_params) + f"\n\\aset {READ_PREFIX}",
        f"\\set first_event_seq {READ_LAST_EVENT_SEQ} + 1",
        f"\\set last_event_seq {READ_LAST_EVENT_SEQ} + {len(wallet['entries'])}",
        f"\\set version {READ_VERSION} + 1",
        render(save_sql, save_params) + ";",
    ]
    return PgbenchScript(text="\n".join(lines) + "\n", defines=defines)


def pgbench_command(
    script: PgbenchScript, script_path: str, database_url: str, clients: int,
    *, seconds: int | None = None, transactions: int | None = None, protocol: str = "prepared",
) -> list[str]:
    """The pgbench command line running `script` (written at script_path) in prepared mode, or `protocol`
    (`extended` through a transaction-mode pooler, where prepared statements are not the client's own)."""
    length = ["-T", str(seconds)] if seconds is not None else ["-t", str(transactions)]
    defines = [f"-D{name}={value}" for name, value in script.defines.items()]
    return [
        str(embedded_postgres.binary("pgbench")), "-n", "-M", protocol, "-c", str(clients),
        "-j", str(min(clients, 2)), *length, "-f", script_path, *defines, libpq_url(database_url),
    ]


def _json_from_variables(
    name: str, elements: list[dict[str, Any]], variables: dict[str, str], defines: dict[str, str]
) -> str:
    """A SQL expression for the one-element JSON document `elements`, whose fields named in
    `variables` come from those pgbench variables (strings stay JSON strings, numbers numbers).
    The constant pieces become -D variables too: pgbench would read ":43" in a literal timestamp
    as a variable."""
    [element] = elements
    marked = {field: (f"@@{field}@@" if field in variables else value) for field, value in element.items()}
    pieces = []
    for i, piece in enumerate(re.split(r'"@@(\w+)@@"', json.dumps([marked]))):
        if i % 2 == 0:
            defines[f"{name}_{i // 2}"] = piece
            pieces.append(f":{name}_{i // 2}::text")
        elif isinstance(element[piece], str):
            pieces.append(f"to_json({variables[piece]}::text)::text")
        else:
            pieces.append(f"({variables[piece]})::text")
    return "(" + " || ".join(pieces) + ")"


def _as_text(value: Any) -> str:
    if isinstance(value, Jsonb):
        return json.dumps(value.obj)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)
