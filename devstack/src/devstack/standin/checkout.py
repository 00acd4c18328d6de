"""Checkout Sessions: creation, expiry, and what happens when the buyer pays (or is declined) on the hosted page."""

from __future__ import annotations

from typing import Any

from devstack.standin import catalog, objects, payments, subscriptions
from devstack.standin.catalog import EXPAND, PRODUCT_DATA, RECURRING
from devstack.standin.errors import invalid, missing
from devstack.standin.forms import MAP, SCALAR, Params, Spec, merge_metadata
from devstack.standin.store import Store

MODES = ("payment", "setup", "subscription")
SESSION: dict[str, Spec] = {
    "mode": SCALAR, "customer": SCALAR, "customer_email": SCALAR, "client_reference_id": SCALAR,
    "success_url": SCALAR, "cancel_url": SCALAR, "currency": SCALAR, "metadata": MAP,
    "line_items": [{
        "price": SCALAR, "quantity": SCALAR,
        "price_data": {"currency": SCALAR, "unit_amount": SCALAR, "product": SCALAR, "product_data": PRODUCT_DATA,
                       "recurring": RECURRING},
    }],
    "payment_intent_data": {"metadata": MAP, "description": SCALAR, "setup_future_usage": SCALAR},
    "subscription_data": {"metadata": MAP, "description": SCALAR},
    "setup_intent_data": {"metadata": MAP, "description": SCALAR},
    "payment_method_types": [SCALAR], "locale": SCALAR, **EXPAND,
}
MODE_ONLY = {"payment_intent_data": "payment", "subscription_data": "subscription", "setup_intent_data": "setup"}
DEFAULT_EMAIL = "buyer@example.com"


def create_session(store: Store, params: Params) -> dict[str, Any]:
    mode = params.text("mode", required=True, choices=MODES)
    customer_id, email = params.text("customer"), params.text("customer_email")
    if customer_id is not None:
        store.get("customer", customer_id, "customer")
        if email is not None:
            raise invalid("You may only specify one of these parameters: customer, customer_email.", "customer_email")
    for url_param in ("success_url", "cancel_url"):
        url = params.text(url_param)
        if url is not None and not url.startswith(("http://", "https://")):
            raise invalid("Not a valid URL", url_param, "url_invalid")
    if params.strings("payment_method_types") not in ([], ["card"]):
        raise invalid("The local Stripe stand-in only takes card payments.", "payment_method_types")
    for key, only_mode in MODE_ONLY.items():
        if params.has(key) and mode != only_mode:
            raise invalid(f"You can not pass `{key}` in `{mode}` mode.", key)
    intent_data = params.obj("payment_intent_data")
    future_usage = intent_data.text("setup_future_usage", choices=("on_session", "off_session"))
    lines = _lines(store, params, mode)
    currency = lines[0][0]["currency"] if lines else params.text("currency")
    amount = sum(price["unit_amount"] * quantity for price, quantity in lines) if lines else None
    session = objects.checkout_session(
        store.now(), mode=mode or "", customer_id=customer_id, customer_email=email,
        client_reference_id=params.text("client_reference_id"), metadata=merge_metadata({}, params.metadata()),
        amount=amount, currency=currency, success_url=params.text("success_url"),
        cancel_url=params.text("cancel_url"), public_base_url=store.public_base_url,
    )
    line_items = [objects.checkout_line_item(price, catalog.product_name(store, price), quantity)
                  for price, quantity in lines]
    return store.add(
        session, line_items=line_items, lines=lines,
        intent_metadata=merge_metadata({}, intent_data.metadata()), intent_description=intent_data.text("description"),
        future_usage=future_usage,
        subscription_metadata=merge_metadata({}, params.obj("subscription_data").metadata()),
        setup_metadata=merge_metadata({}, params.obj("setup_intent_data").metadata()),
    )


def _lines(store: Store, params: Params, mode: str | None) -> list[tuple[dict[str, Any], int]]:
    if mode == "setup":
        if params.has("line_items"):
            raise invalid("You can not pass `line_items` in `setup` mode.", "line_items")
        return []
    lines = [_line(store, item) for item in params.array("line_items")]
    if not lines:
        raise missing("line_items")
    if len({price["currency"] for price, _ in lines}) > 1:
        raise invalid("All line items must have the same currency.", "line_items")
    recurring = [price["recurring"] for price, _ in lines]
    if mode == "payment" and any(recurring):
        raise invalid("You specified `payment` mode but passed a recurring price. Either switch to `subscription` "
                      "mode or use only one-time prices.", "line_items")
    if mode == "subscription":
        if not all(recurring):
            raise invalid("The local Stripe stand-in takes only recurring prices in `subscription` mode.",
                          "line_items")
        if len({(r["interval"], r["interval_count"]) for r in recurring if r}) > 1:
            raise invalid("All recurring prices of a subscription must have the same billing interval.",
                          "line_items")
    return lines


def _line(store: Store, item: Params) -> tuple[dict[str, Any], int]:
    if item.has("price") and item.has("price_data"):
        raise invalid("You may only specify one of these parameters: price, price_data.", item.name("price"))
    quantity = item.integer("quantity", required=True, minimum=1)
    assert quantity is not None
    if item.has("price"):
        price = store.get("price", item.text("price", required=True), item.name("price"))
        if not price["active"]:
            raise invalid("The price specified is inactive. This field only accepts active prices.",
                          item.name("price"))
    elif item.has("price_data"):
        price = catalog.inline_price(store, item.obj("price_data"), product_data_allowed=True)
    else:
        raise missing(item.name("price"))
    return price, quantity


def expire(store: Store, session_id: str) -> dict[str, Any]:
    session = store.get("checkout.session", session_id)
    if session["status"] != "open":
        raise invalid('Only Checkout Sessions with a status in ["open"] can be expired.')
    session.update(status="expired", url=None)
    store.emit("checkout.session.expired", session)
    return session


def list_line_items(store: Store, session_id: str, params: Params) -> dict[str, Any]:
    store.get("checkout.session", session_id)
    return store.page(store.hidden[session_id]["line_items"], params,
                      f"/v1/checkout/sessions/{session_id}/line_items")


def success_redirect(session: dict[str, Any]) -> str | None:
    url = session["success_url"]
    return url.replace("{CHECKOUT_SESSION_ID}", session["id"]) if url else None


def pay(store: Store, session_id: str, outcome: str) -> dict[str, Any]:
    """The buyer pressed Pay (or Decline, card 4000 0000 0000 0002) on the hosted page."""
    session = store.get("checkout.session", session_id)
    if session["status"] != "open":
        raise invalid(f"This Checkout Session is {session['status']}; it can no longer be paid.")
    if outcome not in ("succeed", "decline"):
        raise invalid("outcome must be succeed or decline", "outcome")
    hidden = store.hidden[session_id]
    customer = store.find("customer", session["customer"])
    if outcome == "decline":
        _decline(store, session, hidden, customer)
        return session
    if customer is None and session["mode"] == "subscription":
        # Subscriptions always have a customer; Checkout makes one from the buyer's email.
        customer = store.add(objects.customer(store.now(), email=session["customer_email"] or DEFAULT_EMAIL,
                                              name=None, description=None, phone=None, metadata={}))
        session["customer"] = customer["id"]
    keep_card = session["mode"] != "payment" or hidden["future_usage"] is not None
    method = catalog.new_payment_method(store, customer if keep_card else None)
    session.update(status="complete", url=None, customer_details={
        "address": None, "email": (customer or {}).get("email") or session["customer_email"] or DEFAULT_EMAIL,
        "name": (customer or {}).get("name"), "phone": None, "tax_exempt": "none", "tax_ids": [],
    })
    if session["mode"] == "payment":
        intent = store.find("payment_intent", session["payment_intent"]) or _session_intent(store, session, hidden)
        intent["setup_future_usage"] = hidden["future_usage"]
        charge = payments.succeed(store, intent, method["id"])
        session.update(payment_intent=intent["id"], payment_status="paid")
        store.emit("payment_intent.succeeded", intent)
        store.emit("charge.succeeded", charge)
    elif session["mode"] == "subscription":
        assert customer is not None
        sub, invoice = subscriptions.start(store, customer=customer, lines=hidden["lines"],
                                           metadata=dict(hidden["subscription_metadata"]),
                                           payment_method_id=method["id"])
        session.update(subscription=sub["id"], invoice=invoice["id"], payment_status="paid")
        store.emit("customer.subscription.created", sub)
        store.emit("invoice.paid", invoice)
    else:
        setup = store.add(objects.setup_intent(store.now(), customer_id=session["customer"],
                                               payment_method_id=method["id"],
                                               metadata=dict(hidden["setup_metadata"]), succeeded=True))
        session["setup_intent"] = setup["id"]
        store.emit("setup_intent.succeeded", setup)
    store.emit("checkout.session.completed", session)
    return session


def _decline(store: Store, session: dict[str, Any], hidden: dict[str, Any], customer: dict[str, Any] | None) -> None:
    """The session stays open for another try; the failed attempt is reported as Stripe reports it."""
    method = catalog.new_payment_method(store, None, declined=True)
    if session["mode"] == "setup":
        setup = store.add(objects.setup_intent(store.now(), customer_id=session["customer"], payment_method_id=None,
                                               metadata=dict(hidden["setup_metadata"]), succeeded=False))
        store.emit("setup_intent.setup_failed", setup)
        return
    intent = store.find("payment_intent", session["payment_intent"]) or _session_intent(store, session, hidden)
    if session["mode"] == "payment":
        session["payment_intent"] = intent["id"]
    payments.fail(store, intent, method["id"], "decline")


def _session_intent(store: Store, session: dict[str, Any], hidden: dict[str, Any]) -> dict[str, Any]:
    in_payment_mode = session["mode"] == "payment"
    return payments.new_intent(
        store, amount=session["amount_total"] or 0, currency=session["currency"] or "usd",
        customer_id=session["customer"], metadata=dict(hidden["intent_metadata"]) if in_payment_mode else {},
        description=hidden["intent_description"] if in_payment_mode else None, payment_method_id=None,
    )
