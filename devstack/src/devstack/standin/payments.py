"""Payment intents, charges and refunds."""

from __future__ import annotations

import copy
from typing import Any

from devstack.standin import objects
from devstack.standin.catalog import EXPAND, LIST, currency_param
from devstack.standin.errors import StripeError, invalid, missing
from devstack.standin.forms import MAP, SCALAR, Params, Spec, merge_metadata
from devstack.standin.store import Store

PAYMENT_INTENT: dict[str, Spec] = {
    "amount": SCALAR, "currency": SCALAR, "customer": SCALAR, "payment_method": SCALAR, "off_session": SCALAR,
    "confirm": SCALAR, "metadata": MAP, "description": SCALAR, "payment_method_types": [SCALAR], **EXPAND,
}
REFUND: dict[str, Spec] = {
    "payment_intent": SCALAR, "charge": SCALAR, "amount": SCALAR, "reason": SCALAR, "metadata": MAP, **EXPAND,
}
DECLINES = {
    "decline": ("card_declined", "generic_decline", "Your card was declined."),
    "requires_action": ("authentication_required", "authentication_required",
                        "Your card was declined. This transaction requires authentication."),
}


def new_intent(store: Store, *, amount: int, currency: str, customer_id: str | None, metadata: dict[str, str],
               description: str | None, payment_method_id: str | None) -> dict[str, Any]:
    return store.add(objects.payment_intent(
        store.now(), amount=amount, currency=currency, customer_id=customer_id, metadata=metadata,
        description=description, payment_method_id=payment_method_id,
    ))


def succeed(store: Store, intent: dict[str, Any], payment_method_id: str) -> dict[str, Any]:
    """Charges the intent; returns the charge. The caller emits the events its flow sends."""
    intent["payment_method"] = payment_method_id
    charge = store.add(objects.charge(store.now(), intent, payment_method_id, succeeded=True))
    intent.update(status="succeeded", amount_received=intent["amount"], latest_charge=charge["id"],
                  last_payment_error=None, next_action=None)
    return charge


def fail(store: Store, intent: dict[str, Any], payment_method_id: str, outcome: str) -> dict[str, Any]:
    """A declined attempt: the intent goes back to requires_payment_method with Stripe's last_payment_error.
    A plain decline leaves a failed charge; an authentication demand never reaches the card network."""
    code, decline_code, message = DECLINES[outcome]
    intent["payment_method"] = None
    error: dict[str, Any] = {
        "code": code, "decline_code": decline_code, "doc_url": f"https://stripe.com/docs/error-codes/{code}",
        "message": message, "payment_method": copy.deepcopy(store.objects.get(payment_method_id)),
        "type": "card_error",
    }
    charge = None
    if outcome == "decline":
        charge = store.add(objects.charge(store.now(), intent, payment_method_id, succeeded=False,
                                          failure_code=code, failure_message=message))
        error["charge"] = charge["id"]
        intent["latest_charge"] = charge["id"]
    intent.update(status="requires_payment_method", last_payment_error=error)
    store.emit("payment_intent.payment_failed", intent)
    if charge is not None:
        store.emit("charge.failed", charge)
    return error


def create_payment_intent(store: Store, params: Params) -> dict[str, Any]:
    amount = params.integer("amount", required=True, minimum=1)
    assert amount is not None
    currency = currency_param(params)
    customer_id = params.text("customer")
    if customer_id is not None:
        store.get("customer", customer_id, "customer")
    method_id = params.text("payment_method")
    if method_id is not None:
        method = store.get("payment_method", method_id, "payment_method")
        if customer_id is not None and method["customer"] != customer_id:
            raise invalid(f"The provided PaymentMethod {method_id} is not attached to customer {customer_id}.",
                          "payment_method")
    off_session, confirm = params.flag("off_session"), params.flag("confirm")
    if off_session and not confirm:
        raise invalid("off_session can only be used when confirm=true.", "off_session")
    if confirm and method_id is None:
        # Stripe does not fall back to the customer's default payment method for a PaymentIntent.
        raise invalid(
            "You cannot confirm this PaymentIntent because it's missing a payment method. To confirm the "
            f"PaymentIntent with {customer_id}, specify a payment method attached to this customer along with "
            "the customer ID.", "payment_method",
        )
    intent = new_intent(store, amount=amount, currency=currency, customer_id=customer_id,
                        metadata=merge_metadata({}, params.metadata()), description=params.text("description"),
                        payment_method_id=method_id)
    if not confirm:
        return intent
    assert method_id is not None
    outcome = store.take_outcome()
    if outcome == "succeed":
        charge = succeed(store, intent, method_id)
        store.emit("payment_intent.succeeded", intent)
        store.emit("charge.succeeded", charge)
        return intent
    if outcome == "requires_action" and not off_session:
        # On-session the buyer could still authenticate, so this is an answer, not an error.
        intent.update(status="requires_action", next_action={"type": "use_stripe_sdk", "use_stripe_sdk": {}})
        store.emit("payment_intent.requires_action", intent)
        return intent
    error = fail(store, intent, method_id, outcome)
    raise StripeError(
        402, error["message"], type="card_error", code=error["code"],
        extra={key: copy.deepcopy(error[key]) for key in ("decline_code", "payment_method", "charge") if key in error}
        | {"payment_intent": copy.deepcopy(intent)},
    )


REFUND_LIST: dict[str, Spec] = {"charge": SCALAR, "payment_intent": SCALAR, **LIST}


def list_refunds(store: Store, params: Params) -> dict[str, Any]:
    """Newest first, as Stripe lists them; the way to a charge's refunds since charges stopped embedding them."""
    charge_id, intent_id = params.text("charge"), params.text("payment_intent")
    found = [r for r in store.newest_first("refund")
             if charge_id in (None, r["charge"]) and intent_id in (None, r["payment_intent"])]
    return store.page(found, params, "/v1/refunds")


def create_refund(store: Store, params: Params) -> dict[str, Any]:
    charge_id, intent_id = params.text("charge"), params.text("payment_intent")
    if charge_id is None and intent_id is None:
        raise missing("charge")
    if charge_id is not None:
        charge = store.get("charge", charge_id, "charge")
        if intent_id is not None and charge["payment_intent"] != intent_id:
            raise invalid(f"Charge {charge_id} does not belong to PaymentIntent {intent_id}.", "payment_intent")
    else:
        intent = store.get("payment_intent", intent_id, "payment_intent")
        if intent["status"] != "succeeded":
            raise invalid(f"This PaymentIntent ({intent_id}) does not have a successful charge to refund.",
                          "payment_intent", "charge_not_refundable")
        charge = store.get("charge", intent["latest_charge"])
    remaining = charge["amount"] - charge["amount_refunded"]
    if remaining == 0:
        raise invalid(f"Charge {charge['id']} has already been refunded.", None, "charge_already_refunded")
    amount = params.integer("amount", minimum=1)
    if amount is None:
        amount = remaining
    if amount > remaining:
        raise invalid(
            f"Refund amount ({objects.format_amount(amount, charge['currency'])}) is greater than unrefunded "
            f"amount on charge ({objects.format_amount(remaining, charge['currency'])})", "amount",
            "amount_too_large",
        )
    reason = params.text("reason", choices=("duplicate", "fraudulent", "requested_by_customer"))
    refund = store.add(objects.refund(store.now(), charge, amount, reason, merge_metadata({}, params.metadata())))
    charge["amount_refunded"] += amount
    charge["refunded"] = charge["amount_refunded"] == charge["amount"]
    store.emit("refund.created", refund)
    store.emit("charge.refunded", charge)
    return refund
