"""Auto top-up settings (GET/PUT /v1/billing/auto-topup/{user_id}) and saving a card for it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from billing.domain.auto_topup import AutoTopup
from billing.domain.errors import InvalidArgument, PaymentMethodRequired
from billing.domain.limits import require_account_id
from billing.domain.wallet import Wallet
from billing.service.dependencies import Dependencies
from billing.service.purchases import CheckoutResult, ensure_customer
from billing.service.provider_events import CheckoutItem
from billing.service.wallet_change import WalletChange, change_wallet
from billing.service.wallet_reading import read_wallet

# The threshold is a live balance in seconds: at most a month of continuous AI time.
THRESHOLD_SECONDS_MAX = 31 * 86_400


@dataclass(frozen=True)
class AutoTopupStatus:
    user_id: str
    setting: AutoTopup


async def get_auto_topup(deps: Dependencies, account_id: str) -> AutoTopupStatus:
    require_account_id(account_id)
    wallet = await read_wallet(deps, account_id, deps.clock.now())
    return AutoTopupStatus(account_id, wallet.account.auto_topup)


async def set_auto_topup(
    deps: Dependencies, account_id: str, enabled: bool, threshold_seconds: int, package_key: str, currency: str
) -> AutoTopupStatus:
    """Absolute (a repeat sets the same); clears a past failure, so a customer who fixed a card
    that needed them (requires_action) turns it back on with the same PUT."""
    require_account_id(account_id)
    if not 0 <= threshold_seconds <= THRESHOLD_SECONDS_MAX:
        raise InvalidArgument(f"threshold_seconds must be 0..{THRESHOLD_SECONDS_MAX}", field="threshold_seconds")
    if enabled and threshold_seconds == 0:
        raise InvalidArgument("threshold_seconds must be positive to enable auto top-up", field="threshold_seconds")
    package = deps.catalog.package(package_key) if (package_key or enabled) else None
    served, _ = deps.catalog.resolve_currency(currency)
    if enabled:
        customer_id = await ensure_customer(deps, account_id)
        if not await deps.payment_provider().has_payment_method(customer_id):
            raise PaymentMethodRequired(
                "auto top-up needs a saved card: POST /v1/billing/auto-topup/setup first", field="enabled"
            )

    def apply(wallet: Wallet, now: datetime) -> AutoTopupStatus:
        current = wallet.account.auto_topup
        wallet.change_auto_topup(dataclasses.replace(
            current, enabled=enabled, threshold_seconds=threshold_seconds,
            package_key=package.key if package is not None else None, currency=served,
            failures=0, last_failure=None, retry_at=current.retry_at if current.pending else None,
        ))
        return AutoTopupStatus(account_id, wallet.account.auto_topup)

    return await change_wallet(deps, WalletChange(account_id, apply, repeatable=True))


async def setup_checkout(deps: Dependencies, account_id: str) -> CheckoutResult:
    """A checkout page that saves the customer's card (nothing is charged)."""
    require_account_id(account_id)
    customer_id = await ensure_customer(deps, account_id)
    pages = deps.checkout()
    session = await deps.payment_provider().create_setup_checkout(
        account_id, customer_id, pages.success_url.replace("purchased=true", "card_saved=true"), pages.cancel_url,
    )
    item = CheckoutItem(kind="setup", key="", name="Saved card", minutes=0, currency=deps.catalog.default_currency,
                        unit_amount_cents=0)
    return CheckoutResult(session.url, session.session_id, item, None)



def turn_off(wallet: Wallet) -> bool:
    """Auto top-up off, its settings kept (turning it on again is the user's PUT); a payment already
    started completes as any would. Whether it was on."""
    current = wallet.account.auto_topup
    if current.enabled:
        wallet.change_auto_topup(dataclasses.replace(current, enabled=False))
    return current.enabled
