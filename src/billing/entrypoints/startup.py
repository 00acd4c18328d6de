"""What a server does once it listens: migrations when asked (retried until the database answers),
the first copy of the api keys, then the availability probe that opens it to calls."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from typing import Awaitable, Callable

from billing.adapters.db.availability import DatabaseAvailability
from billing.adapters.db.migrate import upgrade_to_head
from billing.service.ports import outage_log
from billing.settings import Settings

log = logging.getLogger("billing.entrypoints.server")
MIGRATION_RETRY_FIRST_SECONDS = 0.5
MIGRATION_RETRY_SECONDS_MAX = 2.0


async def start_serving(
    settings: Settings, availability: DatabaseAvailability, before_serving: Callable[[], Awaitable[None]]
) -> None:
    if settings.server.migrate_on_start:
        delay = MIGRATION_RETRY_FIRST_SECONDS
        while True:
            try:
                await asyncio.to_thread(upgrade_to_head, settings.database.session_url)  # a session advisory lock
                break
            except Exception as failure:
                if not _database_unreachable(failure):
                    log.exception("migrations failed")
                    os.kill(os.getpid(), signal.SIGTERM)  # a broken migration stops the server
                    return
                log.warning("migrations wait for the database (retry in %.1fs): %s", delay, _first_line(failure),
                            extra=outage_log("database"))
                await asyncio.sleep(delay)
                delay = min(delay * 2, MIGRATION_RETRY_SECONDS_MAX)
    await before_serving()
    availability.start()


def _database_unreachable(failure: BaseException) -> bool:
    """A driver's OperationalError (connection refused, timeout), raw or wrapped by SQLAlchemy."""
    import psycopg
    import sqlalchemy.exc

    return isinstance(failure, (psycopg.OperationalError, sqlalchemy.exc.OperationalError, OSError))


def _first_line(failure: BaseException) -> str:
    return (str(failure).strip().splitlines() or [type(failure).__name__])[0]
