"""Subscriptions and their invoices: start from Checkout, price changes with prorations, renewals, cancellation."""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any

from devstack.standin import catalog, objects, payments
from devstack.standin.catalog import EXPAND, LIST, RECURRING
from devstack.standin.errors import invalid, missing
from devstack.standin.forms import MAP, SCALAR, Params, Spec, merge_metadata
from devstack.standin.store import Store

UPDATE: dict[str, Spec] = {
    "cancel_at_period_end": SCALAR, "metadata": MAP, "proration_behavior": SCALAR,
    # The stand-in's invoices are always paid, so "pending_if_incomplete" never has to hold one back; it does
    # refuse, as Stripe does, the parameters a pending update cannot carry (PENDING_UPDATE below).
    "payment_behavior": SCALAR,
    "items": [{
        "id": SCALAR, "price": SCALAR, "quantity": SCALAR,
        # Stripe's subscription price_data takes a product id; product_data is a Checkout-only convenience.
        "price_data": {"currency": SCALAR, "unit_amount": SCALAR, "product": SCALAR, "recurring": RECURRING},
    }],
    **EXPAND,
}
CANCEL: dict[str, Spec] = {
    "invoice_now": SCALAR, "prorate": SCALAR, "cancellation_details": {"comment": SCALAR, "feedback": SCALAR},
    **EXPAND,
}
# Stripe's "Pending updates reference" (docs.stripe.com/billing/subscriptions/pending-updates-reference): the
# only update-subscription attributes allowed with payment_behavior=pending_if_incomplete, items only with their
# price and quantity; metadata too since API version 2026-05-27.dahlia (the stand-in answers 2026-10-28.endive).
PENDING_UPDATE = frozenset({
    "expand", "payment_behavior", "proration_behavior", "proration_date", "billing_cycle_anchor", "items",
    "trial_end", "trial_from_plan", "add_invoice_items", "metadata",
})
PENDING_UPDATE_ITEM = frozenset({"id", "price", "quantity"})
PAYMENT_BEHAVIORS = ("allow_incomplete", "default_incomplete", "error_if_incomplete", "pending_if_incomplete")
LIST_FILTERS: dict[str, Spec] = {"customer": SCALAR, "price": SCALAR, "status": SCALAR, **LIST}
STATUSES = ("active", "past_due", "canceled", "all")
RETRY_AFTER = 3 * 86400


def start(store: Store, *, customer: dict[str, Any], lines: list[tuple[dict[str, Any], int]],
          metadata: dict[str, str], payment_method_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Checkout's subscription: active, first period from now, its first invoice paid. Returns it and the invoice."""
    now = store.now()
    first_price = lines[0][0]
    sub = objects.subscription(now, customer_id=customer["id"], currency=first_price["currency"],
                               metadata=metadata, payment_method_id=payment_method_id)
    end = objects.period_end(now, first_price["recurring"], 1)
    sub["items"]["data"] = [objects.subscription_item(now, sub["id"], price, quantity, now, end)
                            for price, quantity in lines]
    sub["items"]["total_count"] = len(lines)
    store.add(sub, periods=1, pending=[])
    invoice = _new_invoice(store, sub, "subscription_create",
                           [_cycle_line(store, sub, item, now, end) for item in sub["items"]["data"]], now, now)
    _pay(store, invoice, payment_method_id, "Subscription creation")
    sub["latest_invoice"] = invoice["id"]
    return sub, invoice


def update(store: Store, subscription_id: str, params: Params) -> dict[str, Any]:
    sub = store.get("subscription", subscription_id)
    if sub["status"] == "canceled" and (params.has("cancel_at_period_end") or params.has("items")):
        raise invalid("A canceled subscription can only update its cancellation_details and metadata.")
    behavior = params.text("proration_behavior", choices=("create_prorations", "none", "always_invoice"))
    if params.text("payment_behavior", choices=PAYMENT_BEHAVIORS) == "pending_if_incomplete":
        _check_pending_update(params)
    cancel_at_period_end = params.flag("cancel_at_period_end")
    metadata = params.metadata()
    changes = [_item_change(store, sub, item_params) for item_params in params.array("items")]
    now = store.now()
    before = copy.deepcopy(sub)
    sub["metadata"] = merge_metadata(sub["metadata"], metadata)
    if cancel_at_period_end is not None and cancel_at_period_end != sub["cancel_at_period_end"]:
        _set_cancel_at_period_end(sub, cancel_at_period_end, now)
    proration_lines: list[dict[str, Any]] = []
    for item, price, quantity in changes:
        if price["id"] != item["price"]["id"] or quantity != item["quantity"]:
            proration_lines += _proration_lines(store, sub, item, price, quantity, now)
            item.update(price=price, quantity=quantity)
    invoice = None
    if proration_lines and behavior == "always_invoice":
        invoice = _new_invoice(store, sub, "subscription_update", proration_lines, now, now)
        _pay(store, invoice, sub["default_payment_method"], "Subscription update")
        sub["latest_invoice"] = invoice["id"]
    elif proration_lines and behavior in (None, "create_prorations"):
        store.hidden[sub["id"]]["pending"].extend(proration_lines)  # billed with the next renewal
    previous = objects.changed_attributes(before, sub)
    if previous:
        store.emit("customer.subscription.updated", sub, previous)
    if invoice is not None:
        store.emit("invoice.paid", invoice)
    return sub


def cancel(store: Store, subscription_id: str, params: Params) -> dict[str, Any]:
    sub = store.get("subscription", subscription_id)
    if sub["status"] == "canceled":
        raise invalid(f"The subscription {subscription_id} has already been canceled.")
    details = params.obj("cancellation_details")
    params.flag("invoice_now"), params.flag("prorate")  # validated; a canceled period is not refunded here
    now = store.now()
    sub.update(status="canceled", canceled_at=now, ended_at=now, cancel_at=None, cancellation_details={
        "comment": details.text("comment"), "feedback": details.text("feedback"),
        "reason": "cancellation_requested",
    })
    store.emit("customer.subscription.deleted", sub)
    return sub


def renew(store: Store, subscription_id: str, fail: bool) -> dict[str, Any]:
    """The subscription's period has ended (the stand-in's clock reads its end): the next period, or the end."""
    sub = store.get("subscription", subscription_id)
    if sub["status"] == "canceled":
        raise invalid(f"The subscription {subscription_id} is canceled; it has no next period.")
    items = sub["items"]["data"]
    old_start, old_end = items[0]["current_period_start"], items[0]["current_period_end"]
    if sub["cancel_at_period_end"]:
        sub.update(status="canceled", ended_at=old_end)
        store.emit("customer.subscription.deleted", sub)
        return sub
    hidden = store.hidden[sub["id"]]
    hidden["periods"] += 1
    new_end = objects.period_end(sub["billing_cycle_anchor"], items[0]["price"]["recurring"], hidden["periods"])
    before = copy.deepcopy(sub)
    for item in items:
        item.update(current_period_start=old_end, current_period_end=new_end)
    lines = hidden["pending"] + [_cycle_line(store, sub, item, old_end, new_end) for item in items]
    hidden["pending"] = []
    # Stripe's invoice period looks back at the period just ended; the lines carry the new one.
    invoice = _new_invoice(store, sub, "subscription_cycle", lines, old_start, old_end)
    sub["latest_invoice"] = invoice["id"]
    if not fail:
        _pay(store, invoice, sub["default_payment_method"], "Subscription update")
        sub["status"] = "active"
    store.emit("customer.subscription.updated", sub, objects.changed_attributes(before, sub))
    if not fail:
        store.emit("invoice.paid", invoice)
        return sub
    invoice.update(attempted=True, attempt_count=1, next_payment_attempt=store.now() + RETRY_AFTER)
    store.emit("invoice.payment_failed", invoice)
    if sub["status"] != "past_due":
        before = copy.deepcopy(sub)
        sub["status"] = "past_due"
        store.emit("customer.subscription.updated", sub, objects.changed_attributes(before, sub))
    return sub


def list_subscriptions(store: Store, params: Params) -> dict[str, Any]:
    customer, price = params.text("customer"), params.text("price")
    status = params.text("status", choices=STATUSES)
    found = [
        sub for sub in store.newest_first("subscription")
        if (customer is None or sub["customer"] == customer)
        and (price is None or any(item["price"]["id"] == price for item in sub["items"]["data"]))
        and (status == "all" or sub["status"] == status or (status is None and sub["status"] != "canceled"))
    ]
    return store.page(found, params, "/v1/subscriptions")


def _item_change(store: Store, sub: dict[str, Any], params: Params) -> tuple[dict[str, Any], dict[str, Any], int]:
    item_id = params.text("id")
    if item_id is None:
        raise invalid(f"The local Stripe stand-in only changes existing items: pass {params.name('id')}.",
                      params.name("id"))
    item = next((i for i in sub["items"]["data"] if i["id"] == item_id), None)
    if item is None:
        raise invalid(f"No such subscription item: '{item_id}'", params.name("id"), "resource_missing")
    if params.has("price") and params.has("price_data"):
        raise invalid("You may only specify one of these parameters: price, price_data.", params.name("price"))
    if params.has("price"):
        price = store.get("price", params.text("price", required=True), params.name("price"))
        if not price["active"]:
            raise invalid("The price specified is inactive. This field only accepts active prices.",
                          params.name("price"))
    elif params.has("price_data"):
        data = params.obj("price_data")
        if not data.has("recurring"):
            raise missing(data.name("recurring"))
        price = catalog.inline_price(store, data, product_data_allowed=False)
    else:
        price = item["price"]
    old = item["price"]
    if price["recurring"] is None:
        raise invalid("The price specified is set to `type=one_time` but this field only accepts prices with "
                      "`type=recurring`.", params.name("price"))
    if price["currency"] != old["currency"] or price["recurring"]["interval"] != old["recurring"]["interval"] \
            or price["recurring"]["interval_count"] != old["recurring"]["interval_count"]:
        raise invalid("The local Stripe stand-in only changes to a price with the same currency and interval.",
                      params.name("price"))
    quantity = params.integer("quantity", minimum=1) or item["quantity"]
    return item, price, quantity


def _check_pending_update(params: Params) -> None:
    refused = [key for key in params.data if key not in PENDING_UPDATE]
    refused += [item.name(key) for item in params.array("items") for key in item.data if key not in PENDING_UPDATE_ITEM]
    if refused:
        raise invalid(
            "When payment_behavior is pending_if_incomplete, a subscription update only accepts these parameters: "
            f"{', '.join(sorted(PENDING_UPDATE))} (items with id, price and quantity). Received: "
            f"{', '.join(refused)}. See https://docs.stripe.com/billing/subscriptions/pending-updates-reference.",
            refused[0],
        )


def _set_cancel_at_period_end(sub: dict[str, Any], flag: bool, now: int) -> None:
    # Stripe records the request time as canceled_at and the period end as cancel_at.
    details = dict(sub["cancellation_details"])
    details["reason"] = "cancellation_requested" if flag else None
    end = max(item["current_period_end"] for item in sub["items"]["data"])
    sub.update(cancel_at_period_end=flag, cancel_at=end if flag else None, canceled_at=now if flag else None,
               cancellation_details=details)


def _proration_lines(store: Store, sub: dict[str, Any], item: dict[str, Any], price: dict[str, Any],
                     quantity: int, now: int) -> list[dict[str, Any]]:
    """Credit for the unused rest of the period on the old price, charge for it on the new one."""
    start, end = item["current_period_start"], item["current_period_end"]
    length = max(end - start, 1)
    remaining = min(max(end - now, 0), length)
    old_price, old_quantity = item["price"], item["quantity"]
    unused = old_price["unit_amount"] * old_quantity * remaining // length
    owed = price["unit_amount"] * quantity * remaining // length
    date = datetime.fromtimestamp(now, tz=timezone.utc).strftime("%d %b %Y")
    return [
        objects.invoice_line(
            sub, item, amount=-unused, start=now, end=end, proration=True, quantity=old_quantity,
            description=f"Unused time on {old_quantity} × {catalog.product_name(store, old_price)} after {date}",
        ),
        objects.invoice_line(
            sub, {**item, "price": price}, amount=owed, start=now, end=end, proration=True, quantity=quantity,
            description=f"Remaining time on {quantity} × {catalog.product_name(store, price)} after {date}",
        ),
    ]


def _cycle_line(store: Store, sub: dict[str, Any], item: dict[str, Any], start: int, end: int) -> dict[str, Any]:
    price, quantity = item["price"], item["quantity"]
    recurring = price["recurring"]
    every = recurring["interval"] if recurring["interval_count"] == 1 else \
        f"every {recurring['interval_count']} {recurring['interval']}s"
    description = (f"{quantity} × {catalog.product_name(store, price)} "
                   f"(at {objects.format_amount(price['unit_amount'], price['currency'])} / {every})")
    return objects.invoice_line(sub, item, amount=price["unit_amount"] * quantity, start=start, end=end,
                                proration=False, description=description, quantity=quantity)


def _new_invoice(store: Store, sub: dict[str, Any], billing_reason: str, lines: list[dict[str, Any]],
                 period_start: int, period_end: int) -> dict[str, Any]:
    customer = store.get("customer", sub["customer"])
    number = f"{customer['invoice_prefix']}-{customer['next_invoice_sequence']:04d}"
    customer["next_invoice_sequence"] += 1
    return store.add(objects.invoice(
        store.now(), customer=customer, subscription=sub, billing_reason=billing_reason, lines=lines,
        period_start=period_start, period_end=period_end, number=number,
    ))


def _pay(store: Store, invoice: dict[str, Any], payment_method_id: str | None, description: str) -> None:
    """Pays an invoice off-session; its payment intent and charge carry no metadata (Stripe's don't)."""
    if invoice["amount_due"] > 0 and payment_method_id is not None:
        intent = payments.new_intent(
            store, amount=invoice["amount_due"], currency=invoice["currency"], customer_id=invoice["customer"],
            metadata={}, description=description, payment_method_id=payment_method_id,
        )
        payments.succeed(store, intent, payment_method_id)
        store.add({
            "id": objects.new_id("inpay", 12), "object": "invoice_payment", "created": store.now(),
            "invoice": invoice["id"], "amount_paid": invoice["amount_due"], "currency": invoice["currency"],
            "is_default": True, "livemode": False, "status": "paid",
            "payment": {"type": "payment_intent", "payment_intent": intent["id"]},
        })
    invoice.update(status="paid", amount_paid=invoice["amount_due"], amount_remaining=0, attempted=True,
                   attempt_count=1)
    invoice["status_transitions"]["paid_at"] = store.now()


INVOICE_PAYMENT_LIST: dict[str, Spec] = {"invoice": SCALAR, "payment": {"type": SCALAR, "payment_intent": SCALAR}, **LIST}


def list_invoice_payments(store: Store, params: Params) -> dict[str, Any]:
    """Which invoice a payment paid: Stripe's answer to "what did this PaymentIntent pay for"."""
    invoice_id = params.text("invoice")
    payment = params.data.get("payment") or {}
    intent_id = payment.get("payment_intent") if isinstance(payment, dict) else None
    found = [
        p for p in store.newest_first("invoice_payment")
        if (invoice_id is None or p["invoice"] == invoice_id)
        and (intent_id is None or p["payment"]["payment_intent"] == intent_id)
    ]
    return store.page(found, params, "/v1/invoice_payments")
