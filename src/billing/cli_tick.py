"""`billing tick`: the upkeep of idle accounts (service/tick.py), once, then exit. Safe to run
from cron on any number of machines; nothing depends on it running (reads and consumes do
the same upkeep first)."""

from __future__ import annotations

import asyncio

from billing.adapters.catalog_file import load_catalog
from billing.adapters.clock import service_clock
from billing.adapters.db.change_notifier import ChangeNotifier
from billing.adapters.db.unit_of_work import PostgresStorage, connection_options, open_pool
from billing.service.ports import Clock
from billing.domain.events import WalletChanged
from billing.service.dependencies import Dependencies
from billing.service.handlers import tell_balance_readers
from billing.service.messagebus import MessageBus
from billing.service.tick import tick
from billing.settings import Settings, libpq_url

TICK_POOL_SIZE = 2


def tick_main(settings: Settings) -> int:
    touched = asyncio.run(run_tick(settings))
    print(f"upkeep done for {touched} account(s)")
    return 0


async def run_tick(settings: Settings, clock: Clock | None = None) -> int:
    """The tick's changes are announced like the server's (NOTIFY after commit): a page watching
    an idle account sees its period close and rollover when the tick writes them."""
    catalog, _ = load_catalog(settings.catalog_path)
    pool = await open_pool(settings.database_url, TICK_POOL_SIZE)
    notifier = ChangeNotifier(libpq_url(settings.database_url), connection_options())
    notifier.start()
    try:
        clock = clock or service_clock(settings.clock_offset_seconds, settings.clock_offset_file)
        # The tick announces its changes; it sends no payment (no provider here): a top-up it finds
        # due is sent by the next server that touches the account (a pending attempt is resent).
        bus = MessageBus({WalletChanged: (tell_balance_readers,)})
        return await tick(Dependencies(storage=PostgresStorage(pool), catalog=catalog, clock=clock, bus=bus,
                                       wallet_changes=notifier))
    finally:
        await notifier.close()
        await pool.close()
