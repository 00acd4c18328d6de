"""Outbound events (issue 22), sending: what the sender decides after each attempt, and the bytes it signs.

Pure: the caller brings the time and the random draw. A delivery is tried at once, then again after
each delay of the Svix schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h), each delay moved by up to
+-10 % so that an endpoint coming back is not hit by every retry at the same instant; after the last,
the delivery has failed for good. 2xx delivered; 410 Gone: the receiver asks to stop, the endpoint is
disabled and the delivery failed; anything else (another status, a redirect, which is never followed,
a timeout, a refused address, a broken connection) is a failed attempt. An endpoint whose deliveries
have been failing without a success for ENDPOINT_FAILING_LIMIT is disabled with a reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

RETRY_SCHEDULE = tuple(timedelta(seconds=s) for s in (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600))
JITTER = 0.10
ENDPOINT_FAILING_LIMIT = timedelta(days=5)
RESPONSE_EXCERPT_BYTES = 1024
ERROR_TEXT_MAX = 500

DELIVERED = "delivered"
FAILED = "failed"
PENDING = "pending"


def canonical_body(payload: Any) -> bytes:
    """The payload's one serialization (sorted keys, no spaces, UTF-8): the stored JSON reads back
    the same whatever JSONB did to its order, so every attempt signs and sends the same bytes."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class AttemptResult:
    """What one try gave: the status code (None: no HTTP answer), an error (a timeout, a refused
    address, a connection failure), how long it took, and the start of the answer's body."""

    status_code: int | None
    latency_ms: int
    excerpt: str = ""
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True)
class Outcome:
    """What to record after an attempt. status: DELIVERED, FAILED (for good) or PENDING (retry at
    next_attempt_at). disable_reason: the endpoint is disabled with it. endpoint_failing: the endpoint
    is failing (its failing_since set if not yet), else it succeeded (failing_since cleared)."""

    status: str
    next_attempt_at: datetime | None
    disable_reason: str | None
    endpoint_failing: bool


def retry_delay(failed_attempts: int, draw: float) -> timedelta | None:
    """The wait after the `failed_attempts`-th failed attempt (1 = the first), None when the schedule
    is spent. draw in [0, 1): the jitter, -10 % at 0 to +10 % towards 1."""
    if failed_attempts < 1 or failed_attempts > len(RETRY_SCHEDULE):
        return None
    factor = 1 + JITTER * (2 * draw - 1)
    return RETRY_SCHEDULE[failed_attempts - 1] * factor


def decide(result: AttemptResult, attempts_before: int, failing_since: datetime | None, now: datetime,
           draw: float) -> Outcome:
    """The outcome of an attempt made after `attempts_before` earlier ones; failing_since: since when
    the endpoint has failed without a success (None: it has not)."""
    if result.succeeded:
        return Outcome(DELIVERED, None, None, endpoint_failing=False)
    if result.status_code == 410:
        return Outcome(FAILED, None, "the endpoint answered 410 Gone", endpoint_failing=True)
    disable_reason = None
    if failing_since is not None and now - failing_since >= ENDPOINT_FAILING_LIMIT:
        disable_reason = f"every delivery failed since {failing_since.isoformat()} (5 days)"
    delay = retry_delay(attempts_before + 1, draw)
    if delay is None:
        return Outcome(FAILED, None, disable_reason, endpoint_failing=True)
    return Outcome(PENDING, now + delay, disable_reason, endpoint_failing=True)


def excerpt_of(body: bytes) -> str:
    """At most RESPONSE_EXCERPT_BYTES of an answer's body as UTF-8 text (what is not UTF-8, a character
    cut at the end, and NUL, which PostgreSQL's text refuses, are left out)."""
    return body[:RESPONSE_EXCERPT_BYTES].decode("utf-8", errors="ignore").replace("\x00", "")
