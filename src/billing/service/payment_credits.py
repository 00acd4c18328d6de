"""Credits and refunds driven by verified payments, each exactly once.

Each is a wallet change whose idempotency key is derived from the provider's ids: a package
payment credits once per payment (its Checkout completion and its PaymentIntent success name
the same payment), an invoice once per invoice, a refund once per cumulative refunded amount
(the payment record makes the levels add up to exactly the refunded share, in any order).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Mapping

from billing.domain.auto_topup import record_success
from billing.domain.buckets import Source
from billing.domain.catalog import SECONDS_PER_MINUTE, Catalog, Package, Plan
from billing.domain.errors import InvalidArgument, PaymentNotCredited
from billing.domain.limits import GRANT_SECONDS_MAX
from billing.domain.payments import Payment, PaymentKind, apply_refund
from billing.domain.subscription import with_period
from billing.domain.wallet import EventType, Wallet
from billing.service.answer_codec import AnswerCodec
from billing.service.dependencies import Dependencies
from billing.service.payment_events import ChargeRefunded, InvoicePaid, PackagePaid, PaymentMismatch
from billing.service.upkeep import account_upkeep
from billing.service.wallet_change import Idempotency, WalletChange, change_wallet

ACTIVE = "active"
CANCELED = "canceled"
# The clock difference between the provider and this service a period's start may show (the webhook
# signature's own tolerance): a new subscription's first period starts the instant it is paid.
PERIOD_START_TOLERANCE = timedelta(seconds=300)


@dataclass(frozen=True)
class CreditResult:
    """What a payment event did to the account (stored as the answer of its idempotency key)."""

    user_id: str
    payment_id: str
    seconds: int  # credited (positive) or taken back (negative); 0: nothing to do
    bucket_seq: int = 0
    detail: str = ""
    replayed: bool = False


CREDIT_ANSWERS = AnswerCodec(CreditResult)


def sold_package(catalog: Catalog, paid: PackagePaid) -> Package:
    """The package this payment bought, when it paid the catalog's price in a currency the
    package is sold in (checkouts and top-ups are priced from the catalog, never by the client)."""
    if not catalog.has_package(paid.package_key):
        raise PaymentMismatch(f"package {paid.package_key!r} is not in the catalog")
    package = catalog.package(paid.package_key)
    _require_price(package.prices_cents, paid.currency, paid.amount_cents, f"package {package.key}")
    return package


def sold_plan_period(catalog: Catalog, invoice: InvoicePaid) -> Plan:
    """The plan this invoice paid for: a period at the plan's price; an upgrade's proration at
    most the plan's price (Stripe charges the difference for the rest of the period)."""
    if not catalog.has_plan(invoice.plan_key):
        raise PaymentMismatch(f"plan {invoice.plan_key!r} is not in the catalog")
    plan = catalog.plan(invoice.plan_key)
    price = plan.prices_cents.get(invoice.currency)
    if invoice.billing_reason == "subscription_update" and price is not None:
        if invoice.amount_cents > price:
            raise PaymentMismatch(f"paid {invoice.amount_cents} {invoice.currency}, over plan {plan.key}'s {price}")
        return plan
    _require_price(plan.prices_cents, invoice.currency, invoice.amount_cents, f"plan {plan.key}")
    return plan


def _require_price(prices_cents: Mapping[str, int], currency: str, amount_cents: int, what: str) -> None:
    price = prices_cents.get(currency)
    if price is None:
        raise PaymentMismatch(f"paid in {currency}, and {what} is not sold in {currency}")
    if amount_cents != price:
        raise PaymentMismatch(f"paid {amount_cents} {currency}, and {what} costs {price} {currency}")


async def claim_payment(deps: Dependencies, account_id: str, provider_id: str) -> None:
    """The provider's id credits one account ever: a second account naming it is a mismatch."""
    async with deps.storage.transaction() as uow:
        owner = await uow.payment_profiles.claim_payment(provider_id, account_id, deps.clock.now())
        await uow.commit()
    if owner != account_id:
        raise PaymentMismatch(f"{provider_id} was credited to another account")


async def credit_package(deps: Dependencies, account_id: str, paid: PackagePaid) -> CreditResult:
    package = sold_package(deps.catalog, paid)
    seconds = package.minutes * SECONDS_PER_MINUTE
    if not 0 < seconds <= GRANT_SECONDS_MAX:
        raise InvalidArgument("package_minutes out of range", field="package_minutes")
    name = package.name
    validity = timedelta(days=deps.catalog.package_validity_days)
    await claim_payment(deps, account_id, paid.payment_id)

    def credit(wallet: Wallet, now: datetime) -> CreditResult:
        # Valid from the payment, not from the delivery; a delivery so late the package would
        # already have expired gets a full validity from now rather than nothing.
        expires_at = paid.paid_at + validity if paid.paid_at + validity > now else now + validity
        bucket = wallet.credit(
            Source.PACKAGE, seconds, expires_at=expires_at, now=now, event_type=EventType.PACKAGE_CREDIT,
            reason=f"{name} package purchase",
            metadata={"payment_id": paid.payment_id, "package_key": paid.package_key,
                      "amount_cents": paid.amount_cents, "currency": paid.currency},
        )
        wallet.record_payment(Payment(
            account_id=account_id, payment_id=paid.payment_id, kind=PaymentKind.PACKAGE, item_key=paid.package_key,
            bucket_seq=bucket.bucket_seq, amount_cents=paid.amount_cents, currency=paid.currency,
            granted_seconds=seconds, paid_at=paid.paid_at,
        ))
        if paid.topup_seq is not None:
            record_success(wallet, paid.topup_seq)
        return CreditResult(account_id, paid.payment_id, seconds, bucket.bucket_seq)

    key = f"payment:{paid.payment_id}"
    return await change_wallet(deps, WalletChange(
        account_id, credit, prepare=account_upkeep(deps.catalog),
        idempotency=Idempotency(key, f"package:{paid.package_key}:{seconds}", CREDIT_ANSWERS),
    ))


async def credit_invoice(deps: Dependencies, account_id: str, invoice: InvoicePaid) -> CreditResult:
    """A paid period: its plan's minutes until the period's end, and the plan becomes the
    account's. An upgrade's proration invoice credits the difference for the rest of the period."""
    plan = sold_plan_period(deps.catalog, invoice)
    minutes = plan.minutes
    if invoice.previous_plan_key and deps.catalog.has_plan(invoice.previous_plan_key):
        minutes = max(0, plan.minutes - deps.catalog.plan(invoice.previous_plan_key).minutes)
    await claim_payment(deps, account_id, invoice.invoice_id)
    seconds = minutes * SECONDS_PER_MINUTE

    def credit(wallet: Wallet, now: datetime) -> CreditResult:
        if invoice.period_start > now + PERIOD_START_TOLERANCE:
            # Spendable minutes of a period that has not begun would stack on the current period's: the
            # provider retries (Stripe for 3 days), and a retry once the period has begun credits it.
            raise PaymentNotCredited(
                f"invoice {invoice.invoice_id} pays a period starting {invoice.period_start.isoformat()}, "
                "not begun yet: credited when it has", field="period_start",
            )
        account = wallet.account
        known_end = account.subscription.period_end
        # Only the newest period sets the plan: a late invoice of an older one, or one paid after
        # the subscription was canceled (an open invoice paid late), credits but changes no plan.
        sets_plan = known_end is None or invoice.period_end > known_end or (
            invoice.period_end == known_end and account.subscription_status != CANCELED
        )
        subscription = with_period(account.subscription, invoice.period_start, invoice.period_end)
        if sets_plan and subscription.pending_plan_key == plan.key:
            subscription = dataclasses.replace(subscription, pending_plan_key=None)
        if seconds == 0 or invoice.period_end <= now:
            if sets_plan:
                wallet.change_plan(plan.key, ACTIVE)
            wallet.change_subscription(subscription)
            return CreditResult(account_id, invoice.payment_id, 0, detail="nothing to credit for this period")
        bucket = wallet.credit(
            Source.SUBSCRIPTION, seconds, expires_at=invoice.period_end, now=now,
            event_type=EventType.SUBSCRIPTION_CREDIT, reason=f"{plan.name} plan minutes",
            metadata={"invoice_id": invoice.invoice_id, "plan_key": plan.key, "billing_reason": invoice.billing_reason,
                      "period_start": invoice.period_start.isoformat(), "period_end": invoice.period_end.isoformat()},
        )
        closes_at = subscription.closes_at
        subscription = dataclasses.replace(
            subscription, closes_at=invoice.period_end if closes_at is None else min(closes_at, invoice.period_end)
        )
        wallet.change_subscription(subscription)
        if sets_plan:  # after the credit, which may refuse (the balance ceiling) having changed nothing
            wallet.change_plan(plan.key, ACTIVE)
        wallet.record_payment(Payment(
            account_id=account_id, payment_id=invoice.payment_id, kind=PaymentKind.SUBSCRIPTION, item_key=plan.key,
            bucket_seq=bucket.bucket_seq, amount_cents=invoice.amount_cents, currency=invoice.currency,
            granted_seconds=seconds, paid_at=invoice.paid_at,
        ))
        return CreditResult(account_id, invoice.payment_id, seconds, bucket.bucket_seq)

    key = f"invoice:{invoice.invoice_id}"
    return await change_wallet(deps, WalletChange(
        account_id, credit, prepare=account_upkeep(deps.catalog),
        idempotency=Idempotency(key, f"invoice:{plan.key}:{seconds}", CREDIT_ANSWERS),
    ))


async def refund_payment(deps: Dependencies, account_id: str, refund: ChargeRefunded) -> CreditResult:
    def take_back(wallet: Wallet, now: datetime) -> CreditResult:
        payment = wallet.payments.get(refund.payment_id)
        if payment is None:
            raise PaymentNotCredited(f"payment {refund.payment_id} has not been credited yet", field="payment_intent")
        bucket = next((b for b in wallet.buckets if b.bucket_seq == payment.bucket_seq), None)
        remaining = bucket.remaining_seconds if bucket is not None and bucket.is_usable(now) else 0
        step = apply_refund(payment, refund.refunded_cents, remaining)
        if step is None:
            return CreditResult(account_id, refund.payment_id, 0, payment.bucket_seq, "refund already applied")
        if step.seconds_to_remove:
            metadata: dict[str, Any] = {
                "refund_of": refund.payment_id, "charge_id": refund.charge_id, "refunded_cents": refund.refunded_cents,
                "amount_cents": payment.amount_cents, "unrecoverable_seconds": step.unrecoverable_seconds,
            }
            refund_ids = refund.refund_ids()
            if refund_ids:  # the refund (re_...) that brought the charge to refunded_cents, and all before it
                metadata.update(refund_id=refund_ids[-1], refund_ids=list(refund_ids))
            wallet.take_from_bucket(payment.bucket_seq, step.seconds_to_remove, EventType.ADJUSTMENT, "Refund", now,
                                    metadata)
        wallet.record_payment(step.payment)
        detail = f"{step.unrecoverable_seconds}s were already spent or expired" if step.unrecoverable_seconds else ""
        return CreditResult(account_id, refund.payment_id, -step.seconds_to_remove, payment.bucket_seq, detail)

    key = f"refund:{refund.payment_id}:{refund.refunded_cents}"
    return await change_wallet(deps, WalletChange(
        account_id, take_back, prepare=account_upkeep(deps.catalog), payment_ids=(refund.payment_id,),
        idempotency=Idempotency(key, key, CREDIT_ANSWERS),
    ))
