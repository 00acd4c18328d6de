"""GetAccountUsage: an account's consumption per UTC day and operation over its last days (the
console's chart), from the ledger's consumption rows (the partial index by account and time)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from billing.domain.clock_math import start_of_utc_day
from billing.domain.errors import AccountNotFound
from billing.domain.limits import require_account_id
from billing.service.dependencies import Dependencies
from billing.service.operator_inputs import bounded

USAGE_DAYS_DEFAULT, USAGE_DAYS_MAX = 30, 90


@dataclass(frozen=True)
class DayUsage:
    day: date
    operation: str
    seconds: int


@dataclass(frozen=True)
class AccountUsage:
    rows: list[DayUsage]  # oldest day first, then by operation
    total_seconds: int


async def get_account_usage(deps: Dependencies, account_id: str, days: int) -> AccountUsage:
    require_account_id(account_id)
    span = bounded(days, "days", USAGE_DAYS_DEFAULT, USAGE_DAYS_MAX)
    today = deps.clock.now().date()
    first_day = today - timedelta(days=span - 1)
    async with deps.storage.reader() as uow:
        if not await uow.wallets.exists(account_id):
            raise AccountNotFound(f"no account for user_id {account_id!r}", field="user_id")
        found = await uow.history.consumption_by_day(
            account_id, since=start_of_utc_day(first_day), until=start_of_utc_day(today + timedelta(days=1)))
    rows = sorted((DayUsage(r.day, r.operation, r.seconds) for r in found if r.seconds),
                  key=lambda r: (r.day, r.operation))
    return AccountUsage(rows, sum(r.seconds for r in rows))
