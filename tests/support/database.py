"""Fresh, migrated databases for tests: on DATABASE_URL's server when set, else the embedded PostgreSQL."""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from pathlib import Path

import psycopg

from devstack import embedded_postgres
from billing.adapters.db.migrate import upgrade_to_head
from billing.settings import configured_database_url, libpq_url

REPO_ROOT = Path(__file__).resolve().parents[2]
EMBEDDED_DATA_DIR = REPO_ROOT / embedded_postgres.DEFAULT_DATA_DIR
# What this test run did with the embedded PostgreSQL: None (not used), "started" or "found running".
embedded_postgres_use: str | None = None


def server_url() -> str:
    """DATABASE_URL's server, else the embedded PostgreSQL (started if it is not running)."""
    global embedded_postgres_use
    configured = configured_database_url()
    if configured:
        return configured
    if embedded_postgres_use is None:
        embedded_postgres_use = "found running" if embedded_postgres.is_running(EMBEDDED_DATA_DIR) else "started"
    return embedded_postgres.start(EMBEDDED_DATA_DIR)


def stop_embedded_postgres_if_started() -> str | None:
    """At the end of a test run: stops the embedded PostgreSQL if the run started it (one that was
    already running, say for `make run`, is left alone); returns a line saying what happened."""
    if embedded_postgres_use == "started":
        embedded_postgres.stop(EMBEDDED_DATA_DIR)
        return f"embedded PostgreSQL ({EMBEDDED_DATA_DIR}): started by this run, stopped"
    if embedded_postgres_use == "found running":
        return f"embedded PostgreSQL ({EMBEDDED_DATA_DIR}): was running before this run, left running"
    return None


def _with_database(url: str, name: str) -> str:
    base, _, query = url.partition("?")
    return base.rsplit("/", 1)[0] + f"/{name}" + (f"?{query}" if query else "")


@contextmanager
def empty_database(prefix: str = "billing_test"):
    """Yields the SQLAlchemy URL of a new database without any table; drops it afterwards."""
    server = server_url()
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(libpq_url(server), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(server, name)
    finally:
        with psycopg.connect(libpq_url(server), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def fresh_database(prefix: str = "billing_test"):
    """Yields the SQLAlchemy URL of a new database at the head migration; drops it afterwards."""
    with empty_database(prefix) as url:
        upgrade_to_head(url)
        yield url
