"""Webhook delivery, signed with Stripe's scheme: `Stripe-Signature: t=<unix>,v1=<HMAC-SHA256(secret, "t.payload")>`.

Deliveries are synchronous; each attempt is recorded on the event. A delivery the receiver did not answer with
a 2xx is sent again later, as Stripe does in live mode: with a growing backoff for up to about three days
(RETRY_SCHEDULE), timed on the stand-in's clock, so advancing that clock brings the redeliveries on
(`Api.advance`). Signatures use the wall clock even when the stand-in's clock is overridden or advanced:
receivers check the timestamp against their own clock (`stripe.Webhook.construct_event(..., tolerance=300)`).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import secrets
import time
import urllib.error
import urllib.request
from typing import Any

from devstack.standin.errors import StripeError
from devstack.standin.store import Store

TIMEOUT_SECONDS = 10.0
# Seconds from a failed attempt to the next one: 1 min, 5 min, 30 min, 2 h, 5 h, then every 10 h until about
# 3 days after the first (Stripe: "for up to three days with an exponential back off"); 12 attempts in all.
RETRY_SCHEDULE = (60, 300, 1800, 7200, 18000, 36000, 36000, 36000, 36000, 36000, 36000)
LOG = logging.getLogger(__name__)


def payload_of(event: dict[str, Any]) -> bytes:
    # Stripe sends indented JSON; a receiver that re-serializes before verifying fails here as it would there.
    return json.dumps(event, indent=2).encode()


def signature_header(payload: bytes, secret: str, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # Stripe counts a redirect as a failed delivery


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects())


class Webhooks:
    def __init__(self, store: Store, url: str | None, secret: str | None,
                 retry_schedule: tuple[int, ...] = RETRY_SCHEDULE) -> None:
        self._store = store
        self.retry_schedule = retry_schedule
        self.url: str | None = None
        self.secret: str | None = None
        self.configure(url, secret)

    def configure(self, url: str | None, secret: str | None) -> dict[str, str | None]:
        """Points delivery at `url` (None: events are only stored); a missing secret keeps or makes one."""
        if url is not None and not url.startswith(("http://", "https://")):
            raise StripeError(400, "url must be an http(s) URL", param="url")
        with self._store.lock:
            self.url = url
            self.secret = secret or self.secret or (f"whsec_{secrets.token_hex(24)}" if url else None)
            self._store.pending_webhooks = 1 if url else 0
            return {"url": self.url, "secret": self.secret}

    def deliver(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            self.deliver_one(event)

    def deliver_one(self, event: dict[str, Any]) -> None:
        with self._store.lock:
            url, secret, payload = self.url, self.secret, payload_of(event)
        if url is None or secret is None:
            return
        status = _post(url, payload, signature_header(payload, secret, int(time.time())))
        if not (isinstance(status, int) and 200 <= status < 300):
            LOG.warning("webhook %s (%s) to %s failed: %s", event["id"], event["type"], url, status)
        with self._store.lock:
            record = self._store.deliveries.setdefault(
                event["id"], {"delivery_attempts": 0, "last_delivery_status": None, "next_delivery_at": None}
            )
            record["delivery_attempts"] += 1
            record["last_delivery_status"] = status
            failures = record["delivery_attempts"]
            delivered = isinstance(status, int) and 200 <= status < 300
            record["next_delivery_at"] = None if delivered or failures > len(self.retry_schedule) else (
                self._store.now() + self.retry_schedule[failures - 1]
            )
            self._store.save()


def _post(url: str, payload: bytes, signature: str) -> int | str:
    """The receiver's HTTP status, or a description of why there was none."""
    request = urllib.request.Request(url, data=payload, method="POST", headers={
        "Content-Type": "application/json; charset=utf-8", "Stripe-Signature": signature,
        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)", "Cache-Control": "no-cache",
    })
    try:
        with _OPENER.open(request, timeout=TIMEOUT_SECONDS) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except (OSError, http.client.HTTPException) as error:
        return f"connection error: {error}"
