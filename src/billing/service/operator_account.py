"""GetAccountOverview: the account page's head (the balance as the user sees it, and beside it what an
operator needs: payment profile, auto top-up, open holds, keys, payments, alert thresholds)."""

from __future__ import annotations

from dataclasses import dataclass

from billing.domain.console import AccountExtras
from billing.domain.limits import require_account_id
from billing.service.balance import BalanceReport, get_balance
from billing.service.dependencies import Dependencies


@dataclass(frozen=True)
class AccountOverview:
    report: BalanceReport  # exactly GetBalance's (the upkeep due by now applied first)
    extras: AccountExtras


async def get_account_overview(deps: Dependencies, account_id: str) -> AccountOverview:
    """Two statements (the balance's, then the rest at once), three with open holds; an upkeep due
    (today's bonus, a period's close) is one change more, as GetBalance does it."""
    require_account_id(account_id)
    report = await get_balance(deps, account_id)
    extras = await deps.console_reads().account_extras(account_id)
    return AccountOverview(report, extras)
