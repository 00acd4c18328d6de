"""GetBalance: the enhanced balance of one account."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from billing.domain.balance import BalanceView, changes_by_itself_at
from billing.domain.catalog import minutes_floor
from billing.domain.limits import require_account_id
from billing.domain.wallet import Account
from billing.service.dependencies import Dependencies
from billing.service.wallet_reading import read_wallet


@dataclass(frozen=True)
class BonusStatus:
    daily_minutes: int
    used_this_month_minutes: int
    monthly_cap_minutes: int


@dataclass(frozen=True)
class BalanceReport:
    account: Account
    view: BalanceView
    bonus: BonusStatus
    catalog_version: str
    read_at: datetime

    @property
    def changes_by_itself_at(self) -> datetime:
        """Only live streams ask (domain.balance.changes_by_itself_at): not computed on every read."""
        return changes_by_itself_at(
            self.view, self.account.subscription.closes_at, self.read_at, self.account.holds.next_expiry_at)


async def get_balance(deps: Dependencies, account_id: str) -> BalanceReport:
    require_account_id(account_id)
    now = deps.clock.now()
    wallet = await read_wallet(deps, account_id, now)
    plan = deps.catalog.plan(wallet.account.plan_key)
    bonus = BonusStatus(
        daily_minutes=plan.bonus_daily_minutes,
        used_this_month_minutes=minutes_floor(wallet.account.bonus.used_in_month_of(now.date())),
        monthly_cap_minutes=plan.monthly_bonus_cap_minutes or 0,
    )
    return BalanceReport(
        account=wallet.account, view=wallet.balance(now), bonus=bonus, catalog_version=deps.catalog.version,
        read_at=now,
    )
