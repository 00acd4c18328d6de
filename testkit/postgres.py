"""A PostgreSQL of a test's own (embedded, password, recorded port), for tests that stop and restart
it mid-load, which the suite's shared one must not be (tests/e2e/conftest.py `own_postgres`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from devstack import embedded_postgres
from billing.adapters.db.migrate import upgrade_to_head
from billing.settings import libpq_url
from testkit.processes import VENV_BIN, free_port

SHARED_BUFFERS = "128MB"


@contextmanager
def own_database() -> Iterator[tuple[Path, str]]:
    """Starts a PostgreSQL on a free port with a migrated database `billing`; yields (data_dir, url)."""
    # Not under pytest's tmp_path: the server's account (when root) must traverse its parents,
    # and every pytest session (other checkouts' too) resets /tmp/pytest-of-<user> to mode 0700.
    folder = Path(tempfile.mkdtemp(prefix="billing-outage-"))
    data_dir = folder / "postgres"
    url = embedded_postgres.start(data_dir, port=free_port(), shared_buffers=SHARED_BUFFERS)
    try:
        with psycopg.connect(libpq_url(url), autocommit=True) as admin:
            admin.execute('CREATE DATABASE "billing"')
        database_url = url.rsplit("/", 1)[0] + "/billing"
        upgrade_to_head(database_url)
        yield data_dir, database_url
    finally:
        embedded_postgres.stop(data_dir)
        shutil.rmtree(folder, ignore_errors=True)


def postgres_ctl(action: str, data_dir: Path) -> str:
    """`devstack.embedded_postgres start|stop` in a process of its own: pg_ctl runs as
    another user when root, so this process would fork() (not vfork) while the clients' gRPC
    threads run, and gRPC's fork handlers can crash the child. It restarts on its recorded port
    (EMBEDDED_PG_PORT, the suite's PostgreSQL's, is not passed on)."""
    env = {name: value for name, value in os.environ.items() if name != "EMBEDDED_PG_PORT"}
    done = subprocess.run(
        [str(VENV_BIN / "python"), "-m", "devstack.embedded_postgres", action, "--data-dir", str(data_dir)],
        env=env | {"EMBEDDED_PG_SHARED_BUFFERS": SHARED_BUFFERS}, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip()
