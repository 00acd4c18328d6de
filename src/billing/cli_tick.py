"""`billing tick`: the upkeep of idle accounts (service/tick.py), once, then exit. Safe to run
from cron on any number of machines; nothing depends on it running (reads and consumes do
the same upkeep first)."""

from __future__ import annotations

import asyncio

from billing.adapters.catalog_file import load_catalog
from billing.adapters.clock import SystemClock
from billing.adapters.db.unit_of_work import PostgresStorage, open_pool
from billing.service.dependencies import Dependencies
from billing.service.tick import tick
from billing.settings import Settings

TICK_POOL_SIZE = 2


def tick_main(settings: Settings) -> int:
    touched = asyncio.run(_tick(settings))
    print(f"upkeep done for {touched} account(s)")
    return 0


async def _tick(settings: Settings) -> int:
    catalog, _ = load_catalog(settings.catalog_path)
    pool = await open_pool(settings.database_url, TICK_POOL_SIZE)
    try:
        return await tick(Dependencies(storage=PostgresStorage(pool), catalog=catalog, clock=SystemClock()))
    finally:
        await pool.close()
