"""The ports of the outbound events' sender (issue 22): what service/webhook_sender.py needs from the
queue of deliveries in the database (adapters/db/outbound_queue.py), from the HTTP client that sends
(adapters/webhook_http.py) and from the metrics. Kept apart from service/ports.py, whose unit of work
the sender does not use."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping, Protocol

from billing.domain.delivery_outcomes import AttemptResult, Outcome

@dataclass(frozen=True)
class ClaimedDelivery:
    """A delivery the sender holds a lease on (until lease_until): the head of its (account,
    endpoint) line, with its event's payload and the endpoint's address and secrets."""

    account_id: str
    endpoint_id: str
    seq: int
    event_id: str
    event_type: str
    created_at: datetime  # the event's
    payload: Any  # the stored JSON body: {id, type, created_at, user_id, data}
    attempts: int  # attempts recorded before this one
    url: str
    secrets: tuple[str, ...]  # the endpoint's secret, then the previous one while a rotation lasts
    failing_since: datetime | None  # the endpoint's
    lease_until: datetime


@dataclass(frozen=True)
class EndpointShares:
    """How many of a sender's slots one endpoint may hold at once (fewer while it fails), and how
    many each holds now: one endpoint that hangs cannot take every slot from the others."""

    per_endpoint: int
    failing_per_endpoint: int
    in_flight: Mapping[str, int]  # endpoint id -> deliveries this sender has in flight to it


@dataclass(frozen=True)
class OutgoingWebhook:
    """One POST: `body` signed as Standard Webhooks with each secret (webhook-id: event_id)."""

    url: str
    event_id: str
    body: bytes
    secrets: tuple[str, ...]


class OutboundQueue(Protocol):
    """The outbox and its deliveries (adapters/db/outbound_queue.py), shared by every replica's
    sender through the database alone: each call is its own short transaction."""

    async def dispatch(self, now: datetime, limit: int) -> tuple[int, int]:
        """Up to `limit` undispatched events (skipping those another sender holds): one pending delivery
        per enabled endpoint that takes the type and existed when the event was written, the events
        marked dispatched, at once. Returns (events, deliveries)."""
        ...

    async def claim(self, now: datetime, lease_until: datetime, limit: int, shares: EndpointShares) -> list[ClaimedDelivery]:
        """Up to `limit` due deliveries, each the head of its (account, endpoint) line (no earlier
        pending delivery, no earlier undispatched event of the account), of an enabled endpoint and
        not leased by another sender, and no more of one endpoint than its share leaves room for;
        leased until `lease_until` (committed before returning)."""
        ...

    async def record(self, delivery: ClaimedDelivery, result: AttemptResult, outcome: Outcome, now: datetime) -> bool:
        """The attempt and its outcome (the delivery, the endpoint's failing state, its disabling), at
        once; False, recording nothing, when the lease was lost (it ran out and another sender took it)."""
        ...


class WebhookTransport(Protocol):
    """Sends one signed POST (adapters/webhook_http.py). Never raises for the receiver's or the
    network's faults: they come back as an AttemptResult with an error."""

    async def send(self, webhook: OutgoingWebhook) -> AttemptResult: ...


class DeliveryMetrics(Protocol):
    """What the sender counts (adapters/metrics.py); cheap, never raises."""

    def webhook_attempt(self, outcome: str, seconds: float) -> None:
        """An attempt ended in `outcome` (delivered, retry, failed, lost_lease) after `seconds`."""
        ...

    def webhook_delivered(self, lag_seconds: float) -> None:
        """A delivery succeeded `lag_seconds` after its event was written."""
        ...


class NoDeliveryMetrics:
    def webhook_attempt(self, outcome: str, seconds: float) -> None:
        pass

    def webhook_delivered(self, lag_seconds: float) -> None:
        pass
