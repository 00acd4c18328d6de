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
from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb

from billing.adapters.catalog_file import load_catalog
from billing.adapters.clock import SystemClock
from billing.adapters.db.unit_of_work import UnitOfWorkFactory, open_pool
from billing.service.consume import consume
from billing.service.dependencies import Dependencies

READ_PREFIX = "read_"
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
    pool = await open_pool(database_url, size=1)
    statements: list[tuple[str, dict[str, Any]]] = []
    try:
        catalog, _ = load_catalog()
        deps = Dependencies(
            unit_of_work=UnitOfWorkFactory(_RecordingPool(pool, statements)), catalog=catalog, clock=SystemClock()
        )
        await consume(deps, account_id, "build", 1, f"pgbench-capture-{uuid.uuid4().hex}")
    finally:
        await pool.close()
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
    """
    assert len(statements) == 2, f"expected read and save; the service sent {len(statements)} statements"
    (read_sql, read_params), (save_sql, save_params) = statements
    entries = len(save_params["changes"].obj["entries"])
    assert save_params["changes"].obj["new_buckets"] == [], "capture hit a daily-bonus grant; rerun"
    dynamic = {
        "account_id": ":account_id",
        "idempotency_key": ":idempotency_key",
        "first_event_seq": ":first_event_seq",
        "last_event_seq": ":last_event_seq",
        "expected_last_event_seq": f":{READ_PREFIX}last_event_seq",
        "last_bucket_seq": f":{READ_PREFIX}last_bucket_seq",
    }
    defines: dict[str, str] = {}

    def render(sql: str, params: dict[str, Any]) -> str:
        def substitute(match: re.Match) -> str:
            name = match.group(1)
            if name in dynamic:
                return dynamic[name]
            value = params[name]
            if value is None:
                return "NULL"
            defines[name] = _as_text(value)
            return f":{name}"

        return _PLACEHOLDER.sub(substitute, sql).strip()

    lines = [
        f"\\set account_id {account_offset + 1} + :client_id + {clients} * random(0, {accounts // clients - 1})",
        "\\set idempotency_key random(1, 9000000000000000000)",
        # \aset keeps the last row: every row of the read carries the account's columns.
        render(read_sql, read_params) + f"\n\\aset {READ_PREFIX}",
        f"\\set first_event_seq :{READ_PREFIX}last_event_seq + 1",
        f"\\set last_event_seq :{READ_PREFIX}last_event_seq + {entries}",
        render(save_sql, save_params) + ";",
    ]
    return PgbenchScript(text="\n".join(lines) + "\n", defines=defines)


def _as_text(value: Any) -> str:
    if isinstance(value, Jsonb):
        return json.dumps(value.obj)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)
