"""Group commit: the wallet reads and writes of concurrent requests share one statement.

While one batch is at the database, the requests that arrive queue up and go together in
the next (coalescer.py): no timer, so a lone request waits for nothing, and under load each
statement (with its round trip, its parse/plan/execute overhead and its commit and WAL flush)
serves many requests. A batch of reads and writes is one READ_AND_SAVE_WALLETS statement: one round
trip where separate read and write statements took two, so under load a Consume costs well
under one statement. A batch holds at most one write per account (another change to the
same account waits for the next batch, where its version check decides).

A batch's wallets are independent: one whose version check fails, or whose account is
locked by another transaction at that moment (SKIP LOCKED: a batch never waits for one
busy account), is reported as not saved and the others are written. If the statement fails
as a whole on one wallet's data (its self-check, a constraint), the reads run again on
their own and each wallet is retried alone, so that failure belongs only to the wallet that
caused it; an operational failure (timeout, lost connection) is the whole batch's.

The batcher keeps one connection of the pool, in autocommit; a broken connection goes back
to the pool (which replaces it) and the batch's requests get the error.

On a sharded database a statement naming accounts of several shards is a multi-shard statement
(docs/scaling.md): `shard_of` (an account id -> its shard) makes each batch one shard's.
"""

from __future__ import annotations

import asyncio
import zlib
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Hashable, Iterator

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import AsyncConnectionPool

from billing.adapters.db.availability import ALWAYS_AVAILABLE, Availability
from billing.adapters.db.coalescer import BATCH_SIZE_MAX, Coalescer
from billing.adapters.db.wallet_queries import (
    WalletRead, read_and_save_wallets, read_wallets, require_version_advance, save_wallets,
)
from billing.service.ports import Unavailable

# After a dead connection, how long a batch waits for the pool to replace its dead idle
# connections before running again: short, as the batch's requests must answer within ~2 s
# when the database is down rather than restarting.
POOL_CHECK_WAIT_SECONDS = 0.5

# A lone wallet's write failed on these: another writer got there first (or its self-check
# found the stored wallet not as read); the wallet-change path retries them like a version conflict.
CONFLICT_FAILURES = (
    pg_errors.RaiseException, pg_errors.UniqueViolation, pg_errors.DeadlockDetected, pg_errors.SerializationFailure,
)


@dataclass(frozen=True)
class _Save:
    document: dict[str, Any]


def _account_of_save(item: WalletRead | _Save) -> str | None:
    return item.document["account_id"] if isinstance(item, _Save) else None


def _account_of(item: WalletRead | _Save) -> str:
    return item.document["account_id"] if isinstance(item, _Save) else item.account_id


def account_hash_bucket(buckets: int) -> Callable[[str], int]:
    """A stand-in for a shard map: a stable hash of the account id into `buckets`. Not Citus's
    placement (Citus hashes with PostgreSQL's hash function into shard ranges): a Citus deployment
    passes its own shard lookup (get_shard_id_for_distribution_column, cached per account)."""
    return lambda account_id: zlib.crc32(account_id.encode()) % buckets


class WalletBatcher:
    """Coalesces the wallet reads and writes of concurrent unlocked units of work: each batch
    is one statement on one connection (reads only, writes only, or both)."""

    def __init__(
        self, pool: AsyncConnectionPool, max_batch: int = BATCH_SIZE_MAX, observe_batch: Callable[[int], None] | None = None,
        availability: Availability = ALWAYS_AVAILABLE, shard_of: Callable[[str], Hashable] | None = None,
    ):
        self._pool = pool
        self._observe_batch = observe_batch  # each batch's size, once per batch (adapters/metrics.py)
        self._availability = availability
        self._connection: psycopg.AsyncConnection | None = None
        self._pool_check: asyncio.Future | None = None
        # One batch at a time: measured, a second statement in flight halved the batches and
        # cost more CPU per request than its overlap won (docs/performance.md).
        group_by = None if shard_of is None else (lambda item: shard_of(_account_of(item)))
        self.batches = Coalescer(self._run_batch, max_batch, distinct_by=_account_of_save, group_by=group_by)
        self.reads = 0  # wallets read and written, for tests and the benchmark (batches.batches: statements)
        self.writes = 0

    async def read(self, read: WalletRead):
        return await self.batches.submit(read)

    async def save(self, document: dict[str, Any]) -> bool:
        """True when written; False when the account changed since the wallet was read."""
        require_version_advance(document)
        return await self.batches.submit(_Save(document))

    async def close(self) -> None:
        """Waits for the batches in flight, then gives the connection back to the pool."""
        await self.batches.stop()
        if self._pool_check is not None and not self._pool_check.done():
            self._pool_check.cancel()  # the pool is about to close
        connection, self._connection = self._connection, None
        if connection is not None:
            await self._pool.putconn(connection)  # the pool's reset takes it out of autocommit

    async def _run_batch(self, items: list[WalletRead | _Save]) -> list:
        reads = [item for item in items if isinstance(item, WalletRead)]
        documents = [item.document for item in items if isinstance(item, _Save)]
        self.reads += len(reads)
        self.writes += len(documents)
        if self._observe_batch is not None:
            self._observe_batch(len(items))

        async def run(connection: psycopg.AsyncConnection) -> list:
            if not documents:
                loaded, saved = await read_wallets(connection, reads), []
            elif not reads:
                loaded, saved = [], await _write(connection, documents)
            else:
                loaded, saved = await _read_and_write(connection, reads, documents)
            return _in_submission_order(items, iter(loaded), iter(saved))

        return await self._with_connection(run)

    async def _with_connection(self, work: Callable[[psycopg.AsyncConnection], Awaitable[Any]]) -> Any:
        for attempt in (1, 2):
            if not self._availability.available:
                # Queued behind a batch that met the outage: fail now, not after another wait.
                raise Unavailable("the database is unreachable", kind="database")
            connection = self._connection
            if connection is None:
                connection = self._connection = await self._pool.getconn()
                await connection.set_autocommit(True)
            try:
                return await work(connection)
            except psycopg.OperationalError:
                if attempt == 2 or _usable(connection):
                    raise  # a timeout, say: the statement's own failure
                # The connection died under the batch (a database restart or failover). Its
                # statement either never ran or ran whole, so it runs again on a new connection:
                # a write that did commit now fails its version check, and its request then
                # finds and replays its stored answer (answered as a replay, never charged twice).
            finally:
                if not _usable(connection) and self._connection is connection:
                    self._connection = None
                    await self._pool.putconn(connection)  # the pool discards a broken connection
            await self._heal_pool()

    async def _heal_pool(self) -> None:
        """After a restart every idle connection of the pool is dead too: the pool replaces them
        (one check at a time), and the batch waits a bounded time for it, since a check of a
        connection to an unreachable host can take as long as the TCP timeouts allow."""
        if self._pool_check is None or self._pool_check.done():
            self._pool_check = asyncio.ensure_future(self._pool.check())
        await asyncio.wait({self._pool_check}, timeout=POOL_CHECK_WAIT_SECONDS)


def _in_submission_order(items: list, loaded: Iterator, saved: Iterator) -> list:
    return [next(loaded) if isinstance(item, WalletRead) else next(saved) for item in items]


async def _read_and_write(
    connection: psycopg.AsyncConnection, reads: list[WalletRead], documents: list[dict[str, Any]]
) -> tuple[list, list[bool | BaseException]]:
    try:
        loaded, saved = await read_and_save_wallets(connection, reads, documents)
    except psycopg.DatabaseError as failure:
        if _whole_batch_failure(failure, connection):
            raise
        # A wallet's data failed the statement, which rolled back as a whole: the reads again
        # on their own, and each wallet alone, so the failure is answered to its wallet only.
        return await read_wallets(connection, reads), [await _save_alone(connection, d) for d in documents]
    return loaded, [document["account_id"] in saved for document in documents]


async def _write(connection: psycopg.AsyncConnection, documents: list[dict[str, Any]]) -> list[bool | BaseException]:
    try:
        saved = await save_wallets(connection, documents, all_or_nothing=False)
    except psycopg.DatabaseError as failure:
        if len(documents) == 1 or _whole_batch_failure(failure, connection):
            raise
        # Whose failure is it? Each wallet alone; the statement rolled back as a whole.
        return [await _save_alone(connection, document) for document in documents]
    return [document["account_id"] in saved for document in documents]


def _whole_batch_failure(failure: psycopg.DatabaseError, connection: psycopg.AsyncConnection) -> bool:
    """An operational failure (timeout, lost connection) is the batch's own, not one wallet's."""
    return isinstance(failure, psycopg.OperationalError) or not _usable(connection)


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
