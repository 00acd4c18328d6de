"""Group commit: concurrent wallet reads share one statement, and so do concurrent writes.

While one batch is at the database, the requests that arrive queue up and go together in
the next: no timer, so a lone request waits for nothing, and under load each statement (with
its round trip, its parse/plan/execute overhead and, for writes, its commit and WAL flush)
serves many requests. A write batch holds at most one wallet per account (another change
to the same account waits for the next batch, where its version check decides).

A write batch's wallets are independent: one whose version check fails, or whose account
is locked by another transaction at that moment (SKIP LOCKED: a batch never waits for one
busy account), is reported as not saved and the others are written. If the statement fails
as a whole on one wallet's data (its self-check, a constraint), each wallet is retried
alone, so that failure belongs only to the wallet that caused it; an operational failure
(timeout, lost connection) is the whole batch's.

Each kind keeps one connection of the pool, in autocommit; a broken connection goes back to
the pool (which replaces it) and the batch's requests get the error.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any, Awaitable, Callable, Generic, Hashable, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import AsyncConnectionPool

from billing.adapters.db.wallet_repository import WalletRead, read_wallets, save_wallets

MAX_BATCH = 64

Item = TypeVar("Item")
Result = TypeVar("Result")

# A lone wallet's write failed on these: another writer got there first (or its self-check
# found the stored wallet not as read); the use case retries them like a version conflict.
CONFLICT_FAILURES = (
    pg_errors.RaiseException, pg_errors.UniqueViolation, pg_errors.DeadlockDetected, pg_errors.SerializationFailure,
)


class Coalescer(Generic[Item, Result]):
    """Runs submitted items in batches, one batch at a time; `run` returns one result (or
    exception) per item. With `distinct_by`, a batch holds at most one item per key."""

    def __init__(
        self,
        run: Callable[[list[Item]], Awaitable[list[Result | BaseException]]],
        max_batch: int = MAX_BATCH,
        distinct_by: Callable[[Item], Hashable] | None = None,
    ):
        self._run = run
        self._max_batch = max_batch
        self._distinct_by = distinct_by
        self._pending: collections.deque[tuple[Item, asyncio.Future]] = collections.deque()
        self._drainer: asyncio.Task | None = None
        self.closed = False
        self.batches = 0  # statements sent, for tests and the benchmark
        self.items = 0

    async def submit(self, item: Item) -> Result:
        if self.closed:
            raise BatcherStopped("the wallet batcher is closed")
        future = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._drainer is None:
            self._drainer = asyncio.get_running_loop().create_task(self._drain())
        return await future

    def _take_batch(self) -> list[tuple[Item, asyncio.Future]]:
        if self._distinct_by is None:
            count = min(len(self._pending), self._max_batch)
            return [self._pending.popleft() for _ in range(count)]
        batch, keys, deferred = [], set(), collections.deque()
        while self._pending and len(batch) < self._max_batch:
            entry = self._pending.popleft()
            key = self._distinct_by(entry[0])
            if key in keys:
                deferred.append(entry)
            else:
                keys.add(key)
                batch.append(entry)
        self._pending.extendleft(reversed(deferred))
        return batch

    async def _drain(self) -> None:
        batch: list[tuple[Item, asyncio.Future]] = []
        try:
            while self._pending:
                batch = [entry for entry in self._take_batch() if not entry[1].done()]  # done: caller gave up
                if not batch:
                    continue
                self.batches += 1
                self.items += len(batch)
                try:
                    results = await self._run([item for item, _ in batch])
                except Exception as error:  # the whole batch shares it (a lost connection, say)
                    results = [error] * len(batch)
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():
                        continue
                    if isinstance(result, BaseException):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
                batch = []
        finally:
            # Reached with work left only when the drainer itself was cancelled or broke:
            # no caller may wait forever for an answer that will not come.
            self._drainer = None
            stranded = batch + list(self._pending)
            self._pending.clear()
            for _, future in stranded:
                if not future.done():
                    future.set_exception(BatcherStopped("the wallet batcher stopped before this request ran"))

    async def stop(self) -> None:
        """Waits until what is queued has run; later submits fail with BatcherStopped."""
        self.closed = True
        if self._drainer is not None:
            await asyncio.wait([self._drainer])


class BatcherStopped(RuntimeError):
    pass


class WalletBatcher:
    """Coalesces the wallet reads and writes of concurrent optimistic units of work."""

    def __init__(self, pool: AsyncConnectionPool, max_batch: int = MAX_BATCH):
        self._pool = pool
        self._connections: dict[str, psycopg.AsyncConnection] = {}
        self.reads = Coalescer(self._read_batch, max_batch)
        self.writes = Coalescer(self._write_batch, max_batch, distinct_by=lambda document: document["account_id"])

    async def read(self, read: WalletRead):
        return await self.reads.submit(read)

    async def save(self, document: dict[str, Any]) -> bool:
        """True when written; False when the account changed since the wallet was read."""
        return await self.writes.submit(document)

    async def close(self) -> None:
        """Waits for the batches in flight, then gives the connections back to the pool."""
        await self.reads.stop()
        await self.writes.stop()
        connections, self._connections = self._connections, {}
        for connection in connections.values():
            await self._pool.putconn(connection)  # the pool's reset takes it out of autocommit

    async def _read_batch(self, reads: list[WalletRead]) -> list:
        return await self._with_connection("reads", lambda connection: read_wallets(connection, reads))

    async def _write_batch(self, documents: list[dict[str, Any]]) -> list[bool | BaseException]:
        async def write(connection: psycopg.AsyncConnection) -> list[bool | BaseException]:
            try:
                saved = await save_wallets(connection, documents, all_or_nothing=False)
            except psycopg.DatabaseError as failure:
                # An operational failure (timeout, lost connection, deadlock) is the batch's own.
                if len(documents) == 1 or isinstance(failure, psycopg.OperationalError) or not _usable(connection):
                    raise
                # Whose failure is it? Each wallet alone; the statement rolled back as a whole.
                return [await _save_alone(connection, document) for document in documents]
            return [document["account_id"] in saved for document in documents]

        return await self._with_connection("writes", write)

    async def _with_connection(self, kind: str, work: Callable[[psycopg.AsyncConnection], Awaitable[Any]]) -> Any:
        connection = self._connections.get(kind)
        if connection is None:
            connection = await self._pool.getconn()
            await connection.set_autocommit(True)
            self._connections[kind] = connection
        try:
            return await work(connection)
        finally:
            if not _usable(connection) and self._connections.get(kind) is connection:
                del self._connections[kind]
                await self._pool.putconn(connection)  # the pool discards a broken connection


def _usable(connection: psycopg.AsyncConnection) -> bool:
    return not connection.broken and not connection.closed


async def _save_alone(connection: psycopg.AsyncConnection, document: dict[str, Any]) -> bool | BaseException:
    """This wallet's own outcome: saved, not saved (its version check failed), or its error."""
    if not _usable(connection):
        return psycopg.OperationalError("the connection broke while retrying a failed batch")
    try:
        return document["account_id"] in await save_wallets(connection, [document], all_or_nothing=False)
    except psycopg.Error as failure:
        return failure
