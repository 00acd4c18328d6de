"""Through a transaction-mode pooler the service sends no startup options (unit_of_work.connection_options:
pgbouncer refuses them), so its sessions take statement_timeout and timezone from the role's or the
database's defaults on the server. A server checks them once it serves and says which are missing: a
request without statement_timeout could wait on a lock for ever, and another time zone changes the tzinfo
of every datetime read (docs/configuration.md, BILLING_DB_POOLER)."""

from __future__ import annotations

import logging

import psycopg
from psycopg_pool import AsyncConnectionPool

log = logging.getLogger(__name__)

UTC_NAMES = ("UTC", "Etc/UTC")


async def missing_session_defaults(pool: AsyncConnectionPool) -> list[str]:
    """What a session through the pool lacks of the service's settings (empty: nothing)."""
    async with pool.connection() as connection:
        cursor = await connection.execute("SELECT current_setting('statement_timeout'), current_setting('TimeZone')")
        row = await cursor.fetchone()
    assert row is not None
    timeout, zone = row
    missing = []
    if timeout in ("0", "0ms"):
        missing.append("statement_timeout (0: none; `ALTER ROLE <role> SET statement_timeout = '5s'`)")
    if zone not in UTC_NAMES:
        missing.append(f"timezone UTC (it is {zone}; `ALTER ROLE <role> SET timezone = 'UTC'`)")
    return missing


async def warn_of_missing_session_defaults(pool: AsyncConnectionPool) -> None:
    """Logs an error naming what is missing; never raises (a check, not a reason not to serve)."""
    try:
        missing = await missing_session_defaults(pool)
    except (psycopg.Error, OSError) as failure:
        log.warning("could not check the sessions' defaults through the pooler (%s)", failure)
        return
    if missing:
        log.error("BILLING_DB_POOLER: sessions through the pooler lack %s", "; ".join(missing))
