"""Records every statement the service sends through a psycopg pool, with the transaction it ran in.

As bench/pgbench_script.py captures Consume's SQL: the storage (and the batcher) are given a pool
whose connections record (sql, params) before executing. A transaction is what PostgreSQL commits
as one: each statement of an autocommit connection (the batcher's, an unlocked or reading unit of
work), or the statements of a transaction-mode connection up to its commit or rollback.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any, Iterable

from psycopg.types.json import Jsonb

_TABLE_AFTER = re.compile(r"\b(?:FROM|JOIN|INTO|UPDATE)\s+([a-z_]+)", re.IGNORECASE)


@dataclass(frozen=True)
class SentStatement:
    sql: str
    params: Any
    transaction: int
    source: str  # the pool's label: "storage" or "batcher"

    def tables(self, known: Iterable[str]) -> set[str]:
        return set(_TABLE_AFTER.findall(self.sql)) & set(known)

    def values(self) -> list[Any]:
        """Every scalar bound to the statement, JSON documents opened."""
        return list(_scalars(self.params))


def _scalars(value: Any):
    if isinstance(value, Jsonb):
        yield from _scalars(value.obj)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _scalars(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _scalars(item)
    else:
        yield value


class StatementRecorder:
    def __init__(self) -> None:
        self.statements: list[SentStatement] = []
        self._transactions = itertools.count(1)

    def pool(self, pool, source: str) -> RecordingPool:
        return RecordingPool(pool, self, source)

    def new_transaction(self) -> int:
        return next(self._transactions)


class RecordingConnection:
    def __init__(self, connection, recorder: StatementRecorder, source: str):
        self._connection = connection
        self._recorder = recorder
        self._source = source
        self._transaction: int | None = None

    async def execute(self, sql, params=None):
        if self._connection.autocommit:
            transaction = self._recorder.new_transaction()
        else:
            if self._transaction is None:
                self._transaction = self._recorder.new_transaction()
            transaction = self._transaction
        self._recorder.statements.append(SentStatement(str(sql), params, transaction, self._source))
        return await self._connection.execute(sql, params)

    async def commit(self):
        self._transaction = None
        return await self._connection.commit()

    async def rollback(self):
        self._transaction = None
        return await self._connection.rollback()

    def __getattr__(self, name):
        return getattr(self._connection, name)


class RecordingPool:
    def __init__(self, pool, recorder: StatementRecorder, source: str):
        self._pool = pool
        self._recorder = recorder
        self._source = source

    async def getconn(self, *args, **kwargs):
        return RecordingConnection(await self._pool.getconn(*args, **kwargs), self._recorder, self._source)

    async def putconn(self, connection: RecordingConnection):
        await self._pool.putconn(connection._connection)

    def __getattr__(self, name):
        return getattr(self._pool, name)
