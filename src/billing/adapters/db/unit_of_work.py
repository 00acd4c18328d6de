"""One transaction per use case: rolled back unless the use case commits.

Connections come from a psycopg pool. Three modes:
- locking (default): BEGIN; the use case locks the account row; its writes and COMMIT.
- optimistic: autocommit; one read statement, then at most one write statement, which
  checks the account version it was planned against and is atomic on its own. A
  conflict raises ConcurrentModification and the use case retries. Two round trips.
- read_only: autocommit; each statement reads its own snapshot.
"""

from __future__ import annotations

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import AsyncConnectionPool

from billing.adapters.db.history_repository import HistoryRepository
from billing.adapters.db.resume_token_repository import ResumeTokenRepository
from billing.adapters.db.wallet_repository import WalletRepository
from billing.domain.errors import ConcurrentModification
from billing.settings import libpq_url

POOL_SIZE = 16
POOL_TIMEOUT_SECONDS = 10
STATEMENT_TIMEOUT_MS = 5000


async def open_pool(database_url: str, size: int = POOL_SIZE) -> AsyncConnectionPool:
    """A fixed-size pool: connections opened per burst cost more than waiting for one."""
    pool = AsyncConnectionPool(
        conninfo=libpq_url(database_url),
        min_size=size,
        max_size=size,
        timeout=POOL_TIMEOUT_SECONDS,
        kwargs={"options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS} -c timezone=UTC"},
        open=False,
    )
    await pool.open(wait=True)
    return pool


class UnitOfWork:
    def __init__(self, pool: AsyncConnectionPool, read_only: bool = False, optimistic: bool = False):
        self._pool = pool
        self._read_only = read_only
        self._autocommit = read_only or optimistic
        self._connection: psycopg.AsyncConnection | None = None
        self._committed = False

    async def __aenter__(self) -> "UnitOfWork":
        self._connection = connection = await self._pool.getconn()
        if self._autocommit:
            await connection.set_autocommit(True)
        self.wallets = WalletRepository(connection)
        self.resume_tokens = ResumeTokenRepository(connection)
        self.history = HistoryRepository(connection)
        return self

    async def commit(self) -> None:
        """Sends the queued wallet writes, then COMMIT (implicit in optimistic mode)."""
        assert self._connection is not None and not self._read_only
        writes = self.wallets.pending_writes
        # In autocommit only a single statement is atomic.
        assert not self._autocommit or len(writes) <= 1, "optimistic unit of work wrote twice"
        try:
            for sql, params in writes:
                await self._connection.execute(sql, params)
        except (pg_errors.RaiseException, pg_errors.UniqueViolation) as conflict:
            if not self._autocommit:
                raise
            # The version check failed, or another writer took the same sequence numbers.
            raise ConcurrentModification(str(conflict)) from conflict
        writes.clear()
        if not self._autocommit:
            await self._connection.commit()
        self._committed = True

    async def __aexit__(self, exc_type, exc, traceback) -> None:
        connection, self._connection = self._connection, None
        assert connection is not None
        try:
            if connection.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                await connection.rollback()
            if self._autocommit:
                await connection.set_autocommit(False)
        finally:
            await self._pool.putconn(connection)


class UnitOfWorkFactory:
    def __init__(self, pool: AsyncConnectionPool):
        self.pool = pool

    def __call__(self, read_only: bool = False, optimistic: bool = False) -> UnitOfWork:
        return UnitOfWork(self.pool, read_only=read_only, optimistic=optimistic)
