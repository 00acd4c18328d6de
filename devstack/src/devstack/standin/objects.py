"""Stripe-shaped objects for API version 2026-10-28.endive, and the calendar and money helpers they need.

Shapes follow the "basil" and later versions: the billing period lives on subscription items, an invoice names
its subscription under `parent.subscription_details`, invoice lines carry `pricing.price_details`, and neither
charges nor payment intents name an invoice.
"""

from __future__ import annotations

import calendar
import secrets
from datetime import datetime, timezone
from typing import Any

API_VERSION = "2026-10-28.endive"
ZERO_DECIMAL_CURRENCIES = frozenset(
    "bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split()
)
TEST_CARD = {
    "brand": "visa", "country": "US", "exp_month": 12, "exp_year": 2034, "funding": "credit", "last4": "4242",
    "checks": {"address_line1_check": None, "address_postal_code_check": None, "cvc_check": "pass"},
    "display_brand": "visa", "networks": {"available": ["visa"], "preferred": None}, "wallet": None,
}


def new_id(prefix: str, size: int = 12) -> str:
    return f"{prefix}_{secrets.token_hex(size)}"


def list_object(data: list[dict[str, Any]], url: str, has_more: bool = False) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def add_months(anchor: int, months: int) -> int:
    """The same day `months` later (UTC), clamped to the month's end: Jan 31 + 1 month is Feb 28 (or 29)."""
    start = datetime.fromtimestamp(anchor, tz=timezone.utc)
    years, month_index = divmod(start.month - 1 + months, 12)
    year, month = start.year + years, month_index + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return int(start.replace(year=year, month=month, day=day).timestamp())


def period_end(anchor: int, recurring: dict[str, Any], periods: int) -> int:
    """The end of the `periods`-th period after the billing cycle anchor (counted from the anchor, as Stripe
    does, so a subscription started on the 31st renews on the last day of shorter months and the 31st again)."""
    count = int(recurring.get("interval_count") or 1) * periods
    interval = recurring["interval"]
    if interval == "month":
        return add_months(anchor, count)
    if interval == "year":
        return add_months(anchor, 12 * count)
    return anchor + count * (7 * 86400 if interval == "week" else 86400)


def format_amount(amount: int, currency: str) -> str:
    if currency.lower() in ZERO_DECIMAL_CURRENCIES:
        return f"{amount} {currency.upper()}"
    return f"{amount // 100}.{amount % 100:02d} {currency.upper()}"


def changed_attributes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """An event's `previous_attributes`: old values of what changed; plain hashes (metadata) only their changed
    keys, lists and nested Stripe objects (`items`) whole, as Stripe sends them."""
    previous: dict[str, Any] = {}
    for key in before.keys() | after.keys():
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict) and "object" not in old and "object" not in new:
            previous[key] = changed_attributes(old, new)
        else:
            previous[key] = old
    return previous


def customer(now: int, *, email: str | None, name: str | None, description: str | None, phone: str | None,
             metadata: dict[str, str]) -> dict[str, Any]:
    return {
        "id": new_id("cus", 7), "object": "customer", "address": None, "balance": 0, "created": now,
        "currency": None, "default_source": None, "delinquent": False, "description": description, "discount": None,
        "email": email, "invoice_prefix": secrets.token_hex(4).upper(),
        "invoice_settings": {
            "custom_fields": None, "default_payment_method": None, "footer": None, "rendering_options": None,
        },
        "livemode": False, "metadata": metadata, "name": name, "next_invoice_sequence": 1, "phone": phone,
        "preferred_locales": [], "shipping": None, "tax_exempt": "none", "test_clock": None,
    }


def product(now: int, *, name: str, description: str | None, metadata: dict[str, str],
            product_id: str | None = None) -> dict[str, Any]:
    return {
        "id": product_id or new_id("prod", 7), "object": "product", "active": True, "created": now,
        "default_price": None, "description": description, "images": [], "livemode": False,
        "marketing_features": [], "metadata": metadata, "name": name, "package_dimensions": None,
        "shippable": None, "statement_descriptor": None, "tax_code": None, "type": "service", "unit_label": None,
        "updated": now, "url": None,
    }


def price(now: int, *, currency: str, unit_amount: int, product_id: str, recurring: dict[str, Any] | None,
          lookup_key: str | None, metadata: dict[str, str], nickname: str | None, active: bool) -> dict[str, Any]:
    return {
        "id": new_id("price", 12), "object": "price", "active": active, "billing_scheme": "per_unit",
        "created": now, "currency": currency, "custom_unit_amount": None, "livemode": False,
        "lookup_key": lookup_key, "metadata": metadata, "nickname": nickname, "product": product_id,
        "recurring": None if recurring is None else {
            "interval": recurring["interval"], "interval_count": int(recurring.get("interval_count") or 1),
            "meter": None, "trial_period_days": None, "usage_type": "licensed",
        },
        "tax_behavior": "unspecified", "tiers_mode": None, "transform_quantity": None,
        "type": "one_time" if recurring is None else "recurring",
        "unit_amount": unit_amount, "unit_amount_decimal": str(unit_amount),
    }


def payment_method(now: int, customer_id: str | None, email: str | None, last4: str = "4242") -> dict[str, Any]:
    return {
        "id": new_id("pm", 12), "object": "payment_method", "allow_redisplay": "unspecified",
        "billing_details": {"address": None, "email": email, "name": None, "phone": None, "tax_id": None},
        "card": {**TEST_CARD, "last4": last4}, "created": now, "customer": customer_id, "livemode": False,
        "metadata": {}, "type": "card",
    }


def payment_intent(now: int, *, amount: int, currency: str, customer_id: str | None, metadata: dict[str, str],
                   description: str | None, payment_method_id: str | None) -> dict[str, Any]:
    intent_id = new_id("pi", 12)
    return {
        "id": intent_id, "object": "payment_intent", "amount": amount, "amount_capturable": 0,
        "amount_details": {"tip": {}}, "amount_received": 0, "application": None, "application_fee_amount": None,
        "automatic_payment_methods": None, "canceled_at": None, "cancellation_reason": None,
        "capture_method": "automatic", "client_secret": f"{intent_id}_secret_{secrets.token_hex(12)}",
        "confirmation_method": "automatic", "created": now, "currency": currency, "customer": customer_id,
        "description": description, "last_payment_error": None, "latest_charge": None, "livemode": False,
        "metadata": metadata, "next_action": None, "on_behalf_of": None, "payment_method": payment_method_id,
        "payment_method_options": {}, "payment_method_types": ["card"], "processing": None,
        "receipt_email": None, "review": None, "setup_future_usage": None, "shipping": None,
        "statement_descriptor": None, "statement_descriptor_suffix": None,
        "status": "requires_payment_method" if payment_method_id is None else "requires_confirmation",
        "transfer_data": None, "transfer_group": None,
    }


def charge(now: int, intent: dict[str, Any], payment_method_id: str, *, succeeded: bool,
           failure_code: str | None = None, failure_message: str | None = None) -> dict[str, Any]:
    amount = intent["amount"]
    return {
        "id": new_id("ch", 12), "object": "charge", "amount": amount,
        "amount_captured": amount if succeeded else 0, "amount_refunded": 0, "application": None,
        "application_fee": None, "application_fee_amount": None, "balance_transaction": None,
        "billing_details": {"address": None, "email": None, "name": None, "phone": None, "tax_id": None},
        "calculated_statement_descriptor": "STRIPE STAND-IN", "captured": succeeded, "created": now,
        "currency": intent["currency"], "customer": intent["customer"], "description": intent["description"],
        "disputed": False, "failure_balance_transaction": None, "failure_code": failure_code,
        "failure_message": failure_message, "fraud_details": {}, "livemode": False,
        "metadata": dict(intent["metadata"]), "on_behalf_of": None,
        "outcome": {
            "network_status": "approved_by_network" if succeeded else "declined_by_network",
            "reason": None if succeeded else "generic_decline", "risk_level": "normal", "risk_score": 20,
            "seller_message": "Payment complete." if succeeded else "The bank did not return any further details.",
            "type": "authorized" if succeeded else "issuer_declined",
        },
        "paid": succeeded, "payment_intent": intent["id"], "payment_method": payment_method_id,
        "payment_method_details": {"card": dict(TEST_CARD), "type": "card"}, "receipt_email": None,
        "receipt_url": None, "refunded": False, "review": None, "shipping": None, "source_transfer": None,
        "statement_descriptor": None, "statement_descriptor_suffix": None,
        "status": "succeeded" if succeeded else "failed", "transfer_data": None, "transfer_group": None,
    }


def refund(now: int, the_charge: dict[str, Any], amount: int, reason: str | None,
           metadata: dict[str, str]) -> dict[str, Any]:
    return {
        "id": new_id("re", 12), "object": "refund", "amount": amount, "balance_transaction": None,
        "charge": the_charge["id"], "created": now, "currency": the_charge["currency"],
        "destination_details": {"card": {"reference_status": "pending", "reference_type": "acquirer_reference_number",
                                         "type": "refund"}, "type": "card"},
        "metadata": metadata, "payment_intent": the_charge["payment_intent"], "reason": reason,
        "receipt_number": None, "source_transfer_reversal": None, "status": "succeeded", "transfer_reversal": None,
    }


def setup_intent(now: int, *, customer_id: str | None, payment_method_id: str | None, metadata: dict[str, str],
                 succeeded: bool) -> dict[str, Any]:
    intent_id = new_id("seti", 12)
    return {
        "id": intent_id, "object": "setup_intent", "application": None, "automatic_payment_methods": None,
        "cancellation_reason": None, "client_secret": f"{intent_id}_secret_{secrets.token_hex(12)}",
        "created": now, "customer": customer_id, "description": None, "flow_directions": None,
        "last_setup_error": None if succeeded else {
            "code": "card_declined", "decline_code": "generic_decline", "message": "Your card was declined.",
            "type": "card_error",
        },
        "latest_attempt": None, "livemode": False, "mandate": None, "metadata": metadata, "next_action": None,
        "on_behalf_of": None, "payment_method": payment_method_id if succeeded else None,
        "payment_method_types": ["card"], "single_use_mandate": None,
        "status": "succeeded" if succeeded else "requires_payment_method", "usage": "off_session",
    }


def subscription_item(now: int, subscription_id: str, the_price: dict[str, Any], quantity: int,
                      start: int, end: int) -> dict[str, Any]:
    return {
        "id": new_id("si", 7), "object": "subscription_item", "created": now, "current_period_end": end,
        "current_period_start": start, "discounts": [], "metadata": {}, "price": the_price, "quantity": quantity,
        "subscription": subscription_id, "tax_rates": [],
    }


def subscription(now: int, *, customer_id: str, currency: str, metadata: dict[str, str],
                 payment_method_id: str | None) -> dict[str, Any]:
    subscription_id = new_id("sub", 12)
    return {
        "id": subscription_id, "object": "subscription", "application": None, "application_fee_percent": None,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
        "billing_cycle_anchor": now, "billing_mode": {"flexible": None, "type": "classic"},
        "billing_thresholds": None, "cancel_at": None, "cancel_at_period_end": False, "canceled_at": None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        "collection_method": "charge_automatically", "created": now, "currency": currency,
        "customer": customer_id, "days_until_due": None, "default_payment_method": payment_method_id,
        "default_source": None, "description": None, "discounts": [], "ended_at": None,
        "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
        "items": list_object([], f"/v1/subscription_items?subscription={subscription_id}"),
        "latest_invoice": None, "livemode": False, "metadata": metadata, "next_pending_invoice_item_invoice": None,
        "on_behalf_of": None, "pause_collection": None, "pending_invoice_item_interval": None,
        "pending_setup_intent": None, "pending_update": None, "schedule": None, "start_date": now,
        "status": "active", "test_clock": None, "transfer_data": None, "trial_end": None,
        "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}}, "trial_start": None,
    }


def invoice_line(subscription: dict[str, Any], item: dict[str, Any], *, amount: int, start: int, end: int,
                 proration: bool, description: str, quantity: int) -> dict[str, Any]:
    the_price = item["price"]
    return {
        "id": new_id("il", 12), "object": "line_item", "amount": amount, "currency": the_price["currency"],
        "description": description, "discount_amounts": [], "discountable": not proration, "discounts": [],
        "invoice": None, "livemode": False, "metadata": dict(subscription["metadata"]),
        "parent": {
            "invoice_item_details": None, "type": "subscription_item_details",
            "subscription_item_details": {
                "invoice_item": None, "proration": proration, "proration_details": {"credited_items": None},
                "subscription": subscription["id"], "subscription_item": item["id"],
            },
        },
        "period": {"end": end, "start": start}, "pretax_credit_amounts": [],
        "pricing": {
            "price_details": {"price": the_price["id"], "product": the_price["product"]},
            "type": "price_details", "unit_amount_decimal": str(the_price["unit_amount"]),
        },
        "quantity": quantity, "subtotal": amount, "taxes": [],
    }


def invoice(now: int, *, customer: dict[str, Any], subscription: dict[str, Any], billing_reason: str,
            lines: list[dict[str, Any]], period_start: int, period_end: int, number: str) -> dict[str, Any]:
    """A finalized, still unpaid invoice; the ledger marks it paid (or leaves it open when payment fails)."""
    invoice_id = new_id("in", 12)
    total = sum(line["amount"] for line in lines)
    for line in lines:
        line["invoice"] = invoice_id
    return {
        "id": invoice_id, "object": "invoice", "account_country": "US", "account_name": "Stripe stand-in",
        "amount_due": max(total, 0), "amount_overpaid": 0, "amount_paid": 0, "amount_remaining": max(total, 0),
        "amount_shipping": 0, "application": None, "attempt_count": 0, "attempted": False, "auto_advance": True,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None, "provider": None,
                          "status": None},
        "billing_reason": billing_reason, "collection_method": "charge_automatically", "created": now,
        "currency": subscription["currency"], "customer": customer["id"], "customer_email": customer["email"],
        "customer_name": customer["name"], "default_payment_method": None, "description": None, "discounts": [],
        "due_date": None, "effective_at": now, "ending_balance": 0, "hosted_invoice_url": None,
        "invoice_pdf": None, "last_finalization_error": None,
        "lines": {**list_object(lines, f"/v1/invoices/{invoice_id}/lines"), "total_count": len(lines)},
        "livemode": False, "metadata": {}, "next_payment_attempt": None, "number": number,
        "parent": {
            "quote_details": None, "type": "subscription_details",
            "subscription_details": {"metadata": dict(subscription["metadata"]),
                                     "subscription": subscription["id"]},
        },
        "period_end": period_end, "period_start": period_start, "receipt_number": None, "starting_balance": 0,
        "status": "open",
        "status_transitions": {"finalized_at": now, "marked_uncollectible_at": None, "paid_at": None,
                               "voided_at": None},
        "subtotal": total, "total": total, "total_excluding_tax": total, "total_taxes": [],
        "webhooks_delivered_at": now,
    }


def checkout_session(now: int, *, mode: str, customer_id: str | None, customer_email: str | None,
                     client_reference_id: str | None, metadata: dict[str, str], amount: int | None,
                     currency: str | None, success_url: str | None, cancel_url: str | None,
                     public_base_url: str) -> dict[str, Any]:
    session_id = new_id("cs_test", 24)
    return {
        "id": session_id, "object": "checkout.session", "after_expiration": None, "allow_promotion_codes": None,
        "amount_subtotal": amount, "amount_total": amount,
        "automatic_tax": {"enabled": False, "liability": None, "provider": None, "status": None},
        "billing_address_collection": None, "cancel_url": cancel_url, "client_reference_id": client_reference_id,
        "client_secret": None, "created": now, "currency": currency, "customer": customer_id,
        "customer_creation": "if_required" if mode == "payment" and customer_id is None else None,
        "customer_details": None, "customer_email": customer_email, "expires_at": now + 24 * 3600,
        "invoice": None, "livemode": False, "locale": None, "metadata": metadata, "mode": mode,
        "payment_intent": None, "payment_method_types": ["card"],
        "payment_status": "no_payment_required" if mode == "setup" else "unpaid", "setup_intent": None,
        "status": "open", "submit_type": None, "subscription": None, "success_url": success_url,
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0}
        if amount is not None else None,
        "ui_mode": "hosted", "url": f"{public_base_url}/checkout/{session_id}",
    }


def checkout_line_item(the_price: dict[str, Any], product_name: str, quantity: int) -> dict[str, Any]:
    amount = the_price["unit_amount"] * quantity
    return {
        "id": new_id("li", 12), "object": "item", "amount_discount": 0, "amount_subtotal": amount,
        "amount_tax": 0, "amount_total": amount, "currency": the_price["currency"], "description": product_name,
        "price": the_price, "quantity": quantity,
    }


def event(now: int, event_type: str, data_object: dict[str, Any], previous: dict[str, Any] | None,
          pending_webhooks: int) -> dict[str, Any]:
    data: dict[str, Any] = {"object": data_object}
    if previous is not None:
        data["previous_attributes"] = previous
    return {
        "id": new_id("evt", 12), "object": "event", "api_version": API_VERSION, "created": now, "data": data,
        "livemode": False, "pending_webhooks": pending_webhooks,
        "request": {"id": None, "idempotency_key": None}, "type": event_type,
    }
