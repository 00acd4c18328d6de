"""SQLAlchemy engine for the schema's own tools: migrations, invariant checks, tests.

The request paths use psycopg directly (unit_of_work.py); docs/performance.md says why.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from billing.settings import NO_POOLER, TRANSACTION_POOLER


def create_engine(database_url: str, pool_size: int = 5, pooler: str = NO_POOLER) -> AsyncEngine:
    """pooler: BILLING_DB_POOLER, what database_url reaches (unit_of_work.connection_options says why a
    transaction-mode pooler means no prepared statements and no startup options)."""
    return create_async_engine(database_url, pool_size=pool_size, max_overflow=0, connect_args=_connect_args(pooler))


def _connect_args(pooler: str) -> dict[str, Any]:
    if pooler == NO_POOLER:
        return {"options": "-c timezone=UTC"}
    return {"prepare_threshold": None} if pooler == TRANSACTION_POOLER else {}
