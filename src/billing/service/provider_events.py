"""What the payment provider tells the service, in the service's words.

The provider adapter (adapters/stripe_payments.py) turns each verified webhook delivery into
one of these; the use cases never see the provider's JSON. Amounts are minor units, instants
UTC datetimes; `account_id` is what the provider's metadata names (None: resolve it from the
customer).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


class PaymentMismatch(Exception):
    """A verified event that does not match what this service sold: another price or currency
    than the catalog's, another account than its customer's, a payment already credited to
    another account. Kept for an operator with this reason, never credited."""


@dataclass(frozen=True)
class PackagePaid:
    """A one-time payment for a package succeeded (Checkout completed and paid, or its
    PaymentIntent succeeded: either or both arrive, in any order)."""

    payment_id: str
    account_id: str | None
    customer_id: str | None
    package_key: str
    package_minutes: int
    amount_cents: int
    currency: str
    paid_at: datetime
    topup_seq: int | None = None  # an auto top-up's payment: which attempt


@dataclass(frozen=True)
class PlanChange:
    """An upgrade this service asked the provider for: the price it created for the new plan and
    the period it prorates. An upgrade's invoice is credited only when it bills this price."""

    account_id: str
    price_id: str
    subscription_id: str
    from_plan_key: str  # the plan of the subscription item's price when the upgrade was asked for
    to_plan_key: str
    currency: str
    from_price_cents: int  # that price: Stripe prorates from it (it may not be the plan the account paid for)
    period_start: datetime
    period_end: datetime
    resume_cancellation: bool  # the subscription was set to cancel: paid, the upgrade resumes it
    requested_at: datetime


@dataclass(frozen=True)
class TopupFailed:
    """An auto top-up's payment failed after it was created (an asynchronous decline)."""

    payment_id: str
    account_id: str | None
    customer_id: str | None
    topup_seq: int
    code: str


@dataclass(frozen=True)
class InvoicePaid:
    """A subscription invoice was paid: a new period (or an upgrade's proration) is paid for."""

    invoice_id: str
    payment_id: str  # the invoice's payment, what a refund names; the invoice id when unknown
    account_id: str | None
    customer_id: str | None
    subscription_id: str
    plan_key: str
    previous_plan_key: str | None  # set on an upgrade's proration invoice
    billing_reason: str  # subscription_create, subscription_cycle, subscription_update, ...
    amount_cents: int
    currency: str
    period_start: datetime
    period_end: datetime
    paid_at: datetime
    # What the invoice billed before any customer balance or minimum-charge carry-over (amount_cents is
    # what was paid), and the prices its lines bill: an upgrade is matched to its PlanChange by price.
    total_cents: int = 0
    price_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class SubscriptionChanged:
    """Something about a subscription changed (created, updated, deleted, a payment failed):
    the service reads its current state rather than trusting the order of deliveries."""

    subscription_id: str
    account_id: str | None
    customer_id: str | None


@dataclass(frozen=True)
class ChargeRefunded:
    payment_id: str
    charge_id: str
    account_id: str | None
    customer_id: str | None
    amount_cents: int
    refunded_cents: int  # cumulative
    # The charge's refunds (id, amount), oldest first, when known: a charge.refunded payload carries them
    # under refunds.data only for API versions before 2022-11-15 or when expanded; else asked of the provider.
    refunds: tuple[tuple[str, int], ...] = ()

    def refund_ids(self) -> tuple[str, ...]:
        """The refunds that make up refunded_cents, oldest first: the last one is this event's refund."""
        named, total = [], 0
        for refund_id, amount in self.refunds:
            if total >= self.refunded_cents:
                break
            named.append(refund_id)
            total += amount
        return tuple(named)


@dataclass(frozen=True)
class NotForUs:
    """An event type the service does not act on, or one for a purchase it did not start."""

    why: str


PaymentEvent = PackagePaid | TopupFailed | InvoicePaid | SubscriptionChanged | ChargeRefunded | NotForUs


@dataclass(frozen=True)
class ProviderEvent:
    event_id: str
    type: str
    created_at: datetime
    event: PaymentEvent

    @property
    def customer_id(self) -> str | None:
        """The provider's customer the event names (the account is found from it)."""
        return None if isinstance(self.event, NotForUs) else self.event.customer_id


@dataclass(frozen=True)
class DeliveryLookup:
    """What a webhook delivery reads first, in one statement."""

    outcome: str | None  # the event's recorded outcome; None: not handled yet
    customer_account: str | None  # the account of the customer it names; None: unknown, or none named


@dataclass(frozen=True)
class SubscriptionSnapshot:
    """A subscription as the provider holds it now."""

    subscription_id: str
    customer_id: str
    account_id: str | None
    status: str  # active, past_due, canceled, incomplete, trialing, unpaid, ...
    plan_key: str  # the plan billed from the next invoice on
    cancel_at_period_end: bool
    period_start: datetime
    period_end: datetime
    item_id: str  # the subscription item a plan change replaces
    currency: str  # ISO 4217, upper case
    unit_amount_cents: int | None = None  # the item's price now: what an upgrade is prorated from


@dataclass(frozen=True)
class CheckoutItem:
    """What a checkout sells, priced by the server from the catalog."""

    kind: str  # "package" (one-time payment) or "subscription"
    key: str
    name: str
    minutes: int
    currency: str
    unit_amount_cents: int


@dataclass(frozen=True)
class CheckoutRequest:
    account_id: str
    customer_id: str
    item: CheckoutItem
    idempotency_key: str | None  # the provider's own key is derived from it


@dataclass(frozen=True)
class CheckoutSession:
    session_id: str
    url: str


@dataclass(frozen=True)
class TopupCharge:
    """An auto top-up attempt: the package bought off-session with the customer's saved card."""

    account_id: str
    customer_id: str
    seq: int
    item: CheckoutItem


@dataclass(frozen=True)
class TopupOutcome:
    status: str  # succeeded, processing (credit comes with the webhook), declined, requires_action
    payment_id: str | None
    code: str | None = None  # the provider's decline code


@dataclass(frozen=True)
class RefundCreated:
    """A refund the provider accepted (it reaches the balance with its charge.refunded webhook)."""

    refund_id: str
    amount_cents: int
    currency: str
    status: str  # pending, succeeded, ... as the provider says
