"""The payment provider port on Stripe, through the official SDK (`stripe`).

Every call runs the SDK (blocking HTTP) in a worker thread, with Stripe's own idempotency key
derived from the use case's, so a retry never creates a second customer, session or invoice.
The SDK's api_base points at the local stand-in in tests and `make run` without keys.
Webhook JSON becomes the service's payment events here and nowhere else (stripe_provider_events.py).
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any, Callable, Mapping, TypeVar

import stripe
from stripe._base_address import BaseAddresses

from billing.adapters.stripe_provider_events import parse_verified_event, refunds_of, snapshot_of
from billing.adapters.clock import SystemClock
from billing.adapters.stripe_signature import verify_signature
from billing.domain.errors import IdempotencyKeyReused, PaymentProviderRefused, RequestInProgress
from billing.domain.auto_topup import REQUIRES_ACTION
from billing.service.provider_events import (
    CheckoutItem, CheckoutRequest, CheckoutSession, ProviderEvent, RefundCreated, SubscriptionSnapshot, TopupCharge,
    TopupOutcome,
)
from billing.service.ports import Clock, Unavailable

T = TypeVar("T")
REFUNDS_PAGE = 100  # Stripe's largest page
REFUND_PAGES_MAX = 20  # a charge refunded in more than 2,000 parts is not a charge this service sold
NETWORK_RETRIES = 2  # the SDK retries connection errors and 5xx with the same idempotency key


def stripe_idempotency_key(*parts: str) -> str:
    """Stripe keys are at most 255 characters: a digest of what identifies the request."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


class StripePayments:
    def __init__(
        self, api_key: str, webhook_secrets: tuple[str, ...], api_base: str | None = None, wall_clock: Clock | None = None,
    ):
        assert webhook_secrets, "at least one webhook signing secret"
        # Stripe signs with the wall clock: a service clock run ahead for local use must not refuse them.
        self._wall_clock = wall_clock or SystemClock()
        base: BaseAddresses | None = {"api": api_base} if api_base else None
        self._client = stripe.StripeClient(api_key, base_addresses=base, max_network_retries=NETWORK_RETRIES)
        self._webhook_secrets = webhook_secrets

    async def create_customer(self, account_id: str) -> str:
        customer = await self._call(
            self._client.v1.customers.create,
            {"metadata": {"user_id": account_id}, "description": f"billing account {account_id}"},
            {"idempotency_key": stripe_idempotency_key("customer", account_id)},
        )
        return str(customer["id"])

    async def create_checkout(self, request: CheckoutRequest, success_url: str, cancel_url: str) -> CheckoutSession:
        item = request.item
        metadata = {"user_id": request.account_id, "purpose": item.kind, f"{item.kind}_key": item.key,
                    f"{item.kind}_minutes": str(item.minutes)}
        price_data: dict[str, Any] = {
            "currency": item.currency.lower(), "unit_amount": item.unit_amount_cents, "product_data": {"name": item.name},
        }
        params: dict[str, Any] = {
            "customer": request.customer_id, "client_reference_id": request.account_id, "metadata": metadata,
            "success_url": success_url, "cancel_url": cancel_url,
        }
        if item.kind == "subscription":
            price_data["recurring"] = {"interval": "month"}
            params.update(mode="subscription", subscription_data={"metadata": {"user_id": request.account_id, "plan_key": item.key}})
        else:
            params.update(mode="payment", payment_intent_data={"metadata": metadata})
        params["line_items"] = [{"price_data": price_data, "quantity": 1}]
        options: dict[str, Any] = {}
        if request.idempotency_key:
            options["idempotency_key"] = stripe_idempotency_key("checkout", request.account_id, request.idempotency_key)
        session = await self._call(self._client.v1.checkout.sessions.create, params, options)
        return CheckoutSession(session_id=str(session["id"]), url=str(session["url"]))

    async def subscription(self, subscription_id: str) -> SubscriptionSnapshot:
        found = await self._call(self._client.v1.subscriptions.retrieve, subscription_id)
        return _snapshot(found)

    async def cancel_at_period_end(self, subscription_id: str, idempotency_key: str) -> SubscriptionSnapshot:
        updated = await self._call(
            self._client.v1.subscriptions.update, subscription_id, {"cancel_at_period_end": True},
            {"idempotency_key": stripe_idempotency_key(idempotency_key)},
        )
        return _snapshot(updated)

    async def create_plan_price(self, snapshot: SubscriptionSnapshot, item: CheckoutItem, idempotency_key: str) -> str:
        current = (await self._call(self._client.v1.subscriptions.retrieve, snapshot.subscription_id)).to_dict()
        product = current["items"]["data"][0]["price"]["product"]
        # A pending update takes items[].price (not price_data): the plan's price is created first.
        price = await self._call(self._client.v1.prices.create, {
            "currency": item.currency.lower(), "unit_amount": item.unit_amount_cents, "product": product,
            "recurring": {"interval": "month"}, "metadata": {"plan_key": item.key},
        }, {"idempotency_key": stripe_idempotency_key(idempotency_key, item.key, "price")})
        return str(price["id"])

    async def change_plan(
        self, snapshot: SubscriptionSnapshot, price_id: str, item: CheckoutItem, previous_plan_key: str,
        immediately: bool, idempotency_key: str,
    ) -> SubscriptionSnapshot:
        current = (await self._call(self._client.v1.subscriptions.retrieve, snapshot.subscription_id)).to_dict()
        key = stripe_idempotency_key(idempotency_key, item.key)
        # Only pending-update attributes (Stripe's "Pending updates reference"; metadata since API 2026-05-27).
        # The invoice of an upgrade is matched to the service's record of it by its price, not by this
        # metadata (an invoice keeps the metadata it was finalized with, before a pending update applies).
        params = {
            "items": [{"id": snapshot.item_id, "price": price_id}],
            # Up: the difference is invoiced and paid now. Down: the next invoice is the lower plan.
            "proration_behavior": "always_invoice" if immediately else "none",
            # An upgrade whose proration is declined must not move the subscription up unpaid.
            "payment_behavior": "pending_if_incomplete",
            "metadata": {"plan_key": item.key, "upgraded_from": previous_plan_key if immediately else ""},
        }
        updated = await self._call(
            self._client.v1.subscriptions.update, snapshot.subscription_id, params, {"idempotency_key": key},
        )
        if current.get("cancel_at_period_end") and not updated.to_dict().get("pending_update"):
            # A change of plan resumes a canceling subscription (not a pending-update attribute, so a
            # call of its own), and only once the change took: a declined upgrade leaves the
            # cancellation as the user set it (its invoice, paid later, resumes it: service/webhooks.py).
            updated = await self._call(
                self._client.v1.subscriptions.update, snapshot.subscription_id, {"cancel_at_period_end": False},
                {"idempotency_key": stripe_idempotency_key(idempotency_key, item.key, "resume")},
            )
        return _snapshot(updated)

    async def resume_subscription(self, subscription_id: str, idempotency_key: str) -> SubscriptionSnapshot:
        updated = await self._call(
            self._client.v1.subscriptions.update, subscription_id, {"cancel_at_period_end": False},
            {"idempotency_key": stripe_idempotency_key(idempotency_key, "resume")},
        )
        return _snapshot(updated)

    async def create_setup_checkout(
        self, account_id: str, customer_id: str, success_url: str, cancel_url: str
    ) -> CheckoutSession:
        params = {
            "mode": "setup", "customer": customer_id, "client_reference_id": account_id, "currency": "usd",
            "metadata": {"user_id": account_id, "purpose": "setup"}, "success_url": success_url, "cancel_url": cancel_url,
        }
        session = await self._call(self._client.v1.checkout.sessions.create, params)
        return CheckoutSession(session_id=str(session["id"]), url=str(session["url"]))

    async def has_live_subscription(self, customer_id: str) -> bool:
        found = await self._call(self._client.v1.subscriptions.list, {"customer": customer_id, "status": "all", "limit": 20})
        live = ("active", "trialing", "past_due", "unpaid", "incomplete", "paused")
        return any(sub["status"] in live for sub in found.to_dict().get("data") or [])

    async def has_payment_method(self, customer_id: str) -> bool:
        return await self._payment_method(customer_id) is not None

    async def charge_off_session(self, charge: TopupCharge) -> TopupOutcome:
        """A decline or any final refusal is an outcome (recorded on the account); only a transient
        failure raises (Unavailable: the attempt stays pending and is sent again)."""
        try:
            payment_method = await self._payment_method(charge.customer_id)
        except PaymentProviderRefused as refused:  # the customer gone, the key refused, ...
            return TopupOutcome("declined", None, _failure_code(refused.__cause__))
        if payment_method is None:
            return TopupOutcome("declined", None, "no_payment_method")
        item = charge.item
        metadata = {"user_id": charge.account_id, "purpose": "package", "package_key": item.key,
                    "package_minutes": str(item.minutes), "topup_seq": str(charge.seq)}
        params: dict[str, Any] = {
            "amount": item.unit_amount_cents, "currency": item.currency.lower(), "customer": charge.customer_id,
            "payment_method": payment_method, "off_session": True, "confirm": True, "metadata": metadata,
            "description": f"Auto top-up: {item.name}",
        }
        key = stripe_idempotency_key("topup", charge.account_id, str(charge.seq))
        try:
            create: Callable[..., Any] = self._client.v1.payment_intents.create  # card errors are answers here
            intent = await asyncio.to_thread(create, params, {"idempotency_key": key})
        except stripe.CardError as declined:
            error = declined.error
            code = (getattr(error, "code", None) or "card_declined") if error is not None else "card_declined"
            intent_id = getattr(getattr(error, "payment_intent", None), "id", None) if error is not None else None
            status = REQUIRES_ACTION if code == "authentication_required" else "declined"
            return TopupOutcome(status, intent_id, code)
        except stripe.StripeError as failure:
            if not is_final(failure):
                raise Unavailable(f"Stripe: {_said(failure)}") from failure
            return TopupOutcome("declined", None, _failure_code(failure))
        status = str(intent["status"])
        if status == "requires_action":
            return TopupOutcome(REQUIRES_ACTION, str(intent["id"]), "authentication_required")
        return TopupOutcome("succeeded" if status == "succeeded" else "processing", str(intent["id"]))

    async def invoice_of_payment(self, payment_id: str) -> str | None:
        found = await self._call(
            self._client.v1.invoice_payments.list,
            {"payment": {"type": "payment_intent", "payment_intent": payment_id}, "limit": 1},
        )
        data = found.to_dict().get("data") or []
        return str(data[0]["invoice"]) if data else None

    async def refunds_of_charge(self, charge_id: str) -> tuple[tuple[str, int], ...]:
        """Every refund of the charge: Stripe lists at most 100 a page, newest first."""
        pages: list[dict[str, Any]] = []
        params: dict[str, Any] = {"charge": charge_id, "limit": REFUNDS_PAGE}
        for _ in range(REFUND_PAGES_MAX):
            page = (await self._call(self._client.v1.refunds.list, params)).to_dict()
            pages.append(page)
            data = page.get("data") or []
            if not page.get("has_more") or not data:
                return refunds_of({"data": [r for p in pages for r in p.get("data") or []]})
            params = {**params, "starting_after": data[-1]["id"]}
        raise Unavailable(f"Stripe: charge {charge_id} lists more than {REFUNDS_PAGE * REFUND_PAGES_MAX} refunds")

    async def find_refund(self, payment_id: str, metadata_key: str, metadata_value: str) -> RefundCreated | None:
        """Stripe's GET /v1/refunds filtered by the payment (payment_intent= or charge=), newest first."""
        params: dict[str, Any] = {_refund_target(payment_id): payment_id, "limit": REFUNDS_PAGE}
        for _ in range(REFUND_PAGES_MAX):
            page = (await self._call(self._client.v1.refunds.list, params)).to_dict()
            data = page.get("data") or []
            for refund in data:
                if (refund.get("metadata") or {}).get(metadata_key) == metadata_value:
                    return _refund_created(refund)
            if not page.get("has_more") or not data:
                return None
            params = {**params, "starting_after": data[-1]["id"]}
        raise Unavailable(f"Stripe: payment {payment_id} lists more than {REFUNDS_PAGE * REFUND_PAGES_MAX} refunds")

    async def create_refund(
        self, payment_id: str, amount_cents: int, idempotency_key: str, metadata: Mapping[str, str],
    ) -> RefundCreated:
        """amount_cents 0: Stripe refunds what is left (the same request on a retry, whatever was
        refunded meanwhile). Stripe's refusal (more than is left, ...) is PaymentProviderRefused."""
        params: dict[str, Any] = {_refund_target(payment_id): payment_id, "metadata": dict(metadata)}
        if amount_cents:
            params["amount"] = amount_cents
        refund = await self._call(
            self._client.v1.refunds.create, params,
            {"idempotency_key": stripe_idempotency_key("refund", idempotency_key)},
        )
        return _refund_created(refund)

    def read_verified_event(self, payload: bytes) -> ProviderEvent:
        """A recorded delivery's payload, which verified when it arrived: read as then, not verified
        again (its signature's timestamp is long past the tolerance)."""
        return parse_verified_event(payload)

    async def _payment_method(self, customer_id: str) -> str | None:
        customer = (await self._call(self._client.v1.customers.retrieve, customer_id)).to_dict()
        default = (customer.get("invoice_settings") or {}).get("default_payment_method")
        if default:
            return default["id"] if isinstance(default, dict) else str(default)
        methods = await self._call(self._client.v1.customers.payment_methods.list, customer_id, {"limit": 1})
        data = methods.to_dict().get("data") or []
        return str(data[0]["id"]) if data else None

    def verify_webhook(self, payload: bytes, signature: str) -> ProviderEvent:
        # Two steps, in this order: the signature (any failure inside it is a refusal), then the
        # parse of what Stripe signed (any failure inside it is a malformed event).
        now = int(self._wall_clock.now().timestamp())
        verify_signature(payload, signature, self._webhook_secrets, now)
        return parse_verified_event(payload)

    async def _call(self, method: Callable[..., T], *args: Any) -> T:
        try:
            return await asyncio.to_thread(method, *args)
        except stripe.StripeError as failure:
            if is_key_in_use(failure):  # the same request, still running: it answers on a retry
                raise RequestInProgress("the payment provider is still carrying out a request with this "
                                        "idempotency_key; retry with the same key") from failure
            if isinstance(failure, stripe.IdempotencyError):
                raise IdempotencyKeyReused("idempotency_key was used for a different request",
                                           field="idempotency_key") from failure
            if is_final(failure):
                raise PaymentProviderRefused(f"Stripe refused the request: {_said(failure)}") from failure
            raise Unavailable(f"Stripe: {_said(failure)}") from failure


def _refund_target(payment_id: str) -> str:
    return "charge" if payment_id.startswith("ch_") else "payment_intent"


def _refund_created(refund: Any) -> RefundCreated:
    return RefundCreated(refund_id=str(refund["id"]), amount_cents=int(refund["amount"]),
                         currency=str(refund["currency"]).upper(), status=str(refund["status"]))


def _snapshot(subscription: Any) -> SubscriptionSnapshot:
    try:
        return snapshot_of(subscription.to_dict())
    except (KeyError, TypeError, IndexError, ValueError) as unexpected:
        raise Unavailable(f"Stripe answered a subscription this service cannot read: {unexpected!r}") from None


# Asking again may get another answer: Stripe's 409 is a request still in flight under the same
# idempotency key (or a lock it could not take), 429 a rate limit; 5xx and no answer at all too.
TRANSIENT_STATUSES = frozenset({409, 429})
_FINAL_ERRORS = (stripe.CardError, stripe.InvalidRequestError, stripe.AuthenticationError, stripe.PermissionError,
                 stripe.IdempotencyError)
_SAID_MAX = 200  # characters of Stripe's message passed on (a body that is not JSON can be a whole page)
_CODE_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")
_CODE_MAX = 64


def is_key_in_use(failure: stripe.StripeError) -> bool:
    """Stripe's idempotency_key_in_use (HTTP 409): another request with this key is in flight. The
    SDK makes it an IdempotencyError or a plain 409 APIError depending on its version and the body."""
    body = failure.json_body if isinstance(failure.json_body, dict) else {}
    said = body.get("error")
    code = failure.code or (said.get("code") if isinstance(said, dict) else None)
    return code == "idempotency_key_in_use" or (isinstance(failure, stripe.IdempotencyError) and failure.http_status == 409)


def is_final(failure: stripe.StripeError) -> bool:
    """Whether Stripe's answer stands (sending the same request again would get it again): a card
    error, an invalid request, a key it refuses, any other 4xx but 409 and 429 (a body that is not
    JSON included: a proxy's 404 page). Transient: no answer, 409, 429, 5xx."""
    if isinstance(failure, (stripe.APIConnectionError, stripe.RateLimitError)):
        return False
    if isinstance(failure, _FINAL_ERRORS):
        return True
    status = failure.http_status
    return status is not None and 400 <= status < 500 and status not in TRANSIENT_STATUSES


def _said(failure: stripe.StripeError) -> str:
    """Stripe's message, short; an answer that is not Stripe's JSON is named by its status."""
    stripes = isinstance(failure.json_body, dict) and isinstance(failure.json_body.get("error"), (dict, str))
    if not stripes and failure.http_status is not None:  # (the SDK's message would quote the whole body)
        return f"HTTP {failure.http_status} with a body that is not Stripe's JSON error"
    said = str(failure.user_message or failure)
    return said if len(said) <= _SAID_MAX else said[: _SAID_MAX - 3] + "..."


def _failure_code(failure: BaseException | None) -> str:
    """What the account's last_failure shows: Stripe's error code (resource_missing, api_key_expired,
    ...) when it gave a plain one, else provider_refused."""
    code = getattr(failure, "code", None) or getattr(getattr(failure, "error", None), "code", None)
    if isinstance(code, str) and 0 < len(code) <= _CODE_MAX and set(code) <= _CODE_CHARACTERS:
        return code
    return "provider_refused"
