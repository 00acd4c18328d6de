"""The payment provider port in memory: checkouts and subscriptions recorded, webhooks
"verified" by a fixed signature string, parsed by the real Stripe event parser."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import datetime
from typing import Mapping

from billing.adapters.stripe_provider_events import parse_verified_event
from billing.service.provider_events import (
    CheckoutItem, CheckoutRequest, CheckoutSession, ProviderEvent, RefundCreated, SubscriptionSnapshot, TopupCharge,
    TopupOutcome,
)
from billing.service.ports import InvalidWebhook, Unavailable

VALID_SIGNATURE = "t=1,v1=valid"


class FakePaymentProvider:
    def __init__(self) -> None:
        self.customers: dict[str, str] = {}
        self.checkouts: list[tuple[CheckoutRequest, str, str]] = []
        self.sessions_by_key: dict[tuple[str, str], CheckoutSession] = {}
        self.subscriptions: dict[str, SubscriptionSnapshot] = {}
        self.plan_changes: list[tuple[str, str, bool]] = []
        self.resumed: list[str] = []
        self.plan_prices: list[str] = []
        self.upgrades_pay_later = False  # an upgrade's payment needs its owner (3-D Secure): a pending update  # the price of each change, as create_plan_price made it
        self.invoice_payments: dict[str, str] = {}  # payment intent -> invoice
        self.refunds: dict[str, list[tuple[str, int]]] = {}  # charge -> (refund id, amount), oldest first
        self.saved_cards: set[str] = set()  # customers with a payment method
        self.charges: dict[tuple[str, int], TopupCharge] = {}  # by (account, seq): idempotent, as Stripe's key
        self.charge_calls = 0
        self.created_refunds: dict[str, tuple[str, int, dict[str, str]]] = {}  # by idempotency key
        # Every refund made: (refund id, payment, amount, metadata); what find_refund looks through.
        self.issued_refunds: list[tuple[str, str, int, dict[str, str]]] = []
        self._refund_ids_by_key: dict[str, str] = {}  # Stripe's memory of its idempotency keys (24 h)
        self.refund_failures: list[BaseException] = []  # raised by the next create_refund calls, in order
        self.next_outcomes: list[str] = []  # succeeded (default), declined, requires_action, outage

    async def create_customer(self, account_id: str) -> str:
        return self.customers.setdefault(account_id, f"cus_{account_id}")

    async def create_checkout(self, request: CheckoutRequest, success_url: str, cancel_url: str) -> CheckoutSession:
        if request.idempotency_key and (request.account_id, request.idempotency_key) in self.sessions_by_key:
            return self.sessions_by_key[(request.account_id, request.idempotency_key)]
        self.checkouts.append((request, success_url, cancel_url))
        session = CheckoutSession(f"cs_{len(self.checkouts)}", f"https://checkout.test/cs_{len(self.checkouts)}")
        if request.idempotency_key:
            self.sessions_by_key[(request.account_id, request.idempotency_key)] = session
        return session

    async def subscription(self, subscription_id: str) -> SubscriptionSnapshot:
        return self.subscriptions[subscription_id]

    async def cancel_at_period_end(self, subscription_id: str, idempotency_key: str) -> SubscriptionSnapshot:
        snapshot = dataclasses.replace(self.subscriptions[subscription_id], cancel_at_period_end=True)
        self.subscriptions[subscription_id] = snapshot
        return snapshot

    async def resume_subscription(self, subscription_id: str, idempotency_key: str) -> SubscriptionSnapshot:
        self.resumed.append(subscription_id)
        snapshot = dataclasses.replace(self.subscriptions[subscription_id], cancel_at_period_end=False)
        self.subscriptions[subscription_id] = snapshot
        return snapshot

    async def create_plan_price(self, snapshot: SubscriptionSnapshot, item: CheckoutItem, idempotency_key: str) -> str:
        return f"price_{item.key}_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:12]

    async def change_plan(
        self, snapshot: SubscriptionSnapshot, price_id: str, item: CheckoutItem, previous_plan_key: str,
        immediately: bool, idempotency_key: str,
    ) -> SubscriptionSnapshot:
        self.plan_changes.append((previous_plan_key, item.key, immediately))
        self.plan_prices.append(price_id)
        if immediately and self.upgrades_pay_later:
            return snapshot  # a pending update: nothing changes until its invoice is paid
        changed = dataclasses.replace(snapshot, plan_key=item.key, cancel_at_period_end=False,
                                      unit_amount_cents=item.unit_amount_cents)
        self.subscriptions[snapshot.subscription_id] = changed
        return changed

    def verify_webhook(self, payload: bytes, signature: str) -> ProviderEvent:
        if signature != VALID_SIGNATURE:
            raise InvalidWebhook("bad signature")
        return parse_verified_event(payload)

    def read_verified_event(self, payload: bytes) -> ProviderEvent:
        return parse_verified_event(payload)

    async def create_refund(
        self, payment_id: str, amount_cents: int, idempotency_key: str, metadata: Mapping[str, str],
    ) -> RefundCreated:
        """Idempotent per key while the key is remembered, as Stripe's; records the request in
        created_refunds (by key) and issued_refunds (every refund made)."""
        if self.refund_failures:
            raise self.refund_failures.pop(0)
        if idempotency_key not in self._refund_ids_by_key:
            self.created_refunds[idempotency_key] = (payment_id, amount_cents, dict(metadata))
            refund_id = f"re_{len(self.issued_refunds) + 1:04d}" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:8]
            self.issued_refunds.append((refund_id, payment_id, amount_cents, dict(metadata)))
            self._refund_ids_by_key[idempotency_key] = refund_id
        refund_id = self._refund_ids_by_key[idempotency_key]
        [amount] = [amount for rid, _, amount, _ in self.issued_refunds if rid == refund_id]
        return RefundCreated(refund_id, amount, "USD", "succeeded")

    async def find_refund(self, payment_id: str, metadata_key: str, metadata_value: str) -> RefundCreated | None:
        for refund_id, paid, amount, metadata in reversed(self.issued_refunds):
            if paid == payment_id and metadata.get(metadata_key) == metadata_value:
                return RefundCreated(refund_id, amount, "USD", "succeeded")
        return None

    def forget_idempotency_keys(self) -> None:
        """What 24 hours do to Stripe's idempotency keys: the same key makes a new refund."""
        self._refund_ids_by_key.clear()

    async def create_setup_checkout(
        self, account_id: str, customer_id: str, success_url: str, cancel_url: str
    ) -> CheckoutSession:
        return CheckoutSession(f"cs_setup_{account_id}", f"https://checkout.test/setup/{account_id}")

    async def refunds_of_charge(self, charge_id: str) -> tuple[tuple[str, int], ...]:
        return tuple(self.refunds.get(charge_id, ()))

    async def invoice_of_payment(self, payment_id: str) -> str | None:
        return self.invoice_payments.get(payment_id)

    async def has_live_subscription(self, customer_id: str) -> bool:
        return any(s.customer_id == customer_id and s.status not in ("canceled", "incomplete_expired")
                   for s in self.subscriptions.values())

    async def has_payment_method(self, customer_id: str) -> bool:
        return customer_id in self.saved_cards

    async def charge_off_session(self, charge: TopupCharge) -> TopupOutcome:
        self.charge_calls += 1
        outcome = self.next_outcomes.pop(0) if self.next_outcomes else "succeeded"
        if outcome == "outage":
            raise Unavailable("provider down")
        self.charges.setdefault((charge.account_id, charge.seq), charge)
        payment_id = f"pi_topup_{charge.account_id}_{charge.seq}"
        if outcome == "declined":
            return TopupOutcome("declined", payment_id, "card_declined")
        if outcome == "requires_action":
            return TopupOutcome("requires_action", payment_id, "authentication_required")
        return TopupOutcome("succeeded", payment_id)

    def set_subscription(
        self, subscription_id: str, account_id: str, plan_key: str, status: str, start: datetime, end: datetime,
        cancel_at_period_end: bool = False, unit_amount_cents: int | None = None,
    ) -> None:
        self.subscriptions[subscription_id] = SubscriptionSnapshot(
            subscription_id=subscription_id, customer_id=f"cus_{account_id}", account_id=account_id, status=status,
            plan_key=plan_key, cancel_at_period_end=cancel_at_period_end, period_start=start, period_end=end,
            item_id="si_1", currency="USD", unit_amount_cents=unit_amount_cents,
        )
