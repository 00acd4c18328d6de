from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from billing.adapters.db.tables import metadata
from billing.settings import value

url = context.config.attributes.get("database_url") or value("DATABASE_URL")


def run_migrations() -> None:
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata, transaction_per_migration=True)
        with context.begin_transaction():
            # Replicas may all start with BILLING_MIGRATE_ON_START=1: one migrates, the rest wait.
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(727274)")
            context.run_migrations()
    engine.dispose()


run_migrations()
