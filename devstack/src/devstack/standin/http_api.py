"""The stand-in's HTTP surface: Stripe's /v1 API, the hosted checkout page, and /_standin test controls.

Independent of the HTTP server: `Api.handle` takes a method, target, headers and body and answers a `Response`.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, TypeVar

from devstack.standin import catalog, checkout, checkout_page, payments, subscriptions, timeline
from devstack.standin.catalog import EXPAND, LIST
from devstack.standin.errors import StripeError, invalid
from devstack.standin.forms import Params, Spec, check_known, decode_form
from devstack.standin.objects import API_VERSION, new_id
from devstack.standin.store import Store, set_next_outcome
from devstack.standin.webhooks import Webhooks

LOG = logging.getLogger(__name__)
T = TypeVar("T")
Run = Callable[[Store, Params, str], dict[str, Any]]
IDEMPOTENCY_KEY_LENGTH_MAX = 255
UNIX_SECONDS_MAX = 253402300799  # 9999-12-31T23:59:59Z, Stripe's latest timestamp


class Headers(Protocol):
    """What the API reads of request headers (an http.server message; a dict in tests)."""

    def get(self, name: str, /) -> str | None: ...


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    spec: dict[str, Spec]
    run: Run


def _route(method: str, path: str, spec: dict[str, Spec], run: Run) -> Route:
    return Route(method, re.compile("^" + path.replace("{id}", "(?P<id>[^/]+)") + "$"), spec, run)


def _get(kind: str) -> Run:
    return lambda store, params, object_id: store.get(kind, object_id)


ROUTES = [
    _route("POST", "/v1/customers", catalog.CUSTOMER, lambda s, p, _: catalog.create_customer(s, p)),
    _route("GET", "/v1/customers", catalog.CUSTOMER_LIST, lambda s, p, _: catalog.list_customers(s, p)),
    _route("GET", "/v1/customers/{id}", EXPAND, _get("customer")),
    _route("POST", "/v1/customers/{id}", catalog.CUSTOMER, lambda s, p, i: catalog.update_customer(s, i, p)),
    _route("GET", "/v1/customers/{id}/payment_methods", LIST,
           lambda s, p, i: catalog.list_payment_methods(s, i, p)),
    _route("GET", "/v1/payment_methods/{id}", EXPAND, _get("payment_method")),
    _route("POST", "/v1/products", catalog.PRODUCT, lambda s, p, _: catalog.create_product(s, p)),
    _route("GET", "/v1/products/{id}", EXPAND, _get("product")),
    _route("POST", "/v1/prices", catalog.PRICE, lambda s, p, _: catalog.create_price(s, p)),
    _route("GET", "/v1/prices", catalog.PRICE_LIST, lambda s, p, _: catalog.list_prices(s, p)),
    _route("GET", "/v1/prices/{id}", EXPAND, _get("price")),
    _route("POST", "/v1/checkout/sessions", checkout.SESSION, lambda s, p, _: checkout.create_session(s, p)),
    _route("GET", "/v1/checkout/sessions/{id}", EXPAND, _get("checkout.session")),
    _route("POST", "/v1/checkout/sessions/{id}/expire", EXPAND, lambda s, p, i: checkout.expire(s, i)),
    _route("GET", "/v1/checkout/sessions/{id}/line_items", LIST,
           lambda s, p, i: checkout.list_line_items(s, i, p)),
    _route("POST", "/v1/payment_intents", payments.PAYMENT_INTENT,
           lambda s, p, _: payments.create_payment_intent(s, p)),
    _route("GET", "/v1/payment_intents/{id}", EXPAND, _get("payment_intent")),
    _route("GET", "/v1/charges/{id}", EXPAND, _get("charge")),
    _route("POST", "/v1/refunds", payments.REFUND, lambda s, p, _: payments.create_refund(s, p)),
    _route("GET", "/v1/refunds", payments.REFUND_LIST, lambda s, p, _: payments.list_refunds(s, p)),
    _route("GET", "/v1/refunds/{id}", EXPAND, _get("refund")),
    _route("GET", "/v1/setup_intents/{id}", EXPAND, _get("setup_intent")),
    _route("GET", "/v1/subscriptions", subscriptions.LIST_FILTERS,
           lambda s, p, _: subscriptions.list_subscriptions(s, p)),
    _route("GET", "/v1/subscriptions/{id}", EXPAND, _get("subscription")),
    _route("POST", "/v1/subscriptions/{id}", subscriptions.UPDATE, lambda s, p, i: subscriptions.update(s, i, p)),
    _route("DELETE", "/v1/subscriptions/{id}", subscriptions.CANCEL, lambda s, p, i: subscriptions.cancel(s, i, p)),
    _route("GET", "/v1/invoices/{id}", EXPAND, _get("invoice")),
    _route("GET", "/v1/invoice_payments", subscriptions.INVOICE_PAYMENT_LIST,
           lambda s, p, _: subscriptions.list_invoice_payments(s, p)),
    _route("GET", "/v1/events", {"type": "scalar", **LIST},
           lambda s, p, _: s.page([e for e in reversed(s.events) if p.text("type") in (None, e["type"])], p,
                                  "/v1/events")),
    _route("GET", "/v1/events/{id}", EXPAND, _get("event")),
]


TEST_CLOCKS = "/v1/test_helpers/test_clocks"
TEST_CLOCK_REACH_SECONDS = 2 * 366 * 86400


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status, json.dumps(body, indent=2).encode(), headers=headers or {})


def html_response(status: int, html: str, headers: dict[str, str] | None = None) -> Response:
    return Response(status, html.encode(), "text/html; charset=utf-8", headers or {})


class Api:
    def __init__(self, store: Store, webhooks: Webhooks) -> None:
        self.store = store
        self.webhooks = webhooks

    def handle(self, method: str, target: str, headers: Headers, body: bytes) -> Response:
        path, _, query = target.partition("?")
        try:
            if path.startswith(TEST_CLOCKS):
                return self._test_clock(method, path, headers, body)
            if path.startswith("/v1/"):
                return self._stripe(method, path, query, headers, body)
            if path.startswith("/checkout/"):
                return self._checkout(method, path, query, headers, body)
            if path.startswith("/_standin/"):
                return self._control(method, path, body)
            raise _unrecognized(method, path)
        except StripeError as error:
            return json_response(error.status, error.body())
        except Exception:
            LOG.exception("stand-in failed on %s %s", method, target)
            # The SDK retries a 500 unless told not to; a stand-in bug would only repeat.
            return json_response(500, {"error": {"type": "api_error", "message": "The stand-in failed; see its log."}},
                                 {"Stripe-Should-Retry": "false"})

    def run(self, operation: Callable[[], T]) -> tuple[T, list[dict[str, Any]]]:
        """Runs an operation under the lock, then delivers the events it emitted (also when it raised)."""
        error: StripeError | None = None
        with self.store.lock:
            try:
                result = copy.deepcopy(operation())
            except StripeError as raised:
                error = raised
            events = self.store.take_emitted()
            self.store.save()
        self.webhooks.deliver(events)
        if error is not None:
            raise error
        return result, copy.deepcopy(events)

    def _stripe(self, method: str, path: str, query: str, headers: Headers, body: bytes) -> Response:
        api_key = _api_key(headers.get("Authorization"))
        route, object_id = _match(method, path)
        raw = decode_form(query)
        if method != "GET":
            raw.update(decode_form(body.decode("utf-8", "replace")))
        check_known(raw, route.spec)
        params = Params(raw)
        key = headers.get("Idempotency-Key") if method == "POST" else None
        if key is not None and len(key) > IDEMPOTENCY_KEY_LENGTH_MAX:
            raise invalid(f"Idempotency keys can be no longer than {IDEMPOTENCY_KEY_LENGTH_MAX} characters.")
        request_id = new_id("req", 7)
        answer_headers = {"Request-Id": request_id, "Stripe-Version": API_VERSION}
        if key is not None:
            answer_headers["Idempotency-Key"] = key
        endpoint = f"{method} {path}"
        with self.store.lock:
            saved = self.store.saved_answers.get(f"{api_key} {key}") if key is not None else None
            if saved is not None:
                return _replay(saved, key or "", endpoint, raw, answer_headers)
            try:
                result = route.run(self.store, params, object_id)
                status, answer = 200, self.store.expand(result, params.strings("expand"))
            except StripeError as error:
                status, answer = error.status, error.body()
            events = self.store.take_emitted()
            for event in events:
                event["request"] = {"id": request_id, "idempotency_key": key}
            payload = json.dumps(answer, indent=2).encode()
            # Stripe keeps the outcome of a request that ran (a card decline too), not of one it refused.
            if key is not None and (status < 400 or status == 402):
                self.store.saved_answers[f"{api_key} {key}"] = {
                    "endpoint": endpoint, "params": raw, "status": status, "body": payload.decode(),
                    "request_id": request_id,
                }
            if method != "GET":
                self.store.save()
        self.webhooks.deliver(events)
        return Response(status, payload, headers=answer_headers)

    def _test_clock(self, method: str, path: str, headers: Headers, body: bytes) -> Response:
        """Stripe's test clocks (/v1/test_helpers/test_clocks), on the stand-in's one clock: creating one
        at a frozen_time ahead, or advancing one, lives through the stand-in's time to it (renewals and
        redeliveries on the way, as `advance`). The clock only moves forward; every customer shares it."""
        _api_key(headers.get("Authorization"))
        params = Params(decode_form(body.decode("utf-8", "replace")) if method == "POST" else {})
        match = re.fullmatch(TEST_CLOCKS + r"(?:/([^/]+)(/advance)?)?", path)
        if match is None:
            raise _unrecognized(method, path)
        clock_id, advancing = match.group(1), bool(match.group(2))
        if method == "GET" and clock_id and not advancing:
            with self.store.lock:
                return json_response(200, self._clock_object(self.store.get("test_helpers.test_clock", clock_id)))
        if method != "POST" or (clock_id is not None and not advancing):
            raise _unrecognized(method, path)
        frozen_time = params.integer("frozen_time", required=True, minimum=0)
        assert frozen_time is not None
        if frozen_time > self.store.now() + TEST_CLOCK_REACH_SECONDS:
            raise invalid("A test clock can move at most two years ahead at a time.", "frozen_time")
        with self.store.lock:
            if clock_id is None:
                created = {"id": new_id("clock", 24), "object": "test_helpers.test_clock", "created": self.store.now(),
                           "livemode": False, "name": params.text("name"), "status": "ready"}
                clock = self.store.add(created)
            else:
                clock = self.store.get("test_helpers.test_clock", clock_id)
                if frozen_time < self.store.now():
                    raise invalid("The test clock can only move forward.", "frozen_time")
        self.advance(max(frozen_time, self.store.now()))
        with self.store.lock:
            self.store.save()
            return json_response(200, self._clock_object(clock))

    def _clock_object(self, clock: dict[str, Any]) -> dict[str, Any]:
        return {**clock, "frozen_time": self.store.now(), "deletes_after": self.store.now() + 30 * 86400}

    def _checkout(self, method: str, path: str, query: str, headers: Headers, body: bytes) -> Response:
        match = re.fullmatch(r"/checkout/([^/]+)(/pay)?", path)
        if match is None or (method, bool(match.group(2))) not in (("GET", False), ("POST", True)):
            return html_response(404, checkout_page.render_done("There is no such page."))
        session_id = match.group(1)
        if method == "GET":
            with self.store.lock:
                shown = self.store.find("checkout.session", session_id)
                if shown is None:
                    return html_response(404, checkout_page.render_done("There is no such Checkout Session."))
                items = self.store.hidden[session_id]["line_items"]
                return html_response(200, checkout_page.render(shown, items, declined="declined=1" in query))
        outcome = decode_form(body.decode("utf-8", "replace")).get("outcome") or "succeed"
        wants_json = "application/json" in (headers.get("Accept") or "")
        try:
            session, events = self.run(lambda: checkout.pay(self.store, session_id, str(outcome)))
        except StripeError as error:
            if wants_json:
                raise
            return html_response(error.status, checkout_page.render_done(error.message))
        if wants_json:
            return json_response(200, {"session": session, "events": [event["id"] for event in events]})
        page = f"{self.store.public_base_url}/checkout/{session_id}"
        if session["status"] != "complete":
            return Response(303, b"", headers={"Location": f"{page}?declined=1"})
        return Response(303, b"", headers={"Location": checkout.success_redirect(session) or page})

    def _control(self, method: str, path: str, body: bytes) -> Response:
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            raise invalid("The body must be JSON.") from None
        if not isinstance(request, dict):
            raise invalid("The body must be a JSON object.")
        if method == "GET" and path == "/_standin/events":
            with self.store.lock:
                return json_response(200, self.store.event_records())
        if method == "POST" and path == "/_standin/next_off_session_outcome":
            with self.store.lock:
                outcome = set_next_outcome(self.store, request.get("outcome"))
                self.store.save()
                return json_response(200, {"outcome": outcome})
        if method == "GET" and path == "/_standin/clock":
            with self.store.lock:
                return json_response(200, {"now": self.store.now(), "advanced_seconds": int(self.store.clock_advance)})
        if method == "POST" and path == "/_standin/clock/advance":
            target = _advance_target(self.store, request)
            events = self.advance(target, failing=frozenset(_strings(request, "fail")))
            with self.store.lock:
                return json_response(200, {"now": self.store.now(), "events": [event["id"] for event in events]})
        if method in ("GET", "POST") and path == "/_standin/webhooks":
            if method == "POST":
                return json_response(200, self.webhooks.configure(request.get("url"), request.get("secret")))
            return json_response(200, {"url": self.webhooks.url, "secret": self.webhooks.secret})
        renew = re.fullmatch(r"/_standin/subscriptions/([^/]+)/renew", path)
        if method == "POST" and renew:
            sub, events = self.renew(renew.group(1), fail=bool(request.get("fail", False)))
            return json_response(200, {"subscription": sub, "events": [event["id"] for event in events]})
        resend = re.fullmatch(r"/_standin/events/([^/]+)/resend", path)
        if method == "POST" and resend:
            return json_response(200, self.resend(resend.group(1)))
        raise _unrecognized(method, path)

    def advance(self, until: int | None, failing: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
        """Lives through the stand-in's time up to `until` (None: now): each subscription whose period ends
        on the way renews at its period end (paid, or failed for the ids in `failing`), each webhook whose
        redelivery falls due is sent again, in time order, the clock reading each step's instant. Returns the
        events emitted on the way."""
        emitted: list[dict[str, Any]] = []
        while True:
            with self.store.lock:
                target = self.store.now() if until is None else until
                step = timeline.next_due(self.store, target)
                if step is None:
                    if until is not None and until > self.store.now():
                        self.store.advance_to(until)
                        self.store.save()
                    return emitted
                self.store.advance_to(step.at)
                redelivery = None
                if step.subscription_id is not None:
                    subscriptions.renew(self.store, step.subscription_id, step.subscription_id in failing)
                else:
                    redelivery = timeline.claim_redelivery(self.store, step.event_id)
                events = self.store.take_emitted()
                self.store.save()
            emitted += copy.deepcopy(events)
            self.webhooks.deliver(events + ([redelivery] if redelivery is not None else []))

    def renew(self, subscription_id: str, fail: bool = False) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Test control: the stand-in's clock goes to the end of the subscription's period (if it is not
        there yet), where the subscription renews (or ends, when set to cancel at the period's end)."""
        with self.store.lock:
            sub = self.store.get("subscription", subscription_id)
            if sub["status"] == "canceled":
                raise invalid(f"The subscription {subscription_id} is canceled; it has no next period.")
            end = max(item["current_period_end"] for item in sub["items"]["data"])
        events = self.advance(max(end, self.store.now()), failing=frozenset({subscription_id}) if fail else frozenset())
        with self.store.lock:
            return copy.deepcopy(self.store.get("subscription", subscription_id)), events

    def resend(self, event_id: str) -> dict[str, Any]:
        with self.store.lock:
            event = self.store.get("event", event_id)
        self.webhooks.deliver_one(event)
        with self.store.lock:
            return next(record for record in self.store.event_records() if record["id"] == event_id)


def _advance_target(store: Store, request: dict[str, Any]) -> int:
    seconds, to = request.get("seconds"), request.get("to")
    if (seconds is None) == (to is None):
        raise invalid("Pass one of seconds (how far to advance) or to (a unix time).", "seconds")
    value = seconds if seconds is not None else to
    if not isinstance(value, int) or isinstance(value, bool) or value < 0 or value > UNIX_SECONDS_MAX:
        raise invalid("seconds and to are whole, non-negative numbers of seconds.", "seconds" if to is None else "to")
    with store.lock:
        now = store.now()
    target = now + value if seconds is not None else value
    if target > UNIX_SECONDS_MAX:
        raise invalid("That is past the year 9999.", "seconds")
    return max(target, now)


def _strings(request: dict[str, Any], key: str) -> list[str]:
    value = request.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise invalid(f"{key} is a list of subscription ids.", key)
    return value


def _match(method: str, path: str) -> tuple[Route, str]:
    for route in ROUTES:
        found = route.pattern.match(path)
        if found and route.method == method:
            return route, found.groupdict().get("id") or ""
    raise _unrecognized(method, path)


def _unrecognized(method: str, path: str) -> StripeError:
    return StripeError(404, f"Unrecognized request URL ({method}: {path}). The local Stripe stand-in does not "
                            "implement it.")


def _replay(saved: dict[str, Any], key: str, endpoint: str, params: dict[str, Any],
            headers: dict[str, str]) -> Response:
    if saved["endpoint"] != endpoint:
        raise StripeError(400, f"Keys for idempotent requests can only be used for the same endpoint they were "
                               f"first used for ('{saved['endpoint']}' vs '{endpoint}'). Try using a key other than "
                               f"'{key}' if you meant to execute a different request.", type="idempotency_error")
    if saved["params"] != params:
        raise StripeError(400, "Keys for idempotent requests can only be used with the same parameters they were "
                               f"first used with. Try using a key other than '{key}' if you meant to execute a "
                               "different request.", type="idempotency_error")
    return Response(saved["status"], saved["body"].encode(),
                    headers={**headers, "Request-Id": saved["request_id"], "Idempotent-Replayed": "true"})


def _api_key(authorization: str | None) -> str:
    scheme, _, value = (authorization or "").partition(" ")
    key = value.strip()
    if scheme.lower() == "basic":  # curl -u sk_test_...:
        try:
            key = base64.b64decode(key).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            key = ""
    elif scheme.lower() != "bearer":
        key = ""
    if not key:
        raise StripeError(401, "You did not provide an API key. You need to provide your API key in the "
                               "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                               "YOUR_SECRET_KEY').")
    if not key.startswith("sk_"):
        shown = key[:8] + "*" * max(len(key) - 12, 0) + key[-4:] if len(key) > 12 else key
        raise StripeError(401, f"Invalid API Key provided: {shown}")
    return key
