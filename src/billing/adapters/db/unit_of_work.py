"""One transaction per use case: rolled back unless the use case commits."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from billing.adapters.db.history_repository import HistoryRepository
from billing.adapters.db.idempotency_repository import IdempotencyRepository
from billing.adapters.db.resume_token_repository import ResumeTokenRepository
from billing.adapters.db.wallet_repository import WalletRepository

POOL_SIZE = 20
POOL_OVERFLOW = 10
POOL_TIMEOUT_SECONDS = 10
STATEMENT_TIMEOUT_MS = 5000


def create_engine(database_url: str) -> AsyncEngine:
    return create_async_engine(
        database_url,
        pool_size=POOL_SIZE,
        max_overflow=POOL_OVERFLOW,
        pool_timeout=POOL_TIMEOUT_SECONDS,
        pool_pre_ping=False,
        isolation_level="READ COMMITTED",
        connect_args={"options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS} -c timezone=UTC"},
    )


class UnitOfWork:
    def __init__(self, engine: AsyncEngine):
        self._engine = engine
        self._connection: AsyncConnection | None = None
        self._committed = False

    async def __aenter__(self) -> "UnitOfWork":
        self._connection = await self._engine.connect()
        await self._connection.begin()
        self.wallets = WalletRepository(self._connection)
        self.idempotency = IdempotencyRepository(self._connection)
        self.resume_tokens = ResumeTokenRepository(self._connection)
        self.history = HistoryRepository(self._connection)
        return self

    async def commit(self) -> None:
        assert self._connection is not None
        await self._connection.commit()
        self._committed = True

    async def __aexit__(self, exc_type, exc, traceback) -> None:
        assert self._connection is not None
        try:
            if not self._committed:
                await self._connection.rollback()
        finally:
            await self._connection.close()
            self._connection = None


class UnitOfWorkFactory:
    def __init__(self, engine: AsyncEngine):
        self.engine = engine

    def __call__(self) -> UnitOfWork:
        return UnitOfWork(self.engine)
