"""Stripe-shaped webhook events (API version 2026-10-28) and Stripe's signature, for tests
that deliver events themselves. The local stand-in (devstack.standin) sends the same shapes."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from typing import Any

API_VERSION = "2026-10-28.endive"
# The catalog's USD prices (catalog/catalog.json): a payment of another amount is kept, not credited.
USD_PRICES = {"starter": 999, "pro": 2999, "business": 9999, "mini": 499, "booster": 1999, "mega": 5999}


def event(event_type: str, obj: dict[str, Any], created: int, event_id: str | None = None) -> dict[str, Any]:
    return {
        "id": event_id or "evt_" + secrets.token_hex(12), "object": "event", "type": event_type, "created": created,
        "api_version": API_VERSION, "livemode": False, "data": {"object": obj}, "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
    }


def package_metadata(user_id: str, package_key: str, minutes: int) -> dict[str, str]:
    return {"user_id": user_id, "purpose": "package", "package_key": package_key, "package_minutes": str(minutes)}


def payment_intent_succeeded(
    pi_id: str, user_id: str, package_key: str, minutes: int, amount: int, created: int,
    currency: str = "usd", customer: str | None = "cus_test",
) -> dict[str, Any]:
    pi = {"id": pi_id, "object": "payment_intent", "status": "succeeded", "amount": amount,
          "amount_received": amount, "currency": currency, "customer": customer,
          "metadata": package_metadata(user_id, package_key, minutes), "created": created}
    return event("payment_intent.succeeded", pi, created)


def checkout_completed(
    session_id: str, pi_id: str, user_id: str, package_key: str, minutes: int, amount: int, created: int,
    currency: str = "usd", customer: str | None = "cus_test", payment_status: str = "paid",
) -> dict[str, Any]:
    session = {"id": session_id, "object": "checkout.session", "mode": "payment", "status": "complete",
               "payment_status": payment_status, "payment_intent": pi_id, "amount_total": amount,
               "currency": currency, "customer": customer, "client_reference_id": user_id,
               "metadata": package_metadata(user_id, package_key, minutes)}
    return event("checkout.session.completed", session, created)


def invoice_paid(
    invoice_id: str, pi_id: str, subscription_id: str, user_id: str, plan_key: str, period_start: int,
    period_end: int, amount: int, created: int, billing_reason: str = "subscription_cycle",
    upgraded_from: str = "", customer: str = "cus_test", resume_cancellation: bool = False,
    price_id: str = "price_x",
) -> dict[str, Any]:
    metadata = {"user_id": user_id, "plan_key": plan_key}
    if upgraded_from:
        metadata["upgraded_from"] = upgraded_from
    if resume_cancellation:
        metadata["resume_cancellation"] = "true"
    invoice = {
        "id": invoice_id, "object": "invoice", "status": "paid", "customer": customer, "amount_paid": amount,
        "amount_due": amount, "currency": "usd", "billing_reason": billing_reason,
        "period_start": period_start, "period_end": period_end,
        "parent": {"type": "subscription_details",
                   "subscription_details": {"subscription": subscription_id, "metadata": metadata}},
        "total": amount,
        "lines": {"object": "list", "data": [{"id": "il_" + invoice_id, "amount": amount, "currency": "usd",
                                              "period": {"start": period_start, "end": period_end},
                                              "pricing": {"type": "price_details",
                                                          "price_details": {"price": price_id, "product": "prod_x"}}}]},
        "payments": {"object": "list", "data": [{"payment": {"type": "payment_intent", "payment_intent": pi_id}}]},
    }
    return event("invoice.paid", invoice, created)


def subscription(
    subscription_id: str, user_id: str, plan_key: str, status: str, period_start: int, period_end: int,
    cancel_at_period_end: bool = False, customer: str = "cus_test", amount: int = 2999,
) -> dict[str, Any]:
    return {
        "id": subscription_id, "object": "subscription", "status": status, "customer": customer,
        "cancel_at_period_end": cancel_at_period_end, "metadata": {"user_id": user_id, "plan_key": plan_key},
        "items": {"object": "list", "data": [{
            "id": "si_" + subscription_id, "quantity": 1, "current_period_start": period_start,
            "current_period_end": period_end,
            "price": {"id": "price_x", "product": "prod_x", "unit_amount": amount, "currency": "usd",
                      "recurring": {"interval": "month"}},
        }]},
    }


def charge_refunded(
    charge_id: str, pi_id: str, amount: int, amount_refunded: int, created: int, user_id: str | None = None,
    customer: str | None = "cus_test", refunds: list[tuple[str, int]] | None = None,
) -> dict[str, Any]:
    """`refunds` (id, amount), oldest first: listed under refunds.data as API versions before 2022-11-15 did."""
    charge = {"id": charge_id, "object": "charge", "amount": amount, "amount_refunded": amount_refunded,
              "refunded": amount_refunded >= amount, "payment_intent": pi_id, "customer": customer,
              "currency": "usd", "metadata": {"user_id": user_id} if user_id else {}}
    if refunds is not None:
        charge["refunds"] = {"object": "list", "has_more": False, "url": f"/v1/charges/{charge_id}/refunds", "data": [
            {"id": refund_id, "object": "refund", "amount": refund_amount, "charge": charge_id, "created": created + n,
             "payment_intent": pi_id, "status": "succeeded"}
            for n, (refund_id, refund_amount) in reversed(list(enumerate(refunds)))  # newest first, as Stripe
        ]}
    return event("charge.refunded", charge, created)


def signed(evt: dict[str, Any], secret: str, timestamp: int | None = None) -> tuple[bytes, str]:
    """The delivery as Stripe sends it: the JSON bytes and the Stripe-Signature header."""
    payload = json.dumps(evt, separators=(",", ":")).encode()
    return payload, signed_bytes(payload, secret, timestamp)


def signed_bytes(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """The Stripe-Signature header of these bytes."""
    t = int(time.time()) if timestamp is None else timestamp
    signature = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={signature}"
