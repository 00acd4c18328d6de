"""`billing <command>` (the console script of this package): operating the service.

The local stack behind `make run` (the embedded PostgreSQL, Envoy's config, the Stripe stand-in,
the demo) is another package, `devstack` (`billing-dev`), outside this one's wheel. Without
DATABASE_URL, these commands use the database the local stack announced (.data/database-url).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from billing.settings import (
    Settings, configured_database_url, direct_database_url, local_database_url_file, normalize_database_url,
)


def database_url() -> str:
    """DATABASE_URL, or the local stack's database; a clear exit when there is neither."""
    configured = configured_database_url()
    if configured:
        return configured
    announced = local_database_url_file()
    if announced.is_file():
        return normalize_database_url(announced.read_text().strip())
    raise SystemExit("DATABASE_URL is not set and no local stack runs (`make run`, or `billing-dev migrate`, starts one)")


def migrate(url: str) -> str:  # `billing migrate`
    """Migrates url's database on the PostgreSQL itself (DATABASE_DIRECT_URL behind a pooler: the
    migrations hold a session advisory lock); returns url."""
    from billing.adapters.db.migrate import upgrade_to_head

    upgrade_to_head(direct_database_url(url))
    return url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="billing")
    parser.add_argument("command", choices=["migrate", "verify", "tick", "keys", "console-login", "webhooks", "sign", "migrate-legacy"])
    # Everything after the command is the command's own: `billing migrate-legacy --help` is its help.
    parser.add_argument("arguments", nargs=argparse.REMAINDER, help="the command's own (billing <command> --help)")
    args = parser.parse_args(argv)
    rest = args.arguments
    if args.command == "sign":
        from billing.entrypoints.keys import sign_main

        return sign_main(rest)
    if args.command == "keys":
        from billing.entrypoints.keys import keys_main

        return keys_main(rest, Settings.from_environment(database_url=migrate(database_url())))
    if args.command == "console-login":
        from billing.entrypoints.console_login import console_login_main

        return console_login_main(rest, Settings.from_environment(database_url=migrate(database_url())))
    if args.command == "webhooks":
        from billing.entrypoints.webhooks import webhooks_main

        return webhooks_main(rest, Settings.from_environment(database_url=migrate(database_url())))
    if args.command == "migrate-legacy":
        from billing.entrypoints.legacy_migration import migrate_legacy_main

        # A dry run writes nothing, not even the schema: it needs a migrated database.
        # The import keeps session state (advisory lock, temporary tables, SETs): on the PostgreSQL itself.
        return migrate_legacy_main(
            rest, lambda dry_run: direct_database_url(database_url() if dry_run else migrate(database_url())))
    if rest in (["-h"], ["--help"]):
        parser.print_help()
        return 0
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "tick":
        from billing.entrypoints.tick import tick_main

        return tick_main(Settings.from_environment(database_url=migrate(database_url())))
    if args.command == "migrate":
        from sqlalchemy.engine import make_url

        # The Job that migrates a cluster's database logs this line: never its password.
        print(f"migrated {make_url(migrate(database_url())).render_as_string(hide_password=True)}")
    elif args.command == "verify":
        from billing.adapters.db.invariants import find_violations_in_database

        violations = asyncio.run(find_violations_in_database(direct_database_url(database_url())))
        for violation in violations:
            print(violation)
        print("ledger invariants hold" if not violations else f"{len(violations)} violations")
        return 1 if violations else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
