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
from typing import Any, Awaitable, Callable, Mapping

from billing.domain import holds
from billing.domain.topup_decisions import record_success
from billing.domain.buckets import Bucket, Source
from billing.domain.catalog import SECONDS_PER_MINUTE, Catalog, Package, Plan
from billing.domain.errors import InvalidArgument, PaymentNotCredited
from billing.domain.limits import GRANT_SECONDS_MAX
from billing.domain.payments import Payment, PaymentKind, apply_refund
from billing.domain.subscription import with_period
from billing.domain.wallet import EventType, Wallet
from billing.service.answer_codec import AnswerCodec
from billing.service.dependencies import Dependencies
from billing.service.provider_events import ChargeRefunded, InvoicePaid, PackagePaid, PaymentMismatch, PlanChange
from billing.service.ports import Unavailable, UnitOfWork
from billing.service.upkeep import account_upkeep
from billing.service.wallet_change import Idempotency, WalletChange, change_wallet

ACTIVE = "active"
UPGRADE_REASON = "subscription_update"
REFUND_ATTEMPTS = 3
# Stripe prorates each line to the cent: two lines (the unused old plan, the new one) may each round.
PRORATION_TOLERANCE_CENTS = 2
# The plans are monthly: a period longer than the longest month (and a day of slack for a moved
# billing anchor) is a price this service did not create (say, a yearly one at the monthly amount).
MONTH_MAX = timedelta(days=32)
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
    """The plan a period's invoice (a first one, a renewal) paid for: one month at the plan's price.
    The invoice's total is checked, not what was paid: a customer balance or a proration under
    Stripe's minimum charge carried over from an upgrade changes amount_paid, not the price."""
    if not catalog.has_plan(invoice.plan_key):
        raise PaymentMismatch(f"plan {invoice.plan_key!r} is not in the catalog")
    plan = catalog.plan(invoice.plan_key)
    _require_price(plan.prices_cents, invoice.currency, invoice.total_cents, f"plan {plan.key}")
    if invoice.period_end - invoice.period_start > MONTH_MAX:
        raise PaymentMismatch(f"a period of {invoice.period_end - invoice.period_start}, the plans are monthly")
    return plan


@dataclass(frozen=True)
class PaidUpgrade:
    plan: Plan
    previous_plan: Plan
    seconds: int  # the plans' difference for the part of the period left when it was asked for


def paid_upgrade(catalog: Catalog, invoice: InvoicePaid, change: PlanChange | None) -> PaidUpgrade:
    """An upgrade's invoice, held to the upgrade this service asked for (its price, subscription,
    currency and period): the plans' difference in minutes for the part of the period it bills,
    and a total that is the plans' price difference for that part (Stripe prorates by the second)."""
    if change is None:
        raise PaymentMismatch("an upgrade this service did not ask for (no recorded price on its lines)")
    if (invoice.subscription_id, invoice.currency, invoice.period_end) != (
        change.subscription_id, change.currency, change.period_end
    ):
        raise PaymentMismatch(f"the invoice does not bill the upgrade recorded for price {change.price_id}")
    if not (catalog.has_plan(change.to_plan_key) and catalog.has_plan(change.from_plan_key)):
        raise PaymentMismatch(f"plan {change.to_plan_key!r} or {change.from_plan_key!r} is not in the catalog")
    plan, previous = catalog.plan(change.to_plan_key), catalog.plan(change.from_plan_key)
    whole = (change.period_end - change.period_start).total_seconds()
    billed = (invoice.period_end - max(invoice.period_start, change.period_start)).total_seconds()
    share = min(1.0, max(0.0, billed / whole)) if whole > 0 else 0.0
    price_difference = plan.prices_cents.get(invoice.currency, 0) - change.from_price_cents
    expected_cents = round(price_difference * share)
    if abs(invoice.total_cents - expected_cents) > max(PRORATION_TOLERANCE_CENTS, price_difference // 100):
        raise PaymentMismatch(
            f"billed {invoice.total_cents} {invoice.currency} for the upgrade to {plan.key}, which costs "
            f"{expected_cents} for {share:.1%} of the period"
        )
    seconds = round(max(0, plan.minutes - previous.minutes) * SECONDS_PER_MINUTE * share)
    return PaidUpgrade(plan, previous, seconds)


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


def claimed_with_the_credit(account_id: str, provider_id: str) -> Callable[[UnitOfWork, datetime], Awaitable[None]]:
    """claim_payment as a guard of the credit's own transaction (WalletChange.guard): a mismatch
    rolls the credit back with it, and the credit's replay needs no claim (it committed with one)."""
    async def claim(uow: UnitOfWork, now: datetime) -> None:
        owner = await uow.payment_profiles.claim_payment(provider_id, account_id, now)
        if owner != account_id:
            raise PaymentMismatch(f"{provider_id} was credited to another account")

    return claim


async def claim_upgrade(deps: Dependencies, change: PlanChange, invoice_id: str) -> None:
    """A recorded upgrade is credited by one invoice: another one billing the same price (the item
    moved down and back up by someone with a key) is a mismatch."""
    async with deps.storage.transaction() as uow:
        claimed = await uow.plan_changes.claim(change.account_id, change.price_id, invoice_id)
        await uow.commit()
    if not claimed:
        raise PaymentMismatch(f"the upgrade of price {change.price_id} was credited by another invoice")


async def credit_package(
    deps: Dependencies, account_id: str, paid: PackagePaid,
    also: Callable[[UnitOfWork, CreditResult, datetime], Awaitable[None]] | None = None,
) -> CreditResult:
    """`also`: written in the credit's transaction once it is applied (never for a replay)."""
    package = sold_package(deps.catalog, paid)
    seconds = package.minutes * SECONDS_PER_MINUTE
    if not 0 < seconds <= GRANT_SECONDS_MAX:
        raise InvalidArgument("package_minutes out of range", field="package_minutes")
    name = package.name
    validity = timedelta(days=deps.catalog.package_validity_days)

    def credit(wallet: Wallet, now: datetime) -> CreditResult:
        # Valid from the payment, not from the delivery; a delivery so late the package would
        # already have expired gets a full validity from now rather than nothing.
        expires_at = paid.paid_at + validity if paid.paid_at + validity > now else now + validity
        bucket = wallet.credit(
            Source.PACKAGE, seconds, expires_at=expires_at, now=now, event_type=EventType.PACKAGE_CREDIT,
            reason=f"{name} package purchase",
            metadata={"payment_id": paid.payment_id, "package_key": paid.package_key,
                      "amount_cents": paid.amount_cents, "currency": paid.currency,
                      **({"auto_topup_seq": paid.topup_seq} if paid.topup_seq is not None else {})},
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
        guard=claimed_with_the_credit(account_id, paid.payment_id), also=also,
    ))


async def credit_invoice(
    deps: Dependencies, account_id: str, invoice: InvoicePaid, change: PlanChange | None = None
) -> CreditResult:
    """A paid period: its plan's minutes until the period's end, and the plan becomes the
    account's. An upgrade's proration invoice (matched to the upgrade this service asked for,
    `change`) credits the difference for the part of the period it bills."""
    if invoice.billing_reason == UPGRADE_REASON:
        upgrade = paid_upgrade(deps.catalog, invoice, change)
        assert change is not None
        plan, seconds = upgrade.plan, upgrade.seconds
        period_start, period_end = change.period_start, change.period_end
    else:
        plan = sold_plan_period(deps.catalog, invoice)
        seconds = plan.minutes * SECONDS_PER_MINUTE
        period_start, period_end = invoice.period_start, invoice.period_end
    await claim_payment(deps, account_id, invoice.invoice_id)
    if change is not None:
        await claim_upgrade(deps, change, invoice.invoice_id)

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
        subscription = with_period(account.subscription, period_start, period_end)
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
    for _ in range(REFUND_ATTEMPTS):
        try:
            return await _refund_once(deps, account_id, refund, await _rollover_of_payment(deps, account_id, refund.payment_id))
        except _PeriodClosedMeanwhile:
            continue  # read again: the rollover bucket that close made is found now
    raise Unavailable(f"the period of {refund.payment_id} kept closing under its refund; retry")


class _PeriodClosedMeanwhile(Exception):
    pass


@dataclass(frozen=True)
class _RolloverRead:
    bucket_seq: int | None  # the rollover bucket the payment's period moved into, when read
    closes_at: datetime | None  # the account's next period close, when read


async def _refund_once(
    deps: Dependencies, account_id: str, refund: ChargeRefunded, rolled: _RolloverRead | None
) -> CreditResult:
    rolled_into = None if rolled is None else rolled.bucket_seq

    def take_back(wallet: Wallet, now: datetime) -> CreditResult:
        payment = wallet.payments.get(refund.payment_id)
        if payment is None:
            raise PaymentNotCredited(f"payment {refund.payment_id} has not been credited yet", field="payment_intent")
        closed_by_this_change = any(
            e.type == EventType.ROLLOVER_CREATED and e.metadata.get("from_bucket_seq") == payment.bucket_seq
            for e in wallet.new_entries
        )
        if (rolled is not None and rolled_into is None and not closed_by_this_change
                and wallet.loaded_account.subscription.closes_at != rolled.closes_at):
            # Another change closed a period between the read of the rollover and this change: the
            # refund would miss the rollover bucket that close made.
            raise _PeriodClosedMeanwhile()
        buckets = credited_buckets(wallet, payment.bucket_seq, rolled_into, now)
        # Seconds an open hold reserves on them are the payment's too: a refund takes them back
        # from the hold (holds.surrender), else holding a package would shield it from its refund.
        step = apply_refund(payment, refund.refunded_cents, sum(b.remaining_seconds for b in buckets))
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
            left = step.seconds_to_remove
            for bucket in buckets:  # the payment's own bucket first, then the rollover it became
                taken = min(left, bucket.remaining_seconds)
                if taken > bucket.free_seconds:
                    holds.surrender(wallet, bucket.bucket_seq, taken - bucket.free_seconds, now)
                if taken:
                    wallet.take_from_bucket(bucket.bucket_seq, taken, EventType.ADJUSTMENT, "Refund", now, metadata)
                left -= taken
            assert left == 0, "a refund takes only what its buckets hold"
        wallet.record_payment(step.payment)
        detail = f"{step.unrecoverable_seconds}s were already spent or expired" if step.unrecoverable_seconds else ""
        return CreditResult(account_id, refund.payment_id, -step.seconds_to_remove, payment.bucket_seq, detail)

    key = f"refund:{refund.payment_id}:{refund.refunded_cents}"
    return await change_wallet(deps, WalletChange(
        account_id, take_back, prepare=account_upkeep(deps.catalog), payment_ids=(refund.payment_id,), loads_holds=True,
        idempotency=Idempotency(key, key, CREDIT_ANSWERS),
    ))


def credited_buckets(wallet: Wallet, bucket_seq: int, rolled_into: int | None, now: datetime) -> list[Bucket]:
    """The usable buckets a payment's credit became: its own bucket, and the rollover bucket its
    unused seconds moved into when its period closed (before this change, `rolled_into`, or by
    this change's own upkeep, found among the entries it wrote)."""
    seqs = [bucket_seq]
    if rolled_into is not None:
        seqs.append(rolled_into)
    seqs += [
        e.bucket_seq for e in wallet.new_entries
        if e.type == EventType.ROLLOVER_CREATED and e.seconds > 0 and e.metadata.get("from_bucket_seq") == bucket_seq
    ]
    live = {b.bucket_seq: b for b in wallet.buckets if b.remaining_seconds > 0 and not b.is_expired(now)}
    return [live[seq] for seq in dict.fromkeys(seqs) if seq in live]


async def _rollover_of_payment(deps: Dependencies, account_id: str, payment_id: str) -> _RolloverRead | None:
    """None for a payment that is no subscription period's (nothing of it rolls over)."""
    async with deps.storage.reader() as uow:
        payment = await uow.payments.get(account_id, payment_id)
        if payment is None or payment.kind != PaymentKind.SUBSCRIPTION:
            return None
        wallet, _ = await uow.wallets.read(account_id, deps.clock.now())
        closes_at = None if wallet is None else wallet.account.subscription.closes_at
        return _RolloverRead(await uow.history.rollover_bucket_of(account_id, payment.bucket_seq), closes_at)
