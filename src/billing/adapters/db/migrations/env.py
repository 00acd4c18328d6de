from __future__ import annotations

import time

from alembic import context
from sqlalchemy import Connection, create_engine, pool

from billing.adapters.db.tables import metadata
from billing.settings import value

# A session advisory lock (below): on the PostgreSQL itself, never through a transaction-mode pooler.
url = context.config.attributes.get("database_url") or value("DATABASE_DIRECT_URL") or value("DATABASE_URL")
MIGRATION_LOCK_KEY = 727274
MIGRATION_LOCK_POLL_SECONDS = 0.2


def _take_migration_lock(connection: Connection) -> None:
    """A session lock, held until the connection closes: each migration commits on its own
    (transaction_per_migration; an autocommit block for CREATE INDEX CONCURRENTLY), which would end
    a transaction's lock after the first. Polled rather than waited for: a backend blocked in
    pg_advisory_lock holds a snapshot, and CREATE INDEX CONCURRENTLY in the migrating process waits
    for every older snapshot, so the two would deadlock; between polls the waiter holds none."""
    while not connection.exec_driver_sql(f"SELECT pg_try_advisory_lock({MIGRATION_LOCK_KEY})").scalar():
        connection.rollback()
        time.sleep(MIGRATION_LOCK_POLL_SECONDS)


def run_migrations() -> None:
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata, transaction_per_migration=True)
        with context.begin_transaction():
            # Replicas may all start with BILLING_MIGRATE_ON_START=1: one migrates, the rest wait.
            _take_migration_lock(connection)
            context.run_migrations()
    engine.dispose()


run_migrations()
