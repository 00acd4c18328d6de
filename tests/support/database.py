"""Fresh, migrated databases for tests: on DATABASE_URL's server when set, else the embedded PostgreSQL."""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from pathlib import Path

import psycopg

from billing.adapters import embedded_postgres
from billing.adapters.db.migrate import upgrade_to_head
from billing.settings import configured_database_url, libpq_url

REPO_ROOT = Path(__file__).resolve().parents[2]


def _server_url() -> str:
    return configured_database_url() or embedded_postgres.start(REPO_ROOT / embedded_postgres.DEFAULT_DATA_DIR)


def _with_database(url: str, name: str) -> str:
    base, _, query = url.partition("?")
    return base.rsplit("/", 1)[0] + f"/{name}" + (f"?{query}" if query else "")


@contextmanager
def fresh_database(prefix: str = "billing_test"):
    """Yields the SQLAlchemy URL of a new database at the head migration; drops it afterwards."""
    server = _server_url()
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(libpq_url(server), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = _with_database(server, name)
    try:
        upgrade_to_head(url)
        yield url
    finally:
        with psycopg.connect(libpq_url(server), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
