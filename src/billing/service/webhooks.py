"""A payment provider's webhook delivery: verified, applied once, recorded.

Applying is idempotent by itself (each effect is a wallet change keyed by the provider's ids),
so two replicas handling one event at once, or a redelivery after a crash between the effect
and its record, still apply it once. The record of handled events makes a redelivery cheap
and keeps, for an operator, what could not be applied. A package's credit and its record commit
in one transaction (the common delivery: one read, one transaction).

Answers: 2xx for what was applied, a duplicate, or what retrying cannot change (an event for a
customer or account this service does not know, one that does not match what was sold: both
recorded with the payload for an operator); 400 for a bad signature (nothing written, a log
line) and for a signed payload that cannot be read (recorded once, 400 again on redelivery);
409/503 when a retry can help (a refund that arrived before its payment, the database down).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Awaitable, Callable

from billing.domain.errors import (
    AccountNotFound, BillingError, InvalidArgument, PaymentNotCredited, PaymentProviderRefused,
)
from billing.service.dependencies import Dependencies
from billing.service.payment_credits import (
    UPGRADE_REASON, CreditResult, credit_invoice, credit_package, refund_payment,
)
from billing.service.provider_events import (
    ChargeRefunded, DeliveryLookup, InvoicePaid, NotForUs, PackagePaid, PaymentMismatch, PlanChange, ProviderEvent,
    SubscriptionChanged, TopupFailed,
)
from billing.service.ports import InvalidWebhook, MalformedWebhook, Unavailable, UnitOfWork, outage_log
from billing.service.subscriptions import apply_snapshot
from billing.service.topup_payments import topup_failed

log = logging.getLogger(__name__)
REFUSED_LINES_PER_INTERVAL = 100  # api/logs.py's interval (5 s): 20 lines/s at most, the rest counted
PRICES_LOOKED_UP_MAX = 4  # an upgrade's invoice bills one new price; a signed invoice may list many

PROCESSED, DUPLICATE, IGNORED, MISMATCH, MALFORMED = "processed", "duplicate", "ignored", "mismatch", "malformed"


@dataclass(frozen=True)
class WebhookOutcome:
    outcome: str  # processed, duplicate, ignored, mismatch
    detail: str = ""


class UnknownCustomer(Exception):
    pass


async def handle_webhook(deps: Dependencies, payload: bytes, signature: str) -> WebhookOutcome:
    provider = deps.payment_provider()
    try:
        event = provider.verify_webhook(payload, signature)
    except InvalidWebhook as refused:
        deps.metrics.webhook("bad_signature")
        # One line per refused delivery (nothing of it is stored): who probes the endpoint shows here;
        # past REFUSED_LINES_PER_INTERVAL in an interval, a flood is one line with its count.
        log.warning("webhook refused: %s (%d bytes)", refused, len(payload),
                    extra=outage_log("webhook_refused", burst=REFUSED_LINES_PER_INTERVAL))
        raise InvalidArgument("the Stripe-Signature header does not verify", field="stripe-signature") from None
    except MalformedWebhook as malformed:
        return await _malformed(deps, payload, malformed)
    async with deps.storage.reader() as uow:
        # One statement: whether the event was handled, and whose its customer is.
        seen = await uow.provider_events.lookup(event.event_id, event.customer_id)
    if seen.outcome == MALFORMED:
        raise InvalidArgument("the event could not be read; kept for an operator", field="payload")
    if seen.outcome is not None:
        deps.metrics.webhook("duplicate")
        return WebhookOutcome(DUPLICATE)
    record = RecordWithCredit(event.event_id, event.type)
    applied = await apply_verified(deps, event, seen, record)
    # Written with the credit only when the credit stood: a refusal after the record's INSERT (any
    # BillingError: its transaction rolled back) leaves the outcome to be recorded on its own.
    if not (record.written and applied.recorded == PROCESSED):
        await _record(deps, event.event_id, event.type, applied.recorded, applied.account_id, applied.detail,
                      payload if applied.keeps_payload else None)
    return applied.answer


@dataclass
class RecordWithCredit:
    """A delivery's record written in the transaction of the credit it made (WalletChange.also):
    a crash can no longer come between the credit and its record, and the delivery commits once.
    Not written for a replayed credit (the transaction wrote nothing), nor for any outcome that
    changes no wallet (ignored, mismatch, invalid): those are recorded on their own, as before."""

    event_id: str
    event_type: str
    written: bool = False  # its INSERT ran: it stands once change_wallet returned (the transaction committed)

    def with_credit(self, account_id: str) -> Callable[[UnitOfWork, CreditResult, datetime], Awaitable[None]]:
        async def write(uow: UnitOfWork, result: CreditResult, now: datetime) -> None:
            await uow.provider_events.record(self.event_id, self.event_type, PROCESSED, account_id, _credited(result), now)
            self.written = True

        return write


@dataclass(frozen=True)
class Applied:
    """What a verified event did: the outcome and detail recorded, and the answer to the provider."""

    recorded: str
    account_id: str | None
    detail: str
    answer: WebhookOutcome
    keeps_payload: bool  # not applied: its payload is kept for an operator


async def apply_verified(
    deps: Dependencies, event: ProviderEvent, seen: DeliveryLookup | None = None, record: RecordWithCredit | None = None,
) -> Applied:
    """Applies a verified event (a delivery, or a recorded one an operator reprocesses): each effect
    is a wallet change keyed by the provider's ids, so applying it again applies nothing twice.
    PaymentNotCredited and Unavailable are raised (a retry can help); the rest is an outcome.
    `seen`: the delivery's first read (its customer's account), else read here; `record`: the
    delivery's record, written with a package's credit."""
    try:
        account_id, detail = await _apply(deps, event, seen, record)
    except (UnknownCustomer, AccountNotFound) as unknown:
        deps.metrics.webhook("ignored")
        return Applied(IGNORED, None, f"not applied: {unknown}",
                       WebhookOutcome(IGNORED, "no account for this event; recorded for an operator"), True)
    except PaymentMismatch as mismatch:
        deps.metrics.webhook("mismatch")
        return Applied(MISMATCH, None, f"not credited: {mismatch}",
                       WebhookOutcome(MISMATCH, "the event does not match what was sold; kept for an operator"), True)
    except PaymentNotCredited:
        deps.metrics.webhook("failed")
        raise  # retried by the provider: its payment's credit is on its way
    except BillingError as invalid:
        deps.metrics.webhook("invalid")
        return Applied("invalid", None, f"{invalid.reason}: {invalid.message}",
                       WebhookOutcome(IGNORED, "the event could not be applied; recorded for an operator"), True)
    outcome = IGNORED if account_id is None else PROCESSED
    deps.metrics.webhook(outcome)
    return Applied(outcome, account_id, detail, WebhookOutcome(outcome, detail), False)


async def _malformed(deps: Dependencies, payload: bytes, malformed: MalformedWebhook) -> WebhookOutcome:
    """Signed by the provider and unreadable: kept for an operator (once), answered 400 every time."""
    deps.metrics.webhook("invalid")
    event_id = malformed.event_id or "unreadable:" + hashlib.sha256(payload).hexdigest()[:32]
    await _record(deps, event_id, malformed.event_type, MALFORMED, None, str(malformed), payload)
    raise InvalidArgument(f"the event could not be read ({malformed}); kept for an operator", field="payload")


def _credited(result: CreditResult) -> str:
    return f"credited {result.seconds}s" + (" (replayed)" if result.replayed else "")


async def _apply(
    deps: Dependencies, event: ProviderEvent, seen: DeliveryLookup | None, record: RecordWithCredit | None,
) -> tuple[str | None, str]:
    match event.event:
        case PackagePaid() as paid:
            account_id = await _account(deps, paid.account_id, paid.customer_id, seen)
            also = None if record is None else record.with_credit(account_id)
            return account_id, _credited(await credit_package(deps, account_id, paid, also))
        case InvoicePaid() as invoice:
            # Recorded after the credit, on its own: an upgrade may resume a cancellation at the
            # provider after it, which a redelivery must be able to retry.
            account_id = await _account(deps, invoice.account_id, invoice.customer_id, seen)
            change = await _plan_change_of(deps, account_id, invoice)
            result = await credit_invoice(deps, account_id, invoice, change)
            if change is not None and change.resume_cancellation:
                await _resume_cancellation(deps, account_id, invoice)
            return account_id, _credited(result)
        case SubscriptionChanged() as changed:
            account_id = await _account(deps, changed.account_id, changed.customer_id, seen)
            snapshot = await deps.payment_provider().subscription(changed.subscription_id)
            status = await apply_snapshot(deps, account_id, snapshot)
            return account_id, f"subscription {status.subscription_status}"
        case TopupFailed() as failed:
            account_id = await _account(deps, failed.account_id, failed.customer_id, seen)
            await topup_failed(deps, account_id, failed.topup_seq, failed.code)
            return account_id, f"auto top-up #{failed.topup_seq} failed: {failed.code}"
        case ChargeRefunded() as refund:
            account_id = await _account(deps, refund.account_id, refund.customer_id, seen)
            result = await refund_payment(deps, account_id, await _credited_as(deps, account_id, refund))
            return account_id, f"took back {-result.seconds}s {result.detail}".strip()
        case NotForUs() as other:
            return None, other.why
    raise AssertionError(f"unhandled payment event {event.event!r}")


async def _plan_change_of(deps: Dependencies, account_id: str, invoice: InvoicePaid) -> PlanChange | None:
    """The upgrade an upgrade's invoice bills: found by the price this service created for it."""
    if invoice.billing_reason != UPGRADE_REASON:
        return None
    async with deps.storage.reader() as uow:
        for price_id in invoice.price_ids[:PRICES_LOOKED_UP_MAX]:
            change = await uow.plan_changes.get(account_id, price_id)
            if change is not None:
                return change
    return None


async def _resume_cancellation(deps: Dependencies, account_id: str, invoice: InvoicePaid) -> None:
    """An upgrade of a subscription set to cancel resumes it once paid (never before: an unpaid
    upgrade leaves the cancellation as the user set it)."""
    provider = deps.payment_provider()
    snapshot = await provider.subscription(invoice.subscription_id)
    if snapshot.cancel_at_period_end and snapshot.status not in ("canceled", "incomplete_expired"):
        snapshot = await provider.resume_subscription(invoice.subscription_id, f"resume:{invoice.invoice_id}")
    await apply_snapshot(deps, account_id, snapshot)


async def _credited_as(deps: Dependencies, account_id: str, refund: ChargeRefunded) -> ChargeRefunded:
    """The refund, naming the payment record it takes back from: a subscription period's credit is
    recorded under its invoice when the webhook did not name the invoice's payment (Stripe sends
    invoice.payments only when asked for), so a refund of that payment is looked up at Stripe."""
    if not refund.refunds:  # the payload did not list them (API versions since 2022-11-15): the adjustment names them
        refund = dataclasses.replace(refund, refunds=await _refunds_of_charge(deps, refund.charge_id))
    async with deps.storage.reader() as uow:
        known = await uow.payments.get(account_id, refund.payment_id)
    if known is not None:
        return refund
    invoice_id = await deps.payment_provider().invoice_of_payment(refund.payment_id)
    return refund if invoice_id is None else dataclasses.replace(refund, payment_id=invoice_id)


async def _account(
    deps: Dependencies, claimed_account_id: str | None, customer_id: str | None, seen: DeliveryLookup | None,
) -> str:
    """The account of the event's customer (the provider signs the customer; metadata is only what
    someone wrote): metadata naming another account is a mismatch, never a second credit."""
    if not customer_id:
        raise PaymentMismatch("the event names no customer")
    if seen is not None:
        found = seen.customer_account
    else:
        async with deps.storage.reader() as uow:
            found = await uow.payment_profiles.account_of_customer(customer_id)
    if found is None:
        raise UnknownCustomer(f"customer {customer_id!r} belongs to no account")
    if claimed_account_id is not None and claimed_account_id != found:
        raise PaymentMismatch(f"metadata names user {claimed_account_id[:64]!r}, the customer is {found!r}'s")
    return found


async def _record(
    deps: Dependencies, event_id: str, event_type: str, outcome: str, account_id: str | None, detail: str,
    payload: bytes | None,
) -> None:
    if outcome != PROCESSED:
        log.warning("webhook %s (%s) %s: %s", event_id, event_type, outcome, detail)
    async with deps.storage.single_write() as uow:  # one insert, atomic by itself
        await uow.provider_events.record(event_id, event_type, outcome, account_id, detail, deps.clock.now(), payload)
        await uow.commit()


async def _refunds_of_charge(deps: Dependencies, charge_id: str) -> tuple[tuple[str, int], ...]:
    """The refund ids only name the refund in the ledger: a failed lookup (Stripe refusing it, a
    restricted key without refund access, an outage) must not keep the refund itself from being
    applied, or Stripe would redeliver it for days while the seconds stay spendable."""
    try:
        return await deps.payment_provider().refunds_of_charge(charge_id)
    except (PaymentProviderRefused, Unavailable) as failed:
        log.warning("refunds of charge %s not listed (%s); the adjustment names the charge only", charge_id, failed)
        return ()
