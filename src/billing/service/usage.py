"""GetUsage: consumption of the current UTC day or month to date."""

from __future__ import annotations

from datetime import timedelta

from billing.domain.clock_math import first_day_of_month, start_of_utc_day
from billing.domain.errors import AccountNotFound, InvalidArgument
from billing.domain.limits import USAGE_PERIODS, require_account_id
from billing.domain.usage import UsageSummary, summarize_usage
from billing.service.dependencies import Dependencies


async def get_usage(deps: Dependencies, account_id: str, period: str) -> UsageSummary:
    require_account_id(account_id)
    period = period or "month"
    if period not in USAGE_PERIODS:
        raise InvalidArgument("period must be day or month", field="period")
    now = deps.clock.now()
    today = now.date()
    first_day = today if period == "day" else first_day_of_month(today)
    async with deps.storage.reader() as uow:
        if not await uow.wallets.exists(account_id):
            raise AccountNotFound(f"no account for user_id {account_id!r}", field="user_id")
        rows = await uow.history.consumption_by_day(
            account_id, since=start_of_utc_day(first_day), until=start_of_utc_day(today + timedelta(days=1))
        )
    return summarize_usage([(r.day, r.operation, r.seconds) for r in rows], first_day, today)
