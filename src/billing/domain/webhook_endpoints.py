"""Webhook endpoints and their deliveries as the admin surface sees them (issue 22): records and rules.

An endpoint is where outbound events go (not per account); its signing secret is `whsec_` and the
base64 of 32 random bytes (Standard Webhooks). Rotating keeps the previous secret for
PREVIOUS_SECRET_GRACE, during which the sender signs with both. A delivery is one event for one
endpoint (per account, in `seq` order); each try of it is an attempt.
"""

from __future__ import annotations

import base64
import dataclasses
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from billing.domain.errors import InvalidArgument
from billing.domain.outbound_types import EVENT_TYPES

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
PREVIOUS_SECRET_GRACE = timedelta(hours=24)
DESCRIPTION_LENGTH_MAX = 256
URL_LENGTH_MAX = 2048
ENDPOINT_ID_PREFIX = "ep_"
ENDPOINT_ID_LENGTH_MAX = 64
EVENT_ID_LENGTH_MAX = 128
DELIVERY_STATUSES = ("pending", "delivered", "failed")
DELIVERIES_PAGE_DEFAULT = 50
DELIVERIES_PAGE_MAX = 100
# One `replay failed since` call makes at most this many deliveries pending (call again for more).
REPLAY_BATCH_MAX = 1000
DISABLED_BY_OPERATOR = "disabled by an operator"
ENDPOINT_DELETED = "endpoint deleted"

_PRINTABLE_TOKEN = re.compile(r"[\x21-\x7e]+")
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")


def secret_from_bytes(raw: bytes) -> str:
    return SECRET_PREFIX + base64.b64encode(raw).decode()


@dataclass(frozen=True)
class WebhookEndpoint:
    endpoint_id: str
    url: str
    event_types: tuple[str, ...]  # empty: every type
    description: str
    enabled: bool
    disabled_reason: str | None
    secret: str
    previous_secret: str | None
    previous_secret_until: datetime | None
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None

    def disabled(self, now: datetime, reason: str = DISABLED_BY_OPERATOR) -> WebhookEndpoint:
        if not self.enabled:
            return self  # the first reason stays (410 Gone, 5 days failing, an operator)
        return dataclasses.replace(self, enabled=False, disabled_reason=reason, updated_at=now)

    def reenabled(self, now: datetime) -> WebhookEndpoint:
        """Enabled, with a clean slate: no failing streak, no reason."""
        return dataclasses.replace(self, enabled=True, disabled_reason=None, failing_since=None, updated_at=now)

    def rotated(self, new_secret: str, now: datetime) -> WebhookEndpoint:
        """The current secret becomes the previous one for PREVIOUS_SECRET_GRACE (an older previous one goes)."""
        return dataclasses.replace(self, secret=new_secret, previous_secret=self.secret,
                                   previous_secret_until=now + PREVIOUS_SECRET_GRACE, updated_at=now)

    def deleted(self, now: datetime) -> WebhookEndpoint:
        return dataclasses.replace(self, enabled=False, disabled_reason=ENDPOINT_DELETED, deleted_at=now, updated_at=now)


@dataclass(frozen=True)
class DeliveryAttempt:
    attempt: int
    attempted_at: datetime
    status_code: int | None
    latency_ms: int
    response_excerpt: str
    error: str | None


@dataclass(frozen=True)
class Delivery:
    account_id: str
    endpoint_id: str
    seq: int
    event_id: str
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime | None  # None once finished (delivered or failed)
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None
    attempt_log: tuple[DeliveryAttempt, ...] = ()

    @property
    def position(self) -> DeliveryPosition:
        return DeliveryPosition(self.created_at, self.account_id, self.endpoint_id, self.seq)


@dataclass(frozen=True, order=True)
class DeliveryPosition:
    """Where a delivery sits in the log, newest first: (created_at, account_id, endpoint_id, seq) descending."""

    created_at: datetime
    account_id: str
    endpoint_id: str
    seq: int


@dataclass(frozen=True)
class DeliveryFilter:
    endpoint_id: str | None = None
    account_id: str | None = None
    status: str | None = None

    def matches(self, delivery: Delivery) -> bool:
        return ((self.endpoint_id is None or delivery.endpoint_id == self.endpoint_id)
                and (self.account_id is None or delivery.account_id == self.account_id)
                and (self.status is None or delivery.status == self.status))


def require_event_types(event_types: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Known types only (the 400 names the first unknown one), each once, in the catalogue's order."""
    for event_type in event_types:
        if event_type not in EVENT_TYPES:
            raise InvalidArgument(
                f"event_types: unknown event type {event_type[:64]!r} (known: {', '.join(EVENT_TYPES)})",
                field="event_types",
            )
    wanted = set(event_types)
    return tuple(t for t in EVENT_TYPES if t in wanted)


def require_description(description: str) -> str:
    if len(description) > DESCRIPTION_LENGTH_MAX:
        raise InvalidArgument(f"description is longer than {DESCRIPTION_LENGTH_MAX} characters", field="description")
    if _CONTROL_CHARACTER.search(description):
        raise InvalidArgument("description may not contain control characters", field="description")
    return description


def require_endpoint_id(endpoint_id: str, field: str = "endpoint_id") -> str:
    return _require_token(endpoint_id, field, ENDPOINT_ID_LENGTH_MAX)


def require_event_id(event_id: str) -> str:
    return _require_token(event_id, "event_id", EVENT_ID_LENGTH_MAX)


def require_delivery_status(status: str) -> str:
    if status not in DELIVERY_STATUSES:
        raise InvalidArgument(f"status must be one of {', '.join(DELIVERY_STATUSES)}", field="status")
    return status


def deliveries_page_size(limit: int) -> int:
    """As every list: 0 is the default, above the maximum is capped, negative is an error."""
    if limit < 0:
        raise InvalidArgument("limit must not be negative", field="limit")
    return DELIVERIES_PAGE_DEFAULT if limit == 0 else min(limit, DELIVERIES_PAGE_MAX)


def _require_token(value: str, field: str, max_length: int) -> str:
    if not value:
        raise InvalidArgument(f"{field} is required", field=field)
    if len(value) > max_length:
        raise InvalidArgument(f"{field} is longer than {max_length} characters", field=field)
    if not _PRINTABLE_TOKEN.fullmatch(value):
        raise InvalidArgument(f"{field} must be printable ASCII without spaces", field=field)
    return value
