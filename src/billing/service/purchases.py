"""Checkout: a package purchase or a paid plan's subscription, priced by the server.

Nothing is credited here: the minutes arrive with the payment's verified webhook
(service/payment_credits.py). The same idempotency key returns the same checkout session:
the provider's own idempotency key is derived from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from billing.domain.catalog import Package, Plan, display_price
from billing.domain.errors import AccountNotFound, InvalidArgument, SubscriptionConflict
from billing.domain.limits import IDEMPOTENCY_KEY_LENGTH_MAX, require_account_id, require_token
from billing.service.dependencies import Dependencies
from billing.service.provider_events import CheckoutItem, CheckoutRequest
from billing.service.subscriptions import has_live_subscription

FREE_PLAN = "free"


@dataclass(frozen=True)
class CheckoutResult:
    checkout_url: str
    session_id: str
    item: CheckoutItem
    currency_fallback_from: str | None

    @property
    def display_price(self) -> float:
        return display_price(self.item.unit_amount_cents)


async def purchase_package(
    deps: Dependencies, account_id: str, package_key: str, currency: str, idempotency_key: str
) -> CheckoutResult:
    require_account_id(account_id)
    require_token(idempotency_key, field="idempotency_key", max_length=IDEMPOTENCY_KEY_LENGTH_MAX, required=False)
    item, fallback = priced_item(deps, "package", deps.catalog.package(package_key), currency)
    return await _checkout(deps, account_id, item, fallback, idempotency_key)


async def subscription_checkout(
    deps: Dependencies, account_id: str, plan_key: str, currency: str, idempotency_key: str
) -> CheckoutResult:
    require_account_id(account_id)
    require_token(idempotency_key, field="idempotency_key", max_length=IDEMPOTENCY_KEY_LENGTH_MAX, required=False)
    plan = deps.catalog.plan(plan_key)
    if plan.key == FREE_PLAN or plan.minutes <= 0:
        raise InvalidArgument("plan_key must name a paid plan", field="plan_key")
    if await has_live_subscription(deps, account_id) or await deps.payment_provider().has_live_subscription(
        await ensure_customer(deps, account_id)
    ):
        # Also asked of the provider: a subscription paid a moment ago may not have reached us yet.
        raise SubscriptionConflict(
            "the account already has a subscription: change its plan instead", field="plan_key"
        )
    item, fallback = priced_item(deps, "subscription", plan, currency)
    return await _checkout(deps, account_id, item, fallback, idempotency_key)


def priced_item(deps: Dependencies, kind: str, sold: Plan | Package, currency: str) -> tuple[CheckoutItem, str | None]:
    """What a checkout sells, at the catalog's price in the currency served (USD when the one
    asked for has no prices: the second value says which it was)."""
    served, fallback = deps.catalog.resolve_currency(currency)
    item = CheckoutItem(
        kind=kind, key=sold.key, name=sold.name, minutes=sold.minutes, currency=served,
        unit_amount_cents=sold.prices_cents[served],
    )
    return item, fallback


async def _checkout(
    deps: Dependencies, account_id: str, item: CheckoutItem, fallback: str | None, idempotency_key: str
) -> CheckoutResult:
    customer_id = await ensure_customer(deps, account_id)
    session = await deps.payment_provider().create_checkout(
        CheckoutRequest(account_id, customer_id, item, idempotency_key or None),
        deps.checkout().success_url, deps.checkout().cancel_url,
    )
    return CheckoutResult(session.url, session.session_id, item, fallback)


async def ensure_customer(deps: Dependencies, account_id: str) -> str:
    """The account's customer at the provider, created on its first checkout. Creation is
    idempotent per account at the provider, so two first checkouts at once get one customer."""
    async with deps.storage.reader() as uow:
        if not await uow.wallets.exists(account_id):
            raise AccountNotFound(f"no account for user_id {account_id!r}", field="user_id")
        customer_id = await uow.payment_profiles.customer_of(account_id)
    if customer_id is not None:
        return customer_id
    customer_id = await deps.payment_provider().create_customer(account_id)
    async with deps.storage.transaction() as uow:
        await uow.payment_profiles.add_customer(account_id, customer_id, deps.clock.now())
        await uow.commit()
    async with deps.storage.reader() as uow:
        stored = await uow.payment_profiles.customer_of(account_id)  # the first one, if two raced
    assert stored is not None
    return stored
