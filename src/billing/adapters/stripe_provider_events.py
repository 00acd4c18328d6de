"""Stripe's JSON (webhook events, subscriptions) as the service's payment events.

Written for API version 2026-10-28 (the SDK's): a subscription's period lives on its items,
an invoice names its subscription under parent.subscription_details and its payment under
payments; the older places (subscription.current_period_*, invoice.subscription,
invoice.payment_intent) are read as fallbacks, so an account pinned to an older version works.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any

from billing.service.provider_events import (
    ChargeRefunded, InvoicePaid, NotForUs, PaymentEvent, PackagePaid, ProviderEvent, SubscriptionChanged,
    SubscriptionSnapshot, TopupFailed,
)
from billing.service.ports import MalformedWebhook

SUBSCRIPTION_EVENTS = frozenset({
    "customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted",
    "customer.subscription.paused", "customer.subscription.resumed", "invoice.payment_failed",
    # A plan change whose payment never completed (about 23 h later) or completed: the state is read again.
    "customer.subscription.pending_update_expired", "customer.subscription.pending_update_applied",
})
PACKAGE = "package"
# Stripe's largest charge is 99,999,999 minor units (USD 999,999.99); the payments table holds int32.
AMOUNT_CENTS_MAX = 99_999_999
# Instants from 1970 to 2100: a `created` of 1e20 is refused, not an OverflowError.
UNIX_SECONDS_MAX = 4_102_444_800
SEQ_MAX = 2**31 - 1
# Stripe's ids are ASCII letters, digits and underscores (ours add '-' and '.'); at most 255.
_PROVIDER_ID = re.compile(r"[A-Za-z0-9_.\-]{1,255}\Z")
_EVENT_TYPE = re.compile(r"[a-z_.]{1,100}\Z")
_CURRENCY = re.compile(r"[A-Za-z]{3}\Z")
_KEY = re.compile(r"[A-Za-z0-9_.\-]{1,100}\Z")


class UnreadableField(ValueError):
    """A field of a verified event that is missing, of the wrong type or out of range."""


def parse_verified_event(payload: bytes) -> ProviderEvent:
    """What Stripe signed, as the service's event. Only called after the signature verified; any
    failure in here is a malformed event (kept for an operator), never anything else."""
    try:
        event = json.loads(payload, parse_constant=_refuse_constant, parse_float=_finite_float)
    except (ValueError, RecursionError) as error:  # RecursionError: JSON nested deeper than Python's stack
        raise MalformedWebhook(f"the payload is not JSON: {type(error).__name__}") from None
    if not isinstance(event, dict):
        raise MalformedWebhook("the payload is not a Stripe event")
    event_id, event_type = event.get("id"), event.get("type")
    if not isinstance(event_id, str) or _PROVIDER_ID.match(event_id) is None:
        raise MalformedWebhook("the payload is not a Stripe event (no readable id)")
    if not isinstance(event_type, str) or _EVENT_TYPE.match(event_type) is None:
        raise MalformedWebhook("the payload is not a Stripe event (no readable type)", event_id)
    try:
        obj = _object(event["data"]["object"])
        created_at = _instant(event["created"])
        parsed = _parse(event_type, obj, created_at)
    except Exception as error:  # noqa: BLE001 - whatever a signed payload holds, the answer is "malformed"
        raise MalformedWebhook(f"{event_type} is missing or has a bad {_why(error)}", event_id, event_type) from None
    return ProviderEvent(event_id=event_id, type=event_type, created_at=created_at, event=parsed)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN, Infinity: Python reads them, PostgreSQL's jsonb does not


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError("a number out of range")  # 1e999
    return value


def _why(error: Exception) -> str:
    text = str(error) if isinstance(error, (KeyError, UnreadableField)) else type(error).__name__
    return text[:200]


def _parse(event_type: str, obj: dict[str, Any], created_at: datetime) -> PaymentEvent:
    metadata = _metadata(obj)
    if event_type == "payment_intent.succeeded":
        if metadata.get("purpose") != PACKAGE:
            return NotForUs("a payment that is not a package purchase")
        received = obj.get("amount_received")
        return _package_paid(_id(obj["id"]), obj, metadata, obj["amount"] if received is None else received, created_at)
    if event_type == "payment_intent.payment_failed":
        if metadata.get("purpose") != PACKAGE or not metadata.get("topup_seq"):
            return NotForUs("a failed payment that is not an auto top-up")
        error = obj.get("last_payment_error") or {}
        code = (error.get("code") or error.get("decline_code") or "declined") if isinstance(error, dict) else "declined"
        return TopupFailed(
            payment_id=_id(obj["id"]), account_id=metadata.get("user_id"), customer_id=_customer(obj),
            topup_seq=_digits(metadata["topup_seq"], "metadata.topup_seq", SEQ_MAX),
            code=_key(code, "last_payment_error.code"),
        )
    if event_type in ("checkout.session.completed", "checkout.session.async_payment_succeeded"):
        if obj.get("mode") == "subscription" and obj.get("subscription"):
            return SubscriptionChanged(_id(obj["subscription"]), metadata.get("user_id"), _customer(obj))
        if obj.get("mode") != "payment" or metadata.get("purpose") != PACKAGE:
            return NotForUs("a checkout that is not a package purchase")
        if obj.get("payment_status") != "paid":
            return NotForUs("checkout completed, payment still pending")
        payment_id = _id(obj["payment_intent"]) if obj.get("payment_intent") else _id(obj["id"])  # nothing charged
        return _package_paid(payment_id, obj, metadata, obj["amount_total"], created_at)
    if event_type == "invoice.paid":
        return _invoice_paid(obj, created_at)
    if event_type in SUBSCRIPTION_EVENTS:
        if event_type.startswith("invoice."):
            subscription_id, sub_metadata = _invoice_subscription(obj)
            if subscription_id is None:
                return NotForUs("an invoice without a subscription")
            return SubscriptionChanged(subscription_id, sub_metadata.get("user_id"), _customer(obj))
        return SubscriptionChanged(_id(obj["id"]), metadata.get("user_id"), _customer(obj))
    if event_type == "charge.refunded":
        if not obj.get("payment_intent"):
            return NotForUs("a refunded charge without a payment intent")
        amount, refunded = _cents(obj["amount"], "amount"), _cents(obj["amount_refunded"], "amount_refunded")
        if refunded > amount:
            raise UnreadableField("amount_refunded (over the amount)")
        return ChargeRefunded(
            payment_id=_id(obj["payment_intent"]), charge_id=_id(obj["id"]), account_id=metadata.get("user_id"),
            customer_id=_customer(obj), amount_cents=amount, refunded_cents=refunded,
            # A partial list (has_more) is no list: the service then asks Stripe for all of them.
            refunds=() if _has_more(obj.get("refunds")) else refunds_of(obj.get("refunds")),
        )
    return NotForUs(f"{event_type} is not used")


def refunds_of(listed: Any) -> tuple[tuple[str, int], ...]:
    """A list of refunds as (id, amount), oldest first, without failed or canceled ones (not in amount_refunded)."""
    data = (listed.get("data") or []) if isinstance(listed, dict) else []
    if not isinstance(data, list):
        raise UnreadableField("refunds.data")
    kept = [r for r in data if isinstance(r, dict) and r.get("status") not in ("failed", "canceled")]
    kept.reverse()  # Stripe lists newest first; the stable sort keeps that order within a second
    by_time = sorted(kept, key=lambda r: _int(r.get("created") or 0, "refunds.created", 0, UNIX_SECONDS_MAX))
    return tuple((_id(r["id"]), _cents(r["amount"], "refunds.amount")) for r in by_time)


def _has_more(listed: Any) -> bool:
    return isinstance(listed, dict) and bool(listed.get("has_more"))


def _package_paid(
    payment_id: str, obj: dict[str, Any], metadata: dict[str, str], amount: Any, created_at: datetime
) -> PackagePaid:
    topup_seq = metadata.get("topup_seq")
    return PackagePaid(
        payment_id=payment_id, account_id=metadata.get("user_id"), customer_id=_customer(obj),
        package_key=_key(metadata.get("package_key"), "metadata.package_key"),
        package_minutes=_digits(metadata.get("package_minutes"), "metadata.package_minutes", SEQ_MAX),
        amount_cents=_cents(amount, "amount"), currency=_currency(obj["currency"]), paid_at=created_at,
        topup_seq=_digits(topup_seq, "metadata.topup_seq", SEQ_MAX) if topup_seq else None,
    )


def _invoice_paid(obj: dict[str, Any], created_at: datetime) -> PaymentEvent:
    subscription_id, metadata = _invoice_subscription(obj)
    if subscription_id is None:
        return NotForUs("an invoice without a subscription")
    if not metadata.get("plan_key"):
        return NotForUs("a subscription this service did not create")
    lines = obj["lines"]["data"]
    if not isinstance(lines, list):
        raise UnreadableField("lines.data")
    periods = [line["period"] for line in lines if isinstance(line, dict) and line.get("period")]
    starts = [_int(p["start"], "period.start", 0, UNIX_SECONDS_MAX) for p in periods] or [obj["period_start"]]
    ends = [_int(p["end"], "period.end", 0, UNIX_SECONDS_MAX) for p in periods] or [obj["period_end"]]
    start, end = _instant(min(starts)), _instant(max(ends))
    if end <= start:
        raise UnreadableField("period (ends before it starts)")
    reason = obj.get("billing_reason") or ""
    billing_reason = _key(reason, "billing_reason") if reason else ""
    previous = metadata.get("upgraded_from") or None if billing_reason == "subscription_update" else None
    return InvoicePaid(
        invoice_id=_id(obj["id"]), payment_id=_invoice_payment(obj), account_id=metadata.get("user_id"),
        customer_id=_customer(obj), subscription_id=subscription_id, plan_key=_key(metadata["plan_key"], "plan_key"),
        previous_plan_key=None if previous is None else _key(previous, "upgraded_from"), billing_reason=billing_reason,
        amount_cents=_cents(obj.get("amount_paid") or 0, "amount_paid"),
        currency=_currency(obj["currency"]), period_start=start, period_end=end, paid_at=created_at,
        total_cents=_int(obj.get("total", obj.get("amount_paid") or 0), "total", -AMOUNT_CENTS_MAX, AMOUNT_CENTS_MAX),
        price_ids=tuple(dict.fromkeys(price for line in lines if _charges(line) and (price := _line_price(line)))),
    )


def _charges(line: Any) -> bool:
    """Not a credit line (the unused part of the old price is negative); zero counts: an upgrade in a
    period's last minutes rounds to 0."""
    return isinstance(line, dict) and _int(line.get("amount", 0), "lines.amount", -AMOUNT_CENTS_MAX, AMOUNT_CENTS_MAX) >= 0


def _line_price(line: dict[str, Any]) -> str | None:
    """The price a line bills: pricing.price_details.price since API 2025-03-31, line.price before."""
    details = (line.get("pricing") or {}).get("price_details") or {}
    price = details.get("price") or line.get("price")
    return _id(price) if price else None


def _invoice_subscription(obj: dict[str, Any]) -> tuple[str | None, dict[str, str]]:
    details = (obj.get("parent") or {}).get("subscription_details") or obj.get("subscription_details") or {}
    subscription = details.get("subscription") or obj.get("subscription")
    return (_id(subscription) if subscription else None), _metadata(details)


def _invoice_payment(obj: dict[str, Any]) -> str:
    for payment in (obj.get("payments") or {}).get("data") or []:
        intent = (payment.get("payment") or {}).get("payment_intent")
        if intent:
            return _id(intent)
    if obj.get("payment_intent"):
        return _id(obj["payment_intent"])
    return _id(obj["id"])


def snapshot_of(subscription: dict[str, Any]) -> SubscriptionSnapshot:
    item = subscription["items"]["data"][0]
    start = item.get("current_period_start") or subscription["current_period_start"]
    end = item.get("current_period_end") or subscription["current_period_end"]
    metadata = _metadata(subscription)
    return SubscriptionSnapshot(
        subscription_id=_id(subscription["id"]), customer_id=_customer(subscription) or "",
        account_id=metadata.get("user_id"), status=_key(subscription["status"], "status"),
        plan_key=metadata.get("plan_key") or "", cancel_at_period_end=bool(subscription.get("cancel_at_period_end")),
        period_start=_instant(start), period_end=_instant(end), item_id=_id(item["id"]),
        currency=_currency(item["price"]["currency"]),
        unit_amount_cents=_cents(item["price"]["unit_amount"], "price.unit_amount")
        if item["price"].get("unit_amount") is not None else None,
    )


def _customer(obj: dict[str, Any]) -> str | None:
    customer = obj.get("customer")
    return _id(customer) if customer else None


def _id(value: Any) -> str:
    """An id, or an expanded object's id."""
    found = value.get("id") if isinstance(value, dict) else value
    if not isinstance(found, str) or _PROVIDER_ID.match(found) is None:
        raise UnreadableField("id")
    return found


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UnreadableField("data.object")
    return value


def _metadata(obj: dict[str, Any]) -> dict[str, str]:
    """Metadata as Stripe keeps it: string values only (anything else is ignored, never trusted)."""
    metadata = obj.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise UnreadableField("metadata")
    return {k: v for k, v in metadata.items() if isinstance(k, str) and isinstance(v, str)}


def _int(value: Any, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise UnreadableField(field)
    return value


def _cents(value: Any, field: str) -> int:
    return _int(value, field, 0, AMOUNT_CENTS_MAX)


def _digits(value: Any, field: str, high: int) -> int:
    """A number Stripe carries as a metadata string."""
    if not isinstance(value, str) or not value.isascii() or not value.isdigit() or len(value) > 10:
        raise UnreadableField(field)
    return _int(int(value), field, 0, high)


def _key(value: Any, field: str) -> str:
    if not isinstance(value, str) or _KEY.match(value) is None:
        raise UnreadableField(field)
    return value


def _currency(value: Any) -> str:
    if not isinstance(value, str) or _CURRENCY.match(value) is None:
        raise UnreadableField("currency")
    return value.upper()


def _instant(unix_seconds: Any) -> datetime:
    return datetime.fromtimestamp(_int(unix_seconds, "timestamp", 0, UNIX_SECONDS_MAX), tz=timezone.utc)
