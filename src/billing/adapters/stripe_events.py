"""Stripe's JSON (webhook events, subscriptions) as the service's payment events.

Written for API version 2026-10-28 (the SDK's): a subscription's period lives on its items,
an invoice names its subscription under parent.subscription_details and its payment under
payments; the older places (subscription.current_period_*, invoice.subscription,
invoice.payment_intent) are read as fallbacks, so an account pinned to an older version works.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from billing.service.payment_events import (
    ChargeRefunded, InvoicePaid, NotForUs, PackagePaid, PaymentEvent, ProviderEvent, SubscriptionChanged,
    SubscriptionSnapshot, TopupFailed,
)
from billing.service.ports import MalformedWebhook

SUBSCRIPTION_EVENTS = frozenset({
    "customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted",
    "customer.subscription.paused", "customer.subscription.resumed", "invoice.payment_failed",
})
PACKAGE = "package"


def parse_verified_event(payload: bytes) -> ProviderEvent:
    try:
        event = json.loads(payload)
    except ValueError as error:
        raise MalformedWebhook(f"the payload is not JSON: {error}") from None
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not isinstance(event.get("type"), str):
        raise MalformedWebhook("the payload is not a Stripe event")
    event_id, event_type = event["id"], event["type"]
    try:
        obj = event["data"]["object"]
        created_at = _instant(event["created"])
        parsed = _parse(event_type, obj, created_at)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise MalformedWebhook(f"{event_type} is missing or has a bad {error}", event_id, event_type) from None
    return ProviderEvent(event_id=event_id, type=event_type, created_at=created_at, event=parsed)


def _parse(event_type: str, obj: dict[str, Any], created_at: datetime) -> PaymentEvent:
    metadata = obj.get("metadata") or {}
    if event_type == "payment_intent.succeeded":
        if metadata.get("purpose") != PACKAGE:
            return NotForUs("a payment that is not a package purchase")
        return _package_paid(obj["id"], obj, metadata, obj.get("amount_received") or obj["amount"], created_at)
    if event_type == "payment_intent.payment_failed":
        if metadata.get("purpose") != PACKAGE or not metadata.get("topup_seq"):
            return NotForUs("a failed payment that is not an auto top-up")
        error = obj.get("last_payment_error") or {}
        return TopupFailed(
            payment_id=obj["id"], account_id=metadata.get("user_id"), customer_id=_customer(obj),
            topup_seq=int(metadata["topup_seq"]), code=str(error.get("code") or error.get("decline_code") or "declined"),
        )
    if event_type in ("checkout.session.completed", "checkout.session.async_payment_succeeded"):
        if obj.get("mode") == "subscription" and obj.get("subscription"):
            return SubscriptionChanged(_id(obj["subscription"]), metadata.get("user_id"), _customer(obj))
        if obj.get("mode") != "payment" or metadata.get("purpose") != PACKAGE:
            return NotForUs("a checkout that is not a package purchase")
        if obj.get("payment_status") != "paid":
            return NotForUs("checkout completed, payment still pending")
        payment_id = _id(obj["payment_intent"]) if obj.get("payment_intent") else obj["id"]  # nothing charged
        return _package_paid(payment_id, obj, metadata, obj["amount_total"], created_at)
    if event_type == "invoice.paid":
        return _invoice_paid(obj, created_at)
    if event_type in SUBSCRIPTION_EVENTS:
        if event_type.startswith("invoice."):
            subscription_id, sub_metadata = _invoice_subscription(obj)
            if subscription_id is None:
                return NotForUs("an invoice without a subscription")
            return SubscriptionChanged(subscription_id, sub_metadata.get("user_id"), _customer(obj))
        return SubscriptionChanged(obj["id"], metadata.get("user_id"), _customer(obj))
    if event_type == "charge.refunded":
        if not obj.get("payment_intent"):
            return NotForUs("a refunded charge without a payment intent")
        return ChargeRefunded(
            payment_id=_id(obj["payment_intent"]), charge_id=obj["id"], account_id=metadata.get("user_id"),
            customer_id=_customer(obj), amount_cents=int(obj["amount"]), refunded_cents=int(obj["amount_refunded"]),
            refunds=refunds_of(obj.get("refunds")),
        )
    return NotForUs(f"{event_type} is not used")


def refunds_of(listed: Any) -> tuple[tuple[str, int], ...]:
    """A list of refunds as (id, amount), oldest first, without failed or canceled ones (not in amount_refunded)."""
    data = (listed.get("data") or []) if isinstance(listed, dict) else []
    kept = [r for r in data if isinstance(r, dict) and r.get("status") not in ("failed", "canceled")]
    kept.reverse()  # Stripe lists newest first; the stable sort keeps that order within a second
    return tuple((str(r["id"]), int(r["amount"])) for r in sorted(kept, key=lambda r: int(r.get("created") or 0)))


def _package_paid(payment_id: str, obj: dict[str, Any], metadata: dict[str, Any], amount: int, created_at: datetime) -> PackagePaid:
    return PackagePaid(
        payment_id=payment_id, account_id=metadata.get("user_id"), customer_id=_customer(obj),
        package_key=str(metadata["package_key"]), package_minutes=int(metadata["package_minutes"]),
        amount_cents=int(amount), currency=str(obj["currency"]).upper(), paid_at=created_at,
        topup_seq=int(metadata["topup_seq"]) if metadata.get("topup_seq") else None,
    )


def _invoice_paid(obj: dict[str, Any], created_at: datetime) -> PaymentEvent:
    subscription_id, metadata = _invoice_subscription(obj)
    if subscription_id is None:
        return NotForUs("an invoice without a subscription")
    if not metadata.get("plan_key"):
        return NotForUs("a subscription this service did not create")
    lines = obj["lines"]["data"]
    periods = [line["period"] for line in lines if line.get("period")]
    start = min(int(p["start"]) for p in periods) if periods else int(obj["period_start"])
    end = max(int(p["end"]) for p in periods) if periods else int(obj["period_end"])
    billing_reason = str(obj.get("billing_reason") or "")
    previous = metadata.get("upgraded_from") or None if billing_reason == "subscription_update" else None
    return InvoicePaid(
        invoice_id=obj["id"], payment_id=_invoice_payment(obj), account_id=metadata.get("user_id"),
        customer_id=_customer(obj), subscription_id=subscription_id, plan_key=str(metadata["plan_key"]),
        previous_plan_key=previous, billing_reason=billing_reason, amount_cents=int(obj.get("amount_paid") or 0),
        currency=str(obj["currency"]).upper(), period_start=_instant(start), period_end=_instant(end), paid_at=created_at,
    )


def _invoice_subscription(obj: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    details = (obj.get("parent") or {}).get("subscription_details") or obj.get("subscription_details") or {}
    subscription = details.get("subscription") or obj.get("subscription")
    return (_id(subscription) if subscription else None), dict(details.get("metadata") or {})


def _invoice_payment(obj: dict[str, Any]) -> str:
    for payment in (obj.get("payments") or {}).get("data") or []:
        intent = (payment.get("payment") or {}).get("payment_intent")
        if intent:
            return _id(intent)
    if obj.get("payment_intent"):
        return _id(obj["payment_intent"])
    return str(obj["id"])


def snapshot_of(subscription: dict[str, Any]) -> SubscriptionSnapshot:
    item = subscription["items"]["data"][0]
    start = item.get("current_period_start") or subscription["current_period_start"]
    end = item.get("current_period_end") or subscription["current_period_end"]
    metadata = subscription.get("metadata") or {}
    return SubscriptionSnapshot(
        subscription_id=subscription["id"], customer_id=_customer(subscription) or "",
        account_id=metadata.get("user_id"), status=str(subscription["status"]),
        plan_key=str(metadata.get("plan_key") or ""), cancel_at_period_end=bool(subscription.get("cancel_at_period_end")),
        period_start=_instant(start), period_end=_instant(end), item_id=item["id"],
        currency=str(item["price"]["currency"]).upper(),
    )


def _customer(obj: dict[str, Any]) -> str | None:
    customer = obj.get("customer")
    return _id(customer) if customer else None


def _id(value: Any) -> str:
    """An id, or an expanded object's id."""
    return value["id"] if isinstance(value, dict) else str(value)


def _instant(unix_seconds: Any) -> datetime:
    return datetime.fromtimestamp(int(unix_seconds), tz=timezone.utc)
