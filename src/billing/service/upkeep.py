"""The account's upkeep: what the first touch after some instant owes the account, whatever
the request (a read, a consume, a webhook): settling holds past their expiry, closing an ended
subscription period (rollover), the rollover expiry warning, and today's daily bonus. No cron: `billing tick` only runs it for
accounts nobody touches."""

from __future__ import annotations

from datetime import datetime
from typing import Callable

from billing.domain import auto_topup, holds, topup_decisions
from billing.domain.credit_expiry import announce_expiring_credit, notice_due
from billing.domain.catalog import Catalog
from billing.domain.period_close import close_ended_periods, end_complimentary_period, warn_expiring_rollovers
from billing.domain.subscription import closing_due, rollover_warnings_due
from billing.domain.wallet import Wallet


FREE_PLAN = "free"
SUBSCRIPTION_INACTIVE = "inactive"  # the free plan: no paid subscription


def account_upkeep(catalog: Catalog) -> Callable[[Wallet, datetime], None]:
    """A WalletChange `prepare` step; it stands even when the change itself is refused."""

    def upkeep(wallet: Wallet, now: datetime) -> None:
        plan = catalog.plan(wallet.account.plan_key)
        # Periods close first: what a hold that expires now gives back to a period's ended bucket
        # expires with it, as it does for a hold settled after the close (nothing rolls over twice).
        close_ended_periods(wallet, plan.rollover_cap_seconds, catalog.rollover_days, now)
        if wallet.account.holds.expiry_due(now):
            holds.expire_due(wallet, now)
        if notice_due(wallet, now):
            announce_expiring_credit(wallet, now)
        end_complimentary_period(wallet, FREE_PLAN, SUBSCRIPTION_INACTIVE, now)
        warn_expiring_rollovers(wallet, now)
        wallet.grant_daily_bonus_if_due(catalog.plan(wallet.account.plan_key), now)
        decide_topup(catalog, wallet, now)

    return upkeep


def decide_topup(catalog: Catalog, wallet: Wallet, now: datetime) -> None:
    """An auto top-up attempt when one is due (the balance under the threshold, or a pending or
    failed attempt's time to be sent again); it is recorded on the wallet as TopupDue, handled after commit."""
    key = wallet.account.auto_topup.package_key
    if key is not None and catalog.has_package(key):
        topup_decisions.decide(wallet, now, catalog.package(key).minutes)


def upkeep_due(wallet: Wallet, catalog: Catalog, now: datetime) -> bool:
    """Cheap, from what a read loaded: a read path takes the change path only when this is true."""
    account = wallet.account
    return (
        closing_due(account.subscription, now)
        or account.holds.expiry_due(now)
        or notice_due(wallet, now)
        or bool(rollover_warnings_due(account.subscription, wallet.buckets, now))
        or wallet.daily_bonus_due_seconds(catalog.plan(account.plan_key), now) > 0
        # The balance is computed only for an account with auto top-up on (~25 us a read otherwise).
        or (account.auto_topup.enabled
            and auto_topup.attempt_due(account.auto_topup, wallet.balance(now).totals.total_seconds, now) is not None)
    )
