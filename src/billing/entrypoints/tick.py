"""`billing tick`: the upkeep of idle accounts (service/idle_upkeep.py), once, then exit. Safe to run
from cron on any number of machines; nothing depends on it running (reads and consumes do
the same upkeep first)."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

from billing.bootstrap import build_service
from billing.domain.events import WalletChanged
from billing.service.handlers import tell_balance_readers
from billing.service.ports import Clock
from billing.service.idle_upkeep import upkeep_idle_accounts
from billing.settings import Settings

TICK_POOL_SIZE = 2


def tick_main(settings: Settings) -> int:
    touched = asyncio.run(run_tick(settings))
    print(f"upkeep done for {touched} account(s)")
    return 0


async def run_tick(settings: Settings, clock: Clock | None = None) -> int:
    """The tick's changes are announced like the server's (NOTIFY after commit): a page watching
    an idle account sees its period close and rollover when the tick writes them. It sends no
    payment (no provider here): a top-up it finds due is sent by the next server that touches the
    account (a pending attempt is resent)."""
    async with AsyncExitStack() as stack:
        service = await build_service(settings, stack, pool_size=TICK_POOL_SIZE, clock=clock,
                                      handlers={WalletChanged: (tell_balance_readers,)})
        return await upkeep_idle_accounts(service.deps)
