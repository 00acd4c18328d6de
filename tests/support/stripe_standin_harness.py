"""The Stripe stand-in under test: a webhook receiver verifying every delivery with the SDK, a settable clock, the stand-in on a free port and the real SDK pointed at it, and helpers that open sessions."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
import stripe

from devstack.standin.forms import decode_form
from devstack.standin.objects import API_VERSION
from devstack.standin.stripe_standin import StripeStandin



SECRET = "whsec_test_standin"
JAN_31 = int(datetime(2024, 1, 31, 12, tzinfo=timezone.utc).timestamp())
FEB_29 = int(datetime(2024, 2, 29, 12, tzinfo=timezone.utc).timestamp())
MAR_31 = int(datetime(2024, 3, 31, 12, tzinfo=timezone.utc).timestamp())
APR_30 = int(datetime(2024, 4, 30, 12, tzinfo=timezone.utc).timestamp())


class Receiver:
    """A webhook endpoint that verifies each delivery as a service would, and answers `status`."""

    def __init__(self) -> None:
        self.events: list[stripe.Event] = []
        self.rejected: list[str] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                payload = self.rfile.read(int(self.headers["Content-Length"]))
                try:
                    event = stripe.Webhook.construct_event(
                        payload, self.headers["Stripe-Signature"], SECRET, tolerance=300
                    )
                    assert self.headers["Content-Type"].startswith("application/json")
                    receiver.events.append(event)
                except Exception as error:  # recorded: the tests assert there are none
                    receiver.rejected.append(repr(error))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/stripe/webhook"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def types(self) -> list[str]:
        return [event.type for event in self.events]

    def take(self) -> list[stripe.Event]:
        taken, self.events = self.events, []
        return taken


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()
    assert receiver.rejected == []


@pytest.fixture
def clock():
    return Clock(JAN_31)


@pytest.fixture
def standin(receiver, clock):
    with StripeStandin(webhook_url=receiver.url, webhook_secret=SECRET, clock=clock) as standin:
        yield standin


@pytest.fixture
def client(standin):
    return stripe.StripeClient("sk_test_standin", base_addresses={"api": standin.api_base}, max_network_retries=0)


def raw(standin, method, path, body=b"", headers=None):
    """A plain HTTP request (no redirects followed): status, headers, body."""
    connection = http.client.HTTPConnection(urlsplit(standin.api_base).netloc, timeout=5)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    answer = response.status, dict(response.getheaders()), response.read()
    connection.close()
    return answer


def payment_session(client, customer_id, **extra):
    params = {
        "mode": "payment", "customer": customer_id, "client_reference_id": "u1",
        "line_items": [{"price_data": {"currency": "usd", "unit_amount": 1234, "product_data": {"name": "Credits"}},
                        "quantity": 1}],
        "metadata": {"user_id": "u1", "pack": "small"},
        "payment_intent_data": {"metadata": {"user_id": "u1", "pack": "small"}},
        "success_url": "https://app.example/done?session={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://app.example/cancel",
    }
    return client.v1.checkout.sessions.create(params={**params, **extra})


def subscription_session(client, customer_id, unit_amount=2000):
    return client.v1.checkout.sessions.create(params={
        "mode": "subscription", "customer": customer_id,
        "line_items": [{"price_data": {"currency": "usd", "unit_amount": unit_amount,
                                       "product_data": {"name": "Pro"}, "recurring": {"interval": "month"}},
                        "quantity": 1}],
        "subscription_data": {"metadata": {"user_id": "u1", "plan": "pro"}},
        "success_url": "https://app.example/done",
    })


def subscribed(client, standin, receiver):
    customer = client.v1.customers.create(params={"email": "sub@example.com"})
    session = subscription_session(client, customer.id)
    standin.pay(session.id)
    receiver.take()
    return client.v1.checkout.sessions.retrieve(session.id).subscription
