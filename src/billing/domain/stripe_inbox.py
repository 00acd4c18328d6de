"""Stripe's deliveries as received (webhook_events): what an operator reads and may run again.

Only verified deliveries are ever recorded (a bad signature writes nothing: service/webhooks.py),
so every recorded payload is what Stripe signed. A payload is kept when the delivery could not be
applied (unknown customer, a mismatch, unreadable): those are "kept for an operator".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from billing.domain.errors import InvalidArgument
from billing.domain.limits import bounded

PROCESSED, DUPLICATE, IGNORED, MISMATCH, INVALID, MALFORMED = (
    "processed", "duplicate", "ignored", "mismatch", "invalid", "malformed",
)
KEPT = "kept"  # a filter, not an outcome: every outcome whose payload waits for an operator
KEPT_OUTCOMES = (IGNORED, MISMATCH, INVALID, MALFORMED)
OUTCOME_FILTERS = (PROCESSED, IGNORED, MISMATCH, INVALID, MALFORMED, KEPT)
EVENTS_PAGE_DEFAULT = 50
EVENTS_PAGE_MAX = 200
EVENT_ID_LENGTH_MAX = 255


@dataclass(frozen=True)
class StripeEventRecord:
    event_id: str
    event_type: str
    outcome: str
    account_id: str | None
    detail: str
    received_at: datetime
    payload: Any | None  # the JSON document, when kept and valid JSON
    payload_text: str | None  # else its text (unreadable), when kept

    @property
    def is_kept(self) -> bool:
        return self.outcome in KEPT_OUTCOMES and (self.payload is not None or self.payload_text is not None)


@dataclass(frozen=True)
class InboxPosition:
    received_at: datetime
    event_id: str


@dataclass(frozen=True)
class InboxFilter:
    outcomes: tuple[str, ...] | None = None  # None: any
    account_id: str | None = None


def inbox_filter(outcome: str, account_id: str | None) -> InboxFilter:
    if outcome and outcome not in OUTCOME_FILTERS:
        raise InvalidArgument(f"outcome must be one of {', '.join(OUTCOME_FILTERS)}", field="outcome")
    outcomes = KEPT_OUTCOMES if outcome == KEPT else ((outcome,) if outcome else None)
    return InboxFilter(outcomes, account_id)


def inbox_page_size(page_size: int) -> int:
    return bounded(page_size, "page_size", EVENTS_PAGE_DEFAULT, EVENTS_PAGE_MAX)


def require_stripe_event_id(event_id: str) -> str:
    if not event_id:
        raise InvalidArgument("event_id is required", field="event_id")
    if len(event_id) > EVENT_ID_LENGTH_MAX or not event_id.isprintable() or " " in event_id:
        raise InvalidArgument("event_id is not an event id", field="event_id")
    return event_id
