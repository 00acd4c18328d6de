"""SQLAlchemy engine for the schema's own tools: migrations, invariant checks, tests.

The request paths use psycopg directly (unit_of_work.py); docs/performance.md says why.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def create_engine(database_url: str, pool_size: int = 5) -> AsyncEngine:
    return create_async_engine(
        database_url, pool_size=pool_size, max_overflow=0, connect_args={"options": "-c timezone=UTC"}
    )
