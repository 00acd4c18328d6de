"""The upkeep of accounts nobody touches (`billing tick`): closing ended periods, rollover
warnings, settling holds past their expiry (so no time stays held forever). Every read and change does the same upkeep first, so tick only makes the history
timely for idle accounts; running it on many replicas at once is safe (each upkeep is a
wallet change, and a second one finds nothing due)."""

from __future__ import annotations

from datetime import datetime

from billing.domain.subscription import ROLLOVER_WARNING_LEAD
from billing.domain.wallet import Wallet
from billing.service.dependencies import Dependencies
from billing.service.upkeep import account_upkeep
from billing.service.wallet_change import WalletChange, change_wallet

IDLE_UPKEEP_BATCH = 500
TICK_JOB = "tick"


async def upkeep_idle_accounts(deps: Dependencies, batch: int = IDLE_UPKEEP_BATCH) -> int:
    """Runs the upkeep of every account that owes one; returns how many accounts it touched. The run
    is recorded when it completes (the console's health panel shows the last one)."""
    now = deps.clock.now()
    upkeep = account_upkeep(deps.catalog)
    touched, after = 0, ""
    while True:
        async with deps.storage.reader() as uow:
            due = await uow.upkeep_queue.accounts_due(now, now + ROLLOVER_WARNING_LEAD, after, batch)
        for account_id in due:
            await change_wallet(deps, WalletChange(account_id, _nothing_else, prepare=upkeep, repeatable=True))
            touched += 1
        if len(due) < batch:
            break
        after = due[-1]
    if deps.service_records is not None:
        await deps.service_records.job_ran(TICK_JOB, now, deps.clock.now(), touched)
    return touched


def _nothing_else(wallet: Wallet, now: datetime) -> None:
    return None
