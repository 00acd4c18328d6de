"""CreateAccount: idempotent by user id; the welcome bonus is granted once, on creation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from billing.domain.balance import BalanceTotals
from billing.domain.buckets import Source
from billing.domain.catalog import SECONDS_PER_MINUTE, Plan
from billing.domain.clock_math import add_months
from billing.domain.limits import require_account_id
from billing.domain.subscription import Subscription
from billing.domain.wallet import Account, EventType, Wallet
from billing.service.upkeep import FREE_PLAN, SUBSCRIPTION_INACTIVE, account_upkeep
from billing.service.dependencies import Dependencies
from billing.service.wallet_change import WalletChange, change_wallet

SUBSCRIPTION_ACTIVE = "active"


@dataclass(frozen=True)
class AccountResult:
    user_id: str
    plan_key: str
    subscription_status: str
    created_at: datetime
    created: bool
    totals: BalanceTotals


async def create_account(deps: Dependencies, account_id: str, plan_key: str) -> AccountResult:
    require_account_id(account_id)
    plan = deps.catalog.plan(plan_key or FREE_PLAN)
    status = SUBSCRIPTION_INACTIVE if plan.key == FREE_PLAN else SUBSCRIPTION_ACTIVE
    upkeep = account_upkeep(deps.catalog)

    def open_account(wallet: Wallet, now: datetime) -> AccountResult:
        if wallet.opened_now:
            _credit_opening_grants(wallet, plan, deps.catalog.welcome_bonus_minutes * SECONDS_PER_MINUTE, now)
        upkeep(wallet, now)
        account = wallet.account
        return AccountResult(
            user_id=account_id, plan_key=account.plan_key, subscription_status=account.subscription_status,
            created_at=account.created_at, created=wallet.opened_now, totals=wallet.balance(now).totals,
        )

    opening = Account(account_id=account_id, plan_key=plan.key, subscription_status=status, created_at=deps.clock.now())
    return await change_wallet(deps, WalletChange(account_id, open_account, opens=opening, repeatable=True))


def _credit_opening_grants(wallet: Wallet, plan: Plan, welcome_seconds: int, now: datetime) -> None:
    if welcome_seconds > 0:
        wallet.credit(
            Source.WELCOME, welcome_seconds, expires_at=None, now=now,
            event_type=EventType.ADJUSTMENT, reason="Welcome bonus",
        )
    if plan.minutes > 0:
        # An admin's complimentary first period of a paid plan (paying customers subscribe
        # through Checkout instead, and their periods come with paid invoices). It ends a month
        # later, shown as a period set to cancel with the free plan pending: at its end it rolls
        # over like any period, then the account is on the free plan (domain/period_close.py).
        end = add_months(now, 1)
        wallet.credit(
            Source.SUBSCRIPTION, plan.minutes * SECONDS_PER_MINUTE, expires_at=end,
            now=now, event_type=EventType.SUBSCRIPTION_CREDIT, reason=f"{plan.name} plan minutes",
            metadata={"plan_key": plan.key, "complimentary": True},
        )
        wallet.change_subscription(Subscription(
            period_start=now, period_end=end, closes_at=end, cancel_at_period_end=True, pending_plan_key=FREE_PLAN,
        ))
