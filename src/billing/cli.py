"""`billing <command>` (the console script of this package): the steps behind `make run`, `make migrate`, `make db-stop`."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from billing.adapters import embedded_postgres
from billing.adapters.key_secrets import MasterKey
from billing.settings import REPO_ROOT, Settings, configured_database_url, libpq_url

DEV_DATABASE = "billing"


def database_url() -> str:
    """DATABASE_URL when set; else the embedded PostgreSQL (started if needed) and its `billing` database."""
    configured = configured_database_url()
    if configured:
        return configured
    server_url = embedded_postgres.start(REPO_ROOT / embedded_postgres.DEFAULT_DATA_DIR)
    ensure_database(server_url, DEV_DATABASE)
    return server_url.rsplit("/", 1)[0] + f"/{DEV_DATABASE}"


def ensure_database(server_url: str, name: str) -> None:
    with psycopg.connect(libpq_url(server_url), autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{name}"')


def migrate(url: str) -> str:
    from billing.adapters.db.migrate import upgrade_to_head

    upgrade_to_head(url)
    return url


def run() -> int:
    """The service as `make run` starts it: the gRPC server and Envoy's REST in front, as Settings say."""
    from billing.envoy_config import ENVOY_TEMPLATE, render_envoy_config

    settings = Settings.from_environment(database_url=database_url())
    migrate(settings.database_url)
    config_path = REPO_ROOT / ".data" / "envoy.yaml"
    config_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.touch(mode=0o600)  # it holds the edge token
    config_path.chmod(0o600)
    config_path.write_text(
        render_envoy_config(
            ENVOY_TEMPLATE.read_text(),
            listen_port=settings.rest_port,
            grpc_port=settings.grpc_port,
            admin_port=settings.envoy_admin_port,
            cors_origin=settings.cors_origin,
            admin_rest_port=settings.admin_rest_port,
            admin_rest_host=settings.admin_rest_host,
            edge_token=MasterKey.load(settings.master_key_path, settings.master_key_hex).edge_token(),
        )
    )
    # The server reads the same environment; only the database URL may have been resolved here.
    env = os.environ | {"DATABASE_URL": settings.database_url}
    venv_bin = Path(sys.executable).parent
    children = [
        subprocess.Popen([sys.executable, "-m", "billing.server"], env=env, cwd=REPO_ROOT),
        subprocess.Popen(
            [str(venv_bin / "envoy"), "-c", str(config_path), "--log-level", "warn", "--disable-hot-restart"], cwd=REPO_ROOT
        ),
    ]
    print(f"billing: gRPC on :{settings.grpc_port}, REST on http://localhost:{settings.rest_port}/v1/billing/..., "
          f"database {settings.database_url}. Ctrl-C stops.", flush=True)

    def stop(*_: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while all(child.poll() is None for child in children):
        time.sleep(0.5)
    stop()
    for child in children:
        child.wait(timeout=30)
    return max(child.returncode or 0 for child in children)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="billing")
    parser.add_argument("command", choices=["run", "migrate", "verify", "db-stop", "db-url", "keys", "sign"])
    args, rest = parser.parse_known_args(argv)
    if args.command == "sign":
        from billing.cli_keys import sign_main

        return sign_main(rest)
    if args.command == "keys":
        from billing.cli_keys import keys_main

        return keys_main(rest, Settings.from_environment(database_url=migrate(database_url())))
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "run":
        return run()
    if args.command == "migrate":
        print(f"migrated {migrate(database_url())}")
    elif args.command == "verify":
        from billing.adapters.db.invariants import find_violations_in_database

        violations = asyncio.run(find_violations_in_database(database_url()))
        for violation in violations:
            print(violation)
        print("ledger invariants hold" if not violations else f"{len(violations)} violations")
        return 1 if violations else 0
    elif args.command == "db-stop":
        embedded_postgres.stop(REPO_ROOT / embedded_postgres.DEFAULT_DATA_DIR)
    elif args.command == "db-url":
        print(database_url())
    return 0


if __name__ == "__main__":
    sys.exit(main())
