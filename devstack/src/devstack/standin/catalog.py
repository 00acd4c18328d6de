"""Customers, payment methods, products and prices."""

from __future__ import annotations

import re
from typing import Any

from devstack.standin import objects
from devstack.standin.errors import invalid, missing
from devstack.standin.forms import MAP, SCALAR, Params, Spec, merge_metadata
from devstack.standin.store import Store

EXPAND: dict[str, Spec] = {"expand": [SCALAR]}
LIST: dict[str, Spec] = {"limit": SCALAR, "starting_after": SCALAR, **EXPAND}
RECURRING: dict[str, Spec] = {"interval": SCALAR, "interval_count": SCALAR}
INTERVALS = ("day", "week", "month", "year")
CUSTOMER: dict[str, Spec] = {
    "email": SCALAR, "name": SCALAR, "description": SCALAR, "phone": SCALAR, "metadata": MAP,
    "invoice_settings": {"default_payment_method": SCALAR}, **EXPAND,
}
CUSTOMER_LIST: dict[str, Spec] = {"email": SCALAR, **LIST}
PRODUCT_DATA: dict[str, Spec] = {"name": SCALAR, "description": SCALAR, "metadata": MAP}
PRODUCT: dict[str, Spec] = {"id": SCALAR, "active": SCALAR, **PRODUCT_DATA, **EXPAND}
PRICE: dict[str, Spec] = {
    "currency": SCALAR, "unit_amount": SCALAR, "recurring": RECURRING, "product": SCALAR,
    "product_data": PRODUCT_DATA, "lookup_key": SCALAR, "transfer_lookup_key": SCALAR, "metadata": MAP,
    "nickname": SCALAR, "active": SCALAR, **EXPAND,
}
PRICE_LIST: dict[str, Spec] = {
    "lookup_keys": [SCALAR], "active": SCALAR, "product": SCALAR, "type": SCALAR, "currency": SCALAR, **LIST,
}
_CURRENCY = re.compile(r"^[a-z]{3}$")


def create_customer(store: Store, params: Params) -> dict[str, Any]:
    if params.obj("invoice_settings").text("default_payment_method"):
        # A new customer has no payment methods yet, so none can be its default.
        raise invalid("The customer does not have a payment method with that ID.",
                      "invoice_settings[default_payment_method]")
    return store.add(objects.customer(
        store.now(), email=params.text("email"), name=params.text("name"),
        description=params.text("description"), phone=params.text("phone"),
        metadata=merge_metadata({}, params.metadata()),
    ))


def update_customer(store: Store, customer_id: str, params: Params) -> dict[str, Any]:
    customer = store.get("customer", customer_id)
    settings = params.obj("invoice_settings")
    default_pm = settings.text("default_payment_method")
    if default_pm is not None:
        method = store.find("payment_method", default_pm)
        if method is None or method["customer"] != customer_id:
            raise invalid(
                f"The customer does not have a payment method with the ID {default_pm}. The payment method must be "
                "attached to the customer.", settings.name("default_payment_method"), "resource_missing",
            )
    for field in ("email", "name", "description", "phone"):
        if params.has(field):
            customer[field] = params.text(field)
    if settings.has("default_payment_method"):
        customer["invoice_settings"]["default_payment_method"] = default_pm
    customer["metadata"] = merge_metadata(customer["metadata"], params.metadata())
    return customer


def list_customers(store: Store, params: Params) -> dict[str, Any]:
    email = params.text("email")
    found = [c for c in store.newest_first("customer") if email is None or c["email"] == email]
    return store.page(found, params, "/v1/customers")


def list_payment_methods(store: Store, customer_id: str, params: Params) -> dict[str, Any]:
    store.get("customer", customer_id)
    found = [m for m in store.newest_first("payment_method") if m["customer"] == customer_id]
    return store.page(found, params, f"/v1/customers/{customer_id}/payment_methods")


def new_payment_method(store: Store, customer: dict[str, Any] | None, *, declined: bool = False) -> dict[str, Any]:
    """The card a buyer typed on the hosted page (Stripe's test cards 4242, or 0002 that is declined), attached
    to `customer` when given."""
    return store.add(objects.payment_method(
        store.now(), customer["id"] if customer else None, customer["email"] if customer else None,
        last4="0002" if declined else "4242",
    ))


def create_product(store: Store, params: Params) -> dict[str, Any]:
    product_id = params.text("id")
    if product_id is not None and product_id in store.objects:
        raise invalid(f"Product already exists: {product_id}", "id", "resource_already_exists")
    product = objects.product(
        store.now(), name=_required(params, "name"), description=params.text("description"),
        metadata=merge_metadata({}, params.metadata()), product_id=product_id,
    )
    product["active"] = params.flag("active") is not False
    return store.add(product)


def create_price(store: Store, params: Params) -> dict[str, Any]:
    lookup_key = params.text("lookup_key")
    holder = _price_with_lookup_key(store, lookup_key)
    if holder is not None and not params.flag("transfer_lookup_key"):
        raise invalid(
            f"A price (`{holder['id']}`) already uses that lookup key. Pass transfer_lookup_key=true to move it.",
            "lookup_key", "lookup_key_exists",
        )
    price = _new_price(store, params, active=params.flag("active") is not False, product_data_allowed=True)
    if holder is not None:
        holder["lookup_key"] = None
    price["lookup_key"] = lookup_key
    price["nickname"] = params.text("nickname")
    price["metadata"] = merge_metadata({}, params.metadata())
    return price


def inline_price(store: Store, params: Params, *, product_data_allowed: bool) -> dict[str, Any]:
    """`price_data`: Stripe creates an inactive price that only its one owner uses."""
    return _new_price(store, params, active=False, product_data_allowed=product_data_allowed)


def _new_price(store: Store, params: Params, *, active: bool, product_data_allowed: bool) -> dict[str, Any]:
    currency = currency_param(params)
    unit_amount = params.integer("unit_amount", required=True, minimum=0)
    assert unit_amount is not None
    recurring = recurring_param(params)
    product_id = params.text("product")
    product_data = params.obj("product_data")
    if product_id is not None:
        store.get("product", product_id, params.name("product"))
        if params.has("product_data"):
            raise invalid("You may only specify one of these parameters: product, product_data.",
                          params.name("product_data"))
    elif product_data_allowed and params.has("product_data"):
        product = store.add(objects.product(
            store.now(), name=_required(product_data, "name"), description=product_data.text("description"),
            metadata=merge_metadata({}, product_data.metadata()),
        ))
        product_id = product["id"]
    else:
        raise missing(params.name("product"))
    return store.add(objects.price(
        store.now(), currency=currency, unit_amount=unit_amount, product_id=product_id, recurring=recurring,
        lookup_key=None, metadata={}, nickname=None, active=active,
    ))


def currency_param(params: Params) -> str:
    currency = _required(params, "currency").lower()
    if not _CURRENCY.match(currency):
        raise invalid(f"Invalid currency: {currency}", params.name("currency"))
    return currency


def recurring_param(params: Params) -> dict[str, Any] | None:
    if not params.has("recurring"):
        return None
    recurring = params.obj("recurring")
    interval = recurring.text("interval", required=True, choices=INTERVALS)
    count = recurring.integer("interval_count", minimum=1) or 1
    return {"interval": interval, "interval_count": count}


def list_prices(store: Store, params: Params) -> dict[str, Any]:
    keys = params.strings("lookup_keys")
    active = params.flag("active")
    product = params.text("product")
    kind = params.text("type", choices=("one_time", "recurring"))
    currency = params.text("currency")
    found = [
        price for price in store.newest_first("price")
        if (not keys or price["lookup_key"] in keys)
        and (active is None or price["active"] == active)
        and (product is None or price["product"] == product)
        and (kind is None or price["type"] == kind)
        and (currency is None or price["currency"] == currency.lower())
    ]
    return store.page(found, params, "/v1/prices")


def product_name(store: Store, price: dict[str, Any]) -> str:
    product = store.find("product", price["product"])
    return product["name"] if product else price["product"]


def _price_with_lookup_key(store: Store, lookup_key: str | None) -> dict[str, Any] | None:
    if lookup_key is None:
        return None
    return next((p for p in store.newest_first("price") if p["lookup_key"] == lookup_key), None)


def _required(params: Params, key: str) -> str:
    value = params.text(key, required=True)
    assert value is not None
    return value
