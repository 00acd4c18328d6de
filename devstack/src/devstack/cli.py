"""`billing-dev <command>`: the local stack behind `make run`, `make migrate` and `make db-stop`.

Not part of the service's wheel: the embedded PostgreSQL, Envoy's rendered config, the Stripe
stand-in and its clock, the demo app. The service's own commands are `billing <command>`.
"""

from __future__ import annotations

import argparse
import sys

from devstack import embedded_postgres
from billing.settings import REPO_ROOT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="billing-dev")
    parser.add_argument("command", choices=["run", "migrate", "db-stop", "db-url", "clock", "stripe-secret"])
    parser.add_argument("arguments", nargs=argparse.REMAINDER, help="the command's own (billing-dev <command> --help)")
    args = parser.parse_args(argv)
    rest = args.arguments
    if args.command in ("clock", "stripe-secret"):
        from devstack.clock import clock_main, stripe_secret_main

        return (clock_main if args.command == "clock" else stripe_secret_main)(rest)
    if rest in (["-h"], ["--help"]):
        parser.print_help()
        return 0
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    from devstack import run

    if args.command == "run":
        return run.run()
    if args.command == "migrate":
        from billing.entrypoints.cli import migrate

        print(f"migrated {migrate(run.database_url())}")
    elif args.command == "db-stop":
        primary = REPO_ROOT / embedded_postgres.DEFAULT_DATA_DIR
        embedded_postgres.stop(embedded_postgres.standby_data_dir(primary))  # its standby, if it has one
        embedded_postgres.stop(primary)
        run.forget_database()
    elif args.command == "db-url":
        print(run.database_url())
    return 0


if __name__ == "__main__":
    sys.exit(main())
