"""A local Stripe stand-in for development and tests: a small Stripe HTTP API server speaking API version
2026-10-28.endive to the official `stripe` SDK, offline; its state in memory, and in a state file when given one.

    standin = StripeStandin(webhook_url="http://127.0.0.1:8080/stripe/webhook", webhook_secret="whsec_x").start()
    client = stripe.StripeClient("sk_test_x", base_addresses={"api": standin.api_base})
    session = client.v1.checkout.sessions.create(params={...})
    standin.pay(session.id)        # the buyer pays; the webhooks are delivered before this returns

Command line: `python -m devstack.standin.stripe_standin --port 12111 --webhook-url URL --webhook-secret whsec_...
--state .data/stripe-standin/state.json` (the secret may come from STRIPE_WEBHOOK_SECRET instead). The HTTP
surface is in http_api.py; the hosted page is GET /checkout/{id}; test controls live under /_standin/, among
them the clock: POST /_standin/clock/advance {"seconds": N} (or {"to": unix time}) lives through that time:
subscriptions renew at their period's end and failed webhooks are redelivered when their backoff is up.
A running stand-in also does that as its clock passes those instants (every `tick_seconds`).
"""

from __future__ import annotations

import argparse
import copy
import logging
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any, Callable

from billing.settings import DEFAULT_STANDIN_PORT
from billing.settings import text as settings_text
from devstack.standin import checkout
from devstack.standin.http_api import Api
from devstack.standin.store import Store, set_next_outcome
from devstack.standin.webhooks import RETRY_SCHEDULE, Webhooks, payload_of, signature_header

BOOKKEEPING = ("delivery_attempts", "last_delivery_status", "next_delivery_at")
LOG = logging.getLogger(__name__)


class StripeStandin:
    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        public_base_url: str | None = None,
        clock: Callable[[], float] = time.time,
        log_requests: bool = False,
        state_path: Path | None = None,
        retry_schedule: tuple[int, ...] = RETRY_SCHEDULE,
        tick_seconds: float | None = 1.0,
    ) -> None:
        """state_path: where the state is kept across restarts (read now when it exists); retry_schedule: the
        backoff of webhook redeliveries, in seconds of the stand-in's clock; tick_seconds: how often a running
        stand-in looks for renewals and redeliveries that fell due (None: only when its clock is advanced)."""
        self._store = Store(clock, "", state_path)
        if self._store.load():
            LOG.info("state read from %s", state_path)
        self._server = ThreadingHTTPServer((host, port), _handler_class(self, log_requests))
        self._server.daemon_threads = True
        url_host = "127.0.0.1" if host in ("", "0.0.0.0") else host
        self._api_base = f"http://{url_host}:{self._server.server_address[1]}"
        self._store.public_base_url = (public_base_url or self._api_base).rstrip("/")
        self._webhooks = Webhooks(self._store, webhook_url, webhook_secret, retry_schedule)
        self.api = Api(self._store, self._webhooks)
        self._thread: threading.Thread | None = None
        self._tick_seconds = tick_seconds
        self._ticker: threading.Thread | None = None
        self._stopping = threading.Event()

    def start(self) -> StripeStandin:
        """Serves in a background thread."""
        # A short poll interval: stop() waits for the serving loop to notice, and tests stop a stand-in each.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="stripe-standin",
                                        daemon=True)
        self._thread.start()
        self._start_ticker()
        return self

    def serve_forever(self) -> None:
        self._start_ticker()
        self._server.serve_forever()

    def stop(self) -> None:
        self._stopping.set()
        if self._ticker is not None:
            self._ticker.join()
            self._ticker = None
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def _start_ticker(self) -> None:
        if self._tick_seconds is None or self._ticker is not None:
            return
        self._stopping.clear()
        self._ticker = threading.Thread(target=self._tick, name="stripe-standin-clock", daemon=True)
        self._ticker.start()

    def _tick(self) -> None:
        assert self._tick_seconds is not None
        while not self._stopping.wait(self._tick_seconds):
            try:
                self.api.advance(None)
            except Exception:  # the next tick tries again; a stand-in bug must not stop its clock
                LOG.exception("the stand-in's clock failed to advance")

    def __enter__(self) -> StripeStandin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def api_base(self) -> str:
        return self._api_base

    @property
    def webhook_url(self) -> str | None:
        return self._webhooks.url

    @property
    def webhook_secret(self) -> str | None:
        return self._webhooks.secret

    def configure_webhook(self, url: str | None, secret: str | None = None) -> None:
        self._webhooks.configure(url, secret)

    def pay(self, session_id: str, outcome: str = "succeed") -> list[dict[str, Any]]:
        """The buyer pays (or is declined) on the hosted page; returns the events delivered."""
        return self.api.run(lambda: checkout.pay(self._store, session_id, outcome))[1]

    def renew(self, subscription_id: str, fail: bool = False) -> list[dict[str, Any]]:
        """The clock goes to the end of the subscription's period, where it is renewed with a paid (or failed)
        invoice, or canceled; returns the events emitted on the way (other subscriptions' renewals too)."""
        return self.api.renew(subscription_id, fail)[1]

    def advance_clock(self, seconds: int = 0, *, to: int | None = None) -> list[dict[str, Any]]:
        """Lives through `seconds` (or up to the instant `to`): renewals and redeliveries that fall due on the
        way happen, each at its own instant. Returns the events emitted."""
        return self.api.advance(self.now() + seconds if to is None else max(to, self.now()))

    def now(self) -> int:
        with self._store.lock:
            return self._store.now()

    def set_next_off_session_outcome(self, outcome: str) -> None:
        with self._store.lock:
            set_next_outcome(self._store, outcome)

    def events(self) -> list[dict[str, Any]]:
        """Every event so far, oldest first, with `delivery_attempts` and `last_delivery_status`."""
        with self._store.lock:
            return self._store.event_records()

    def resend(self, event_id: str) -> None:
        self.api.resend(event_id)

    def signed_delivery(self, event: dict[str, Any], secret: str, timestamp: int | None = None) -> tuple[bytes, str]:
        """The body and Stripe-Signature header of a delivery of `event`, for tests that post events themselves."""
        clean = {key: value for key, value in copy.deepcopy(event).items() if key not in BOOKKEEPING}
        payload = payload_of(clean)
        return payload, signature_header(payload, secret, int(time.time()) if timestamp is None else timestamp)


def _handler_class(standin: StripeStandin, log_requests: bool) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's requests session expects
        disable_nagle_algorithm = True  # headers and body go out in two writes; Nagle would hold the second
        server_version = "stripe-standin"

        def do_GET(self) -> None:
            self._answer()

        def do_POST(self) -> None:
            self._answer()

        def do_DELETE(self) -> None:
            self._answer()

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length > 0 else b""
            response = standin.api.handle(self.command, self.path, self.headers, body)
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(response.body)

        def log_message(self, format: str, *args: Any) -> None:
            if log_requests:
                super().log_message(format, *args)

    return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Local Stripe stand-in (development and tests only).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_STANDIN_PORT)
    parser.add_argument("--webhook-url", help="where events are POSTed (default: only stored)")
    parser.add_argument("--webhook-secret", help="whsec_...; default STRIPE_WEBHOOK_SECRET, else a new one")
    parser.add_argument("--public-base-url", help="base of checkout session URLs (default: the API base)")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    parser.add_argument("--state", type=Path, help="a JSON file keeping the state across restarts (default: none)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="stripe-standin: %(message)s")
    if args.state is not None:
        args.state.parent.mkdir(parents=True, exist_ok=True)
    standin = StripeStandin(
        host=args.host, port=args.port, webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret or _first_secret(settings_text("STRIPE_WEBHOOK_SECRET")),
        public_base_url=args.public_base_url, log_requests=args.verbose, state_path=args.state,
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    webhook = f", webhooks to {args.webhook_url}" if args.webhook_url else ""
    print(f"Stripe stand-in: {standin.api_base}{webhook}", flush=True)
    if args.webhook_url and not (args.webhook_secret or settings_text("STRIPE_WEBHOOK_SECRET")):
        print(f"webhook secret: {standin.webhook_secret}", file=sys.stderr, flush=True)
    try:
        standin.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        standin.stop()


def _first_secret(configured: str) -> str | None:
    """STRIPE_WEBHOOK_SECRET lists two secrets while rotating; the stand-in signs with the first."""
    return next((secret.strip() for secret in configured.split(",") if secret.strip()), None)


if __name__ == "__main__":
    main()
