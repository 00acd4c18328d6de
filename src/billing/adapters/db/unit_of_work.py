"""One transaction per use case: rolled back unless the use case commits.

Connections come from a psycopg pool. Three modes:
- locking (default): BEGIN; the use case locks the account row; its writes and COMMIT.
- optimistic: autocommit; one wallet read, then at most one wallet write, which checks
  the account version it was planned against and is atomic on its own. A conflict raises
  ConcurrentModification and the use case retries. Two round trips.
- read_only: autocommit; each statement reads its own snapshot.
With a WalletBatcher (group commit), optimistic units of work, and read-only ones that
declare `wallets_only`, hold no connection: their read and write join those of concurrent
units of work in one statement each.
"""

from __future__ import annotations

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import AsyncConnectionPool

from billing.adapters.db.history_repository import HistoryRepository
from billing.adapters.db.resume_token_repository import ResumeTokenRepository
from billing.adapters.db.wallet_batcher import CONFLICT_FAILURES, WalletBatcher
from billing.adapters.db.wallet_repository import (
    WalletRead, WalletRepository, require_version_advance, save_wallets, wallet_document,
)
from billing.domain.errors import ConcurrentModification
from billing.settings import libpq_url

POOL_SIZE = 16
POOL_TIMEOUT_SECONDS = 10
STATEMENT_TIMEOUT_MS = 5000
# statement_timeout runs on the server: a database host that vanished (a failover without a
# reset) would leave a request waiting on its socket for the kernel's TCP timeouts (~15
# minutes). libpq's keepalives and TCP_USER_TIMEOUT bound that to ~15 s; ignored on Unix sockets.
DEAD_PEER_DETECTION = {
    "connect_timeout": 5, "keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
    "keepalives_count": 2, "tcp_user_timeout": 15_000,
}


async def open_pool(database_url: str, size: int = POOL_SIZE) -> AsyncConnectionPool:
    """A fixed-size pool: connections opened per burst cost more than waiting for one."""
    pool = AsyncConnectionPool(
        conninfo=libpq_url(database_url),
        min_size=size,
        max_size=size,
        timeout=POOL_TIMEOUT_SECONDS,
        kwargs={"options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS} -c timezone=UTC", **DEAD_PEER_DETECTION},
        reset=_reset_to_transactions,
        open=False,
    )
    await pool.open(wait=True)
    return pool


async def _reset_to_transactions(connection: psycopg.AsyncConnection) -> None:
    """Every connection goes back to the pool in transaction mode, whoever used it."""
    await connection.set_autocommit(False)


class UnitOfWork:
    def __init__(self, pool: AsyncConnectionPool, read_only: bool = False, optimistic: bool = False):
        self._pool = pool
        self._read_only = read_only
        self._autocommit = read_only or optimistic
        self._connection: psycopg.AsyncConnection | None = None
        self._committed = False

    async def __aenter__(self) -> "UnitOfWork":
        self._connection = connection = await self._pool.getconn()
        # Set either way: a pooled connection must not carry its previous user's mode
        # (a locking unit of work in autocommit would hold no lock and roll nothing back).
        await connection.set_autocommit(self._autocommit)
        self.wallets = WalletRepository(connection)
        self.resume_tokens = ResumeTokenRepository(connection)
        self.history = HistoryRepository(connection)
        return self

    async def commit(self) -> None:
        """Sends the queued wallet writes, then COMMIT (implicit in optimistic mode)."""
        assert self._connection is not None and not self._read_only
        documents = self.wallets.pending_wallets
        if self._autocommit:
            for document in documents:
                require_version_advance(document)
        try:
            if documents:
                await save_wallets(self._connection, documents, all_or_nothing=True)
        except (pg_errors.RaiseException, pg_errors.UniqueViolation) as conflict:
            if not self._autocommit:
                raise
            # The version check failed, or another writer took the same sequence numbers.
            raise ConcurrentModification(str(conflict)) from conflict
        documents.clear()
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


class _BatchedWallets:
    """The wallet repository of a BatchedUnitOfWork: one read, at most one write."""

    def __init__(self, batcher: WalletBatcher):
        self._batcher = batcher
        self.pending_wallets: list[dict] = []

    async def read(self, account_id: str, now, idempotency_key: str | None = None):
        return await self._batcher.read(WalletRead(account_id, now, idempotency_key))

    def save(self, wallet, now, answer=None) -> None:
        document = wallet_document(wallet, now, answer)
        if document is not None:
            self.pending_wallets.append(document)


class BatchedUnitOfWork:
    """An optimistic or read-only unit of work that touches only wallets, through the batcher."""

    def __init__(self, batcher: WalletBatcher, read_only: bool):
        self._read_only = read_only
        self._batcher = batcher
        self.wallets = _BatchedWallets(batcher)

    async def __aenter__(self) -> "BatchedUnitOfWork":
        return self

    @property
    def resume_tokens(self):
        raise TypeError("an optimistic or wallets_only unit of work touches nothing but wallets")

    history = resume_tokens

    async def commit(self) -> None:
        assert not self._read_only
        documents = self.wallets.pending_wallets
        assert len(documents) <= 1, "optimistic unit of work wrote twice"
        if not documents:
            return
        try:
            saved = await self._batcher.save(documents[0])
        except CONFLICT_FAILURES as conflict:
            # The wallet's own write failed its self-check or collided: retried like a conflict;
            # the use case's locked attempt reports it if it persists.
            raise ConcurrentModification(str(conflict)) from conflict
        if not saved:
            raise ConcurrentModification(f"account {documents[0]['account_id']} changed since it was read")
        documents.clear()

    async def __aexit__(self, exc_type, exc, traceback) -> None:
        return None


class UnitOfWorkFactory:
    def __init__(self, pool: AsyncConnectionPool, batcher: WalletBatcher | None = None):
        self.pool = pool
        self.batcher = batcher

    def __call__(
        self, read_only: bool = False, optimistic: bool = False, wallets_only: bool = False
    ) -> UnitOfWork | BatchedUnitOfWork:
        """Optimistic units of work touch only wallets; read-only ones say so with wallets_only."""
        if self.batcher is not None and (optimistic or (read_only and wallets_only)):
            return BatchedUnitOfWork(self.batcher, read_only=read_only)
        return UnitOfWork(self.pool, read_only=read_only, optimistic=optimistic)
