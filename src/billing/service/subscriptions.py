"""A paid plan's subscription: its state from the provider, cancel at period end, plan changes.

The account's plan follows what was paid: a paid invoice sets it (payment_credits.py). The
provider's subscription state (status, period, cancellation, the plan billed next) is read
from the provider itself whenever it changes, so deliveries may arrive in any order.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from billing.domain.audit import AuditEntry
from billing.domain.balance import BalanceTotals
from billing.domain.errors import InvalidArgument, SubscriptionConflict
from billing.domain.limits import require_account_id, require_idempotency_key
from billing.domain.subscription import with_period
from billing.domain.wallet import Wallet
from billing.service.dependencies import Dependencies
from billing.service.provider_events import CheckoutItem, PlanChange, SubscriptionSnapshot
from billing.service.upkeep import account_upkeep
from billing.service.wallet_change import WalletChange, change_wallet
from billing.service.wallet_reading import read_wallet

FREE_PLAN = "free"
ENDED_STATUSES = ("canceled", "incomplete_expired")
CANCELED = "canceled"


@dataclass(frozen=True)
class SubscriptionStatus:
    user_id: str
    plan_key: str
    subscription_status: str
    cancel_at_period_end: bool
    pending_plan_key: str | None
    current_period_start_at: datetime | None
    current_period_end_at: datetime | None


async def has_live_subscription(deps: Dependencies, account_id: str) -> bool:
    async with deps.storage.reader() as uow:
        subscription_id = await uow.payment_profiles.subscription_of(account_id)
    return subscription_id is not None


async def _subscription_id(deps: Dependencies, account_id: str) -> str:
    async with deps.storage.reader() as uow:
        subscription_id = await uow.payment_profiles.subscription_of(account_id)
    if subscription_id is None:
        raise SubscriptionConflict("the account has no subscription", field="user_id")
    return subscription_id


# An operator's action passes its audit entry's builder (service/audit.py): written with the change
# that applies the provider's answer, in its transaction.
ChangeAudit = Callable[[BalanceTotals, Wallet, datetime], AuditEntry]


async def cancel_subscription(
    deps: Dependencies, account_id: str, idempotency_key: str, audit: ChangeAudit | None = None,
) -> SubscriptionStatus:
    """At the end of the current period: its minutes stay until then."""
    require_account_id(account_id)
    require_idempotency_key(idempotency_key)
    subscription_id = await _subscription_id(deps, account_id)
    snapshot = await deps.payment_provider().cancel_at_period_end(
        subscription_id, f"cancel:{account_id}:{idempotency_key}"
    )
    return await apply_snapshot(deps, account_id, snapshot, audit)


async def change_plan(
    deps: Dependencies, account_id: str, plan_key: str, idempotency_key: str, audit: ChangeAudit | None = None,
) -> SubscriptionStatus:
    """Up: now (the provider invoices the difference; its minutes come when it is paid). Down: at
    the end of the period (the current period's minutes stay; the next invoice is the lower plan)."""
    require_account_id(account_id)
    require_idempotency_key(idempotency_key)
    target = deps.catalog.plan(plan_key)
    if target.key == FREE_PLAN or target.minutes <= 0:
        raise InvalidArgument("plan_key must name a paid plan (cancel to return to free)", field="plan_key")
    provider = deps.payment_provider()
    snapshot = await provider.subscription(await _subscription_id(deps, account_id))
    if snapshot.status in ENDED_STATUSES:
        raise SubscriptionConflict("the subscription has ended", field="user_id")
    if snapshot.plan_key != target.key:
        # Up or down from the plan the account has paid for, not from the one billed next: going
        # back to the current plan after a downgrade only restores its price (nothing to pay).
        paid_plan = (await read_wallet(deps, account_id, deps.clock.now())).account.plan_key
        current = deps.catalog.plan(paid_plan) if deps.catalog.has_plan(paid_plan) else None
        upgrade = current is None or target.rank > current.rank
        currency = snapshot_currency(snapshot, deps)
        item = CheckoutItem(
            kind="subscription", key=target.key, name=target.name, minutes=target.minutes, currency=currency,
            unit_amount_cents=target.prices_cents[currency],
        )
        key = f"plan:{account_id}:{idempotency_key}"
        price_id = await provider.create_plan_price(snapshot, item, key)
        if upgrade:  # recorded before the provider can invoice it: its invoice.paid is matched to this
            # Stripe prorates from the item's price now, which a scheduled downgrade or an upgrade not yet
            # credited may have moved off the plan the account paid for: the record says which it was.
            billed_from = snapshot.plan_key if deps.catalog.has_plan(snapshot.plan_key) else paid_plan
            billed_from_cents = snapshot.unit_amount_cents
            if billed_from_cents is None:
                billed_from_cents = deps.catalog.plan(billed_from).prices_cents.get(currency, 0)
            await _record_upgrade(deps, PlanChange(
                account_id=account_id, price_id=price_id, subscription_id=snapshot.subscription_id,
                from_plan_key=billed_from, to_plan_key=target.key, currency=currency,
                from_price_cents=billed_from_cents,
                period_start=snapshot.period_start, period_end=snapshot.period_end,
                resume_cancellation=snapshot.cancel_at_period_end, requested_at=deps.clock.now(),
            ))
        snapshot = await provider.change_plan(
            snapshot, price_id, item, snapshot.plan_key, immediately=upgrade, idempotency_key=key,
        )
    return await apply_snapshot(deps, account_id, snapshot, audit)


async def _record_upgrade(deps: Dependencies, change: PlanChange) -> None:
    async with deps.storage.transaction() as uow:
        await uow.plan_changes.add(change)
        await uow.commit()


def snapshot_currency(snapshot: SubscriptionSnapshot, deps: Dependencies) -> str:
    currency = snapshot.currency or deps.catalog.default_currency
    return currency if deps.catalog.is_priced_in(currency) else deps.catalog.default_currency


async def apply_snapshot(
    deps: Dependencies, account_id: str, snapshot: SubscriptionSnapshot, audit: ChangeAudit | None = None,
) -> SubscriptionStatus:
    """Writes the provider's subscription state on the account (status, period, cancellation,
    a pending downgrade). Absolute, so applying it twice is applying it once."""
    catalog = deps.catalog
    async with deps.storage.reader() as uow:
        current_id = await uow.payment_profiles.subscription_of(account_id)
    if current_id is not None and current_id != snapshot.subscription_id:
        # A late event of an older subscription: the account has moved on to another.
        return status_of(await read_wallet(deps, account_id, deps.clock.now()))

    def sync(wallet: Wallet, now: datetime) -> SubscriptionStatus:
        account = wallet.account
        subscription = with_period(account.subscription, snapshot.period_start, snapshot.period_end)
        if snapshot.status in ENDED_STATUSES:
            wallet.change_plan(FREE_PLAN, CANCELED)
            subscription = dataclasses.replace(subscription, cancel_at_period_end=False, pending_plan_key=None)
        else:
            if account.plan_key != FREE_PLAN:  # a first subscription becomes active when its invoice is paid
                wallet.change_plan(account.plan_key, snapshot.status)
            pending = None
            if catalog.has_plan(snapshot.plan_key) and catalog.has_plan(account.plan_key):
                if catalog.plan(snapshot.plan_key).rank < catalog.plan(account.plan_key).rank:
                    pending = snapshot.plan_key
            subscription = dataclasses.replace(
                subscription, cancel_at_period_end=snapshot.cancel_at_period_end, pending_plan_key=pending,
            )
        wallet.change_subscription(subscription)
        return status_of(wallet)

    # Upkeep first: a period that ended rolls over under the plan it was paid for, before an
    # end of the subscription turns the account free (cap 0), however late the touch.
    status = await change_wallet(
        deps, WalletChange(account_id, sync, prepare=account_upkeep(catalog), repeatable=True, audit=audit))
    async with deps.storage.transaction() as uow:
        live = snapshot.status not in ENDED_STATUSES
        current = await uow.payment_profiles.subscription_of(account_id)
        if live or current == snapshot.subscription_id:
            await uow.payment_profiles.set_subscription(account_id, snapshot.subscription_id if live else None, deps.clock.now())
        await uow.commit()
    return status


def status_of(wallet: Wallet) -> SubscriptionStatus:
    account = wallet.account
    subscription = account.subscription
    return SubscriptionStatus(
        user_id=account.account_id, plan_key=account.plan_key, subscription_status=account.subscription_status,
        cancel_at_period_end=subscription.cancel_at_period_end, pending_plan_key=subscription.pending_plan_key,
        current_period_start_at=subscription.period_start, current_period_end_at=subscription.period_end,
    )
