"""Payments end to end: REST through Envoy, the real server, the Stripe SDK against the local
stand-in, and webhooks signed as Stripe signs them, delivered back through Envoy."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from datetime import datetime, timedelta, timezone

import stripe

from billing.domain.clock_math import add_months
from tests.e2e.conftest import E2E_STRIPE_KEY, E2E_WEBHOOK_SECRET
from tests.e2e.helpers import assert_error, call, create_account, new_user
from tests.support import stripe_events as se
from testkit.waiting import wait_until


def stripe_client(standin) -> stripe.StripeClient:
    return stripe.StripeClient(E2E_STRIPE_KEY, base_addresses={"api": standin.api_base})


def events_of(http, user: str) -> list[dict]:
    status, _, body = call(http, "GET", f"/v1/billing/events/{user}?limit=200")
    assert status == 200, body
    return body["events"]


def balance_of(http, user: str) -> dict:
    status, _, body = call(http, "GET", f"/v1/billing/balance/{user}")
    assert status == 200, body
    return body


def test_purchase_pay_credit_resume_then_refund(http, stripe_standin):
    user = new_user()
    create_account(http, user)
    status, _, refusal = call(http, "POST", "/v1/billing/consume",
                              {"user_id": user, "operation": "build", "seconds": 6000, "idempotency_key": "big"})
    assert status == 402, refusal
    package = next(s for s in refusal["suggestions"] if s["type"] == "package")
    purchase = {"user_id": user, "package_key": package["key"], "currency": "EUR", "idempotency_key": "buy-1"}
    status, _, bought = call(http, "POST", "/v1/billing/packages/purchase", purchase)
    assert status == 200, bought
    assert bought["currency"] == "EUR" and bought["package_key"] == package["key"]
    assert bought["unit_amount_cents"] > 0 and bought["display_price"] == bought["unit_amount_cents"] / 100
    assert set(bought) >= {"checkout_url", "session_id", "currency", "unit_amount_cents", "display_price", "package_minutes"}
    status, _, again = call(http, "POST", "/v1/billing/packages/purchase", purchase)
    assert again["session_id"] == bought["session_id"]  # the same key: the same session, never a second one
    with urllib.request.urlopen(bought["checkout_url"]) as page:
        assert f"{bought['display_price']:.2f}" in page.read().decode()
    assert not [e for e in events_of(http, user) if e["type"] == "package_credit"]  # paid, not promised

    delivered = stripe_standin.pay(bought["session_id"])
    assert {e["type"] for e in delivered} >= {"payment_intent.succeeded", "checkout.session.completed"}
    assert all(e.get("last_delivery_status") == 200 for e in stripe_standin.events() if e["id"] in {d["id"] for d in delivered})
    credits = [e for e in events_of(http, user) if e["type"] == "package_credit"]
    assert len(credits) == 1 and credits[0]["seconds"] == package["minutes"] * 60
    packages = [b for b in balance_of(http, user)["buckets"]["paid"] if b["source"] == "package"]
    assert [b["seconds"] for b in packages] == [package["minutes"] * 60]
    for event in delivered:  # Stripe delivers again: nothing more
        stripe_standin.resend(event["id"])
    assert len([e for e in events_of(http, user) if e["type"] == "package_credit"]) == 1

    # The resumed operation may name its own seconds: here it leaves some of the package.
    resume = {"user_id": user, "operation": "build", "seconds": 3000, "idempotency_key": "big-2",
              "resume_token": refusal["resume_token"]}
    status, _, resumed = call(http, "POST", "/v1/billing/consume", resume)
    assert status == 200, resumed
    status, _, used = call(http, "POST", "/v1/billing/consume", resume | {"idempotency_key": "big-3"})
    assert_error(status, used, 409, "RESUME_TOKEN_USED")

    session = stripe_client(stripe_standin).v1.checkout.sessions.retrieve(bought["session_id"])
    stripe_client(stripe_standin).v1.refunds.create({"payment_intent": session["payment_intent"]})
    left = [b for b in balance_of(http, user)["buckets"]["paid"] if b["source"] == "package"]
    assert left == []  # what was left of the package is gone; what was spent stays spent
    refund = [e for e in events_of(http, user) if e["type"] == "adjustment" and e["metadata"].get("refund_of")]
    assert len(refund) == 1 and refund[0]["seconds"] == -(package["minutes"] * 60 - (3000 - 900))


def customer_of(http, stripe_standin, user: str) -> str:
    """The user's customer at the stand-in, made by a first checkout (as a real purchase does)."""
    status, _, bought = call(http, "POST", "/v1/billing/packages/purchase",
                             {"user_id": user, "package_key": "mini", "currency": "USD"})
    assert status == 200, bought
    return str(stripe_client(stripe_standin).v1.checkout.sessions.retrieve(bought["session_id"])["customer"])


def post_webhook(http, payload: bytes, signature: str | None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"} | ({"Stripe-Signature": signature} if signature is not None else {})
    status, _, body = http("POST", "/v1/billing/webhooks/stripe", body=payload, key=None, headers=headers)
    return status, json.loads(body)


class RefusingEachEventOnce:
    """A webhook endpoint in front of the real one that answers 503 to each event's first delivery."""

    def __init__(self, target: str) -> None:
        seen: set[str] = set()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                payload = self.rfile.read(int(self.headers["Content-Length"]))
                event_id = json.loads(payload)["id"]
                status = 503
                if event_id in seen:
                    request = urllib.request.Request(target, data=payload, method="POST", headers={
                        "Content-Type": self.headers["Content-Type"],
                        "Stripe-Signature": self.headers["Stripe-Signature"]})
                    try:
                        with urllib.request.urlopen(request, timeout=10) as answer:
                            status = answer.status
                    except urllib.error.HTTPError as error:
                        status = error.code
                seen.add(event_id)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhook"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()


def test_a_refused_webhook_is_redelivered_and_the_package_credited_once(http, stripe_standin):
    user = new_user()
    create_account(http, user)
    status, _, bought = call(http, "POST", "/v1/billing/packages/purchase",
                             {"user_id": user, "package_key": "mini", "currency": "USD", "idempotency_key": "b1"})
    assert status == 200, bought
    real = stripe_standin.webhook_url
    front = RefusingEachEventOnce(real)
    stripe_standin.configure_webhook(front.url, E2E_WEBHOOK_SECRET)
    try:
        delivered = stripe_standin.pay(bought["session_id"])
        ids = {event["id"] for event in delivered}
        assert all(record["last_delivery_status"] == 503 for record in stripe_standin.events() if record["id"] in ids)
        wait_until(lambda: all(record["last_delivery_status"] == 200
                               for record in stripe_standin.events() if record["id"] in ids),
                   "every event delivered again and accepted", timeout=30)
    finally:
        stripe_standin.configure_webhook(real, E2E_WEBHOOK_SECRET)
        front.server.shutdown()
        front.server.server_close()
    assert all(r["delivery_attempts"] == 2 and r["next_delivery_at"] is None
               for r in stripe_standin.events() if r["id"] in ids)
    assert len([e for e in events_of(http, user) if e["type"] == "package_credit"]) == 1


def test_webhooks_with_bad_signatures_are_400_and_change_nothing(http, stripe_standin):
    user = new_user()
    create_account(http, user)
    customer = customer_of(http, stripe_standin, user)
    now = int(time.time())
    evt = se.payment_intent_succeeded("pi_" + uuid.uuid4().hex, user, "mini", 60, 499, now, customer=customer)
    payload, signature = se.signed(evt, "whsec_not_ours")
    good = se.signed(evt, E2E_WEBHOOK_SECRET)[1].split(",v1=")[1]
    refused = [
        signature, None,
        se.signed(evt, E2E_WEBHOOK_SECRET, timestamp=now - 3600)[1],  # stale
        se.signed(evt, E2E_WEBHOOK_SECRET, timestamp=now + 3600)[1],  # an hour ahead, signed right
        f"t={now},v1=\u00e9",  # issue 19: a non-ASCII v1 once made the SDK raise TypeError, read as verified
        f"t={now},v1={good},v1=\u00e9",
        f"t={now},v1={good[:-1]}\u0660",
    ]
    for header in refused:
        encoded = None if header is None else header.encode("utf-8").decode("latin-1")  # raw UTF-8 bytes on the wire
        status, body = post_webhook(http, payload, encoded)
        assert status == 400 and body["field"] == "stripe-signature", (header, body)
    assert not [e for e in events_of(http, user) if e["type"] == "package_credit"]
    payload, signature = se.signed(evt, E2E_WEBHOOK_SECRET)
    status, _, body = http("POST", "/v1/billing/webhooks/stripe", body=payload, key=None,
                           headers={"Content-Type": "application/json; charset=utf-8", "Stripe-Signature": signature})
    assert status == 200 and json.loads(body) == {"received": True, "outcome": "processed"}


def test_signed_webhooks_that_do_not_match_what_was_sold_credit_nothing(http, stripe_standin):
    """Issue 19, items 2 and 3, through Envoy: signed right, and still not credited."""
    user, other = new_user(), new_user()
    create_account(http, user)
    create_account(http, other)
    customer = customer_of(http, stripe_standin, user)
    now = int(time.time())
    cheap = se.payment_intent_succeeded("pi_" + uuid.uuid4().hex, user, "mega", 1000, 1, now, currency="jpy",
                                        customer=customer)
    status, body = post_webhook(http, *se.signed(cheap, E2E_WEBHOOK_SECRET))
    assert status == 200 and body["outcome"] == "mismatch", body
    someone_else = se.payment_intent_succeeded("pi_" + uuid.uuid4().hex, other, "mini", 60, 499, now, customer=customer)
    status, body = post_webhook(http, *se.signed(someone_else, E2E_WEBHOOK_SECRET))
    assert status == 200 and body["outcome"] == "mismatch", body
    for broken in (dict(cheap, id="evt_" + uuid.uuid4().hex, created=1e20),
                   {"id": "evt_" + uuid.uuid4().hex, "type": "payment_intent.succeeded", "created": now,
                    "data": {"object": dict(cheap["data"]["object"], amount=-499, amount_received=-499)}}):
        payload, signature = se.signed(broken, E2E_WEBHOOK_SECRET)
        for _ in range(2):  # Stripe's retry gets the same answer
            status, body = post_webhook(http, payload, signature)
            assert status == 400 and body["field"] == "payload", body
    deep = b'{"id":"evt_deep","type":"payment_intent.succeeded","created":1,"data":' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    status, body = post_webhook(http, deep, se.signed_bytes(deep, E2E_WEBHOOK_SECRET))
    assert status == 400 and body["field"] == "payload", body
    for account in (user, other):
        assert not [e for e in events_of(http, account) if e["type"] == "package_credit"]


def test_subscription_renewal_rolls_over_up_to_the_cap(http, stripe_standin):
    user = new_user()
    create_account(http, user)
    # A subscription that started a month ago, less a few seconds: its period ends very soon.
    now = datetime.now(timezone.utc)
    period_end = now + timedelta(seconds=4)
    start = add_months(period_end, -1)
    stripe_standin.clock_shift[0] = (start - now).total_seconds()
    try:
        status, _, checkout = call(http, "POST", "/v1/billing/subscriptions/checkout",
                                   {"user_id": user, "plan_key": "starter", "currency": "USD"})
        assert status == 200, checkout
        stripe_standin.pay(checkout["session_id"])
    finally:
        stripe_standin.clock_shift[0] = 0.0
    balance = balance_of(http, user)
    assert balance["plan_key"] == "starter" and balance["subscription_status"] == "active", balance
    assert balance["subscription"]["current_period_end_at"] is not None
    subscription_seconds = sum(b["seconds"] for b in balance["buckets"]["paid"] if b["source"] == "subscription")
    assert subscription_seconds == 300 * 60
    status, _, dup = call(http, "POST", "/v1/billing/subscriptions/checkout", {"user_id": user, "plan_key": "pro"})
    assert_error(status, dup, 409, "SUBSCRIPTION_CONFLICT")

    # The stand-in renews the subscription by itself when its period ends (seconds from now): the new
    # period's invoice credits it, and the ended period's minutes roll over.
    wait_until(lambda: [e for e in events_of(http, user) if e["type"] == "subscription_credit"][1:],
               "the renewal's subscription_credit", timeout=30)
    balance = balance_of(http, user)
    rollover = [b["seconds"] for b in balance["buckets"]["paid"] if b["source"] == "rollover"]
    assert rollover == [150 * 60]  # starter's cap: 150 of the 300 unused minutes
    types = [e["type"] for e in events_of(http, user)]
    assert types.count("rollover_created") == 1 and types.count("rollover_discard") == 1
    assert types.count("subscription_credit") == 2

    status, _, cancel = call(http, "POST", "/v1/billing/subscriptions/cancel", {"user_id": user, "idempotency_key": "c1"})
    assert status == 200 and cancel["cancel_at_period_end"] is True and cancel["plan_key"] == "starter"

