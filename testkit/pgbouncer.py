"""A pgbouncer of a test's own, in transaction mode, in front of a PostgreSQL (Debian's package; `make test`
installs it). Its config and auth file live in a temporary folder; it listens on a free loopback port.

pgbouncer refuses to run as root: as root it runs as the embedded PostgreSQL's system account (`-u`),
which must read its folder. It forwards every database name to the PostgreSQL (`* = host= port=`),
so a URL through it differs from the direct one by its port (and its user: POOLED_ROLE).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg import sql

from devstack.embedded_postgres import SYSTEM_USER_WHEN_ROOT
from billing.adapters.db.unit_of_work import STATEMENT_TIMEOUT_MS
from billing.settings import libpq_url
from testkit.processes import free_port

START_TIMEOUT_SECONDS = 10.0
# Few server connections for many clients: each transaction of a client lands on whichever is free,
# as in production, and the tests see clients share them.
DEFAULT_POOL_SIZE = 4


def pgbouncer_binary() -> str | None:
    return shutil.which("pgbouncer") or next(
        (path for path in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if os.access(path, os.X_OK)), None)


def skip_unless_installed() -> None:
    """In a test: skipped without pgbouncer, unless BILLING_REQUIRE_PGBOUNCER=1 (`make test`, which installs
    it: a skip there would hide the pooled suites)."""
    if pgbouncer_binary() is not None:
        return
    if os.environ.get("BILLING_REQUIRE_PGBOUNCER") == "1":
        raise FileNotFoundError("pgbouncer is not installed (`apt-get install -y pgbouncer`; `make test` does)")
    import pytest

    pytest.skip("pgbouncer is not installed (`make test` installs it)")


# The role the service logs in as through the pooler: its defaults stand for the startup options pgbouncer
# refuses (docs/configuration.md, BILLING_DB_POOLER), as a deployment's role would have them. A role of its
# own, so the suite's other sessions (as `postgres`) keep theirs: no statement_timeout on the tests' tools.
POOLED_ROLE = "billing_pooled"


@dataclass(frozen=True)
class PgBouncer:
    port: int
    pid: int
    direct_url: str  # the database itself (SQLAlchemy URL, as given)

    @property
    def url(self) -> str:
        """direct_url's database through the pooler, as POOLED_ROLE (same password)."""
        return through(self.direct_url, self.port, user=POOLED_ROLE)


def through(database_url: str, port: int, user: str | None = None) -> str:
    """The same URL with another port (pgbouncer forwards database names as they are), and user."""
    parts = urlsplit(database_url)
    assert parts.hostname is not None
    password = f":{parts.password}" if parts.password else ""
    login = f"{user or parts.username}{password}@" if (user or parts.username) else ""
    return parts._replace(netloc=f"{login}{parts.hostname}:{port}").geturl()


def ensure_pooled_role(database_url: str) -> None:
    """POOLED_ROLE on database_url's server, with database_url's password and the service's session settings
    as its defaults (what `ALTER ROLE billing SET ...` does in a deployment). A superuser: tests only."""
    password = unquote(urlsplit(database_url).password or "")
    with psycopg.connect(libpq_url(database_url), autocommit=True) as admin:
        admin.execute(f"DO $$ BEGIN CREATE ROLE {POOLED_ROLE} LOGIN SUPERUSER; "
                      "EXCEPTION WHEN duplicate_object THEN NULL; END $$")
        admin.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(POOLED_ROLE), sql.Literal(password)))
        admin.execute(f"ALTER ROLE {POOLED_ROLE} SET statement_timeout = {STATEMENT_TIMEOUT_MS}")
        admin.execute(f"ALTER ROLE {POOLED_ROLE} SET timezone = 'UTC'")


@contextmanager
def running_pgbouncer(direct_url: str, pool_size: int = DEFAULT_POOL_SIZE,
                      max_client_conn: int = 1000) -> Iterator[PgBouncer]:
    """pgbouncer in transaction mode in front of direct_url's server, for its user and POOLED_ROLE (made here);
    stopped (SIGTERM) on exit."""
    binary = pgbouncer_binary()
    if binary is None:
        raise FileNotFoundError("pgbouncer is not installed (`apt-get install -y pgbouncer`; `make test` does)")
    parts = urlsplit(direct_url)
    user, password = unquote(parts.username or "postgres"), unquote(parts.password or "")
    port = free_port()
    # Not under pytest's tmp_path: its parents are mode 0700, which pgbouncer's account cannot traverse.
    folder = Path(tempfile.mkdtemp(prefix="billing-pgbouncer-"))
    config = folder / "pgbouncer.ini"
    users = folder / "userlist.txt"
    ensure_pooled_role(direct_url)
    users.write_text(f'"{user}" "{password}"\n"{POOLED_ROLE}" "{password}"\n')
    config.write_text(f"""[databases]
* = host={parts.hostname} port={parts.port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = {users}
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = {max_client_conn}
max_db_connections = 0
server_lifetime = 3600
log_connections = 0
log_disconnections = 0
""")
    command = [binary]
    if os.geteuid() == 0:
        account = pwd.getpwnam(SYSTEM_USER_WHEN_ROOT)
        for path in (folder, config, users):
            os.chown(path, account.pw_uid, account.pw_gid)
        command += ["-u", SYSTEM_USER_WHEN_ROOT]
    log = open(folder / "pgbouncer.log", "wb")
    process = subprocess.Popen(command + [str(config)], stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL)
    try:
        _wait_listening(process, port, folder / "pgbouncer.log")
        yield PgBouncer(port, process.pid, direct_url)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


def _wait_listening(process: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"pgbouncer exited ({process.returncode}): {log.read_text(errors='replace')}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"pgbouncer did not listen on {port}: {log.read_text(errors='replace')}")
