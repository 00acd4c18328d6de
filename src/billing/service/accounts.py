"""CreateAccount: idempotent by user id; the welcome bonus is granted once, on creation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from billing.domain.balance import BalanceTotals
from billing.domain.buckets import Source
from billing.domain.catalog import SECONDS_PER_MINUTE
from billing.domain.clock_math import add_months
from billing.domain.limits import require_user_id
from billing.domain.wallet import Account, EventType
from billing.service.dependencies import Dependencies
from billing.service.wallet_loading import load_wallet_for_update

FREE_PLAN = "free"
SUBSCRIPTION_ACTIVE = "active"
SUBSCRIPTION_INACTIVE = "inactive"  # the free plan: no paid subscription


@dataclass(frozen=True)
class AccountResult:
    user_id: str
    plan_key: str
    subscription_status: str
    created_at: datetime
    created: bool
    totals: BalanceTotals


async def create_account(deps: Dependencies, user_id: str, plan_key: str) -> AccountResult:
    require_user_id(user_id)
    plan = deps.catalog.plan(plan_key or FREE_PLAN)
    now = deps.clock.now()
    status = SUBSCRIPTION_INACTIVE if plan.key == FREE_PLAN else SUBSCRIPTION_ACTIVE
    async with deps.unit_of_work() as uow:
        created = await uow.wallets.add_account(
            Account(account_id=user_id, plan_key=plan.key, subscription_status=status, created_at=now)
        )
        wallet = await load_wallet_for_update(uow, user_id, now)
        if created:
            welcome_seconds = deps.catalog.welcome_bonus_minutes * SECONDS_PER_MINUTE
            if welcome_seconds > 0:
                wallet.credit(
                    Source.WELCOME, welcome_seconds, expires_at=None, now=now,
                    event_type=EventType.ADJUSTMENT, reason="Welcome bonus",
                )
            if plan.minutes > 0:
                # The first period of a paid plan; renewals arrive with subscription billing.
                wallet.credit(
                    Source.SUBSCRIPTION, plan.minutes * SECONDS_PER_MINUTE, expires_at=add_months(now, 1),
                    now=now, event_type=EventType.SUBSCRIPTION_CREDIT, reason=f"{plan.name} plan minutes",
                    metadata={"plan_key": plan.key},
                )
            wallet.grant_daily_bonus_if_due(plan, now)
            uow.wallets.save(wallet, now)
            await uow.commit()
    account = wallet.account
    return AccountResult(
        user_id=user_id, plan_key=account.plan_key, subscription_status=account.subscription_status,
        created_at=account.created_at, created=created, totals=wallet.balance(now).totals,
    )
