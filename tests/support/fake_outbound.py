"""The outbox's deliveries in memory (service/webhook_sender_ports.py OutboundQueue), with the PostgreSQL adapter's
rules: a line (account, endpoint) is sent in seq order, only its head is claimable, a claim leases it,
a record whose lease ran out records nothing. For the sender's use-case tests."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from billing.domain.delivery_outcomes import DELIVERED, PENDING, AttemptResult, Outcome
from billing.service.webhook_sender_ports import ClaimedDelivery, EndpointShares, OutboundQueue


@dataclass
class MemoryEndpoint:
    endpoint_id: str
    url: str
    secret: str
    created_at: datetime
    event_types: tuple[str, ...] = ()
    enabled: bool = True
    disabled_reason: str | None = None
    failing_since: datetime | None = None
    deleted_at: datetime | None = None


@dataclass
class MemoryDelivery:
    account_id: str
    endpoint_id: str
    seq: int
    event: dict[str, Any]
    status: str = PENDING
    attempts: int = 0
    next_attempt_at: datetime | None = None
    lease_until: datetime | None = None
    results: list[AttemptResult] = field(default_factory=list)


class MemoryOutboundQueue:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []  # {account_id, seq, event_id, type, created_at, payload, dispatched}
        self.endpoints: dict[str, MemoryEndpoint] = {}
        self.deliveries: dict[tuple[str, str, int], MemoryDelivery] = {}

    def add_event(self, account_id: str, seq: int, event_type: str, created_at: datetime) -> str:
        event_id = f"evt_{account_id}_{seq}"
        self.events.append({
            "account_id": account_id, "seq": seq, "event_id": event_id, "type": event_type, "created_at": created_at,
            "payload": {"id": event_id, "type": event_type, "user_id": account_id, "data": {"seq": seq}},
            "dispatched": False,
        })
        return event_id

    async def dispatch(self, now: datetime, limit: int) -> tuple[int, int]:
        events = deliveries = 0
        for event in [e for e in self.events if not e["dispatched"]][:limit]:
            event["dispatched"] = True
            events += 1
            for endpoint in self.endpoints.values():
                if endpoint.deleted_at is None and endpoint.created_at <= event["created_at"] and (
                        not endpoint.event_types or event["type"] in endpoint.event_types):
                    key = (event["account_id"], endpoint.endpoint_id, event["seq"])
                    self.deliveries[key] = MemoryDelivery(*key, event=event, next_attempt_at=now)
                    deliveries += 1
        return events, deliveries

    def _is_head(self, delivery: MemoryDelivery) -> bool:
        return not any(
            d.status == PENDING and d.seq < delivery.seq
            for (account, endpoint, _), d in self.deliveries.items()
            if (account, endpoint) == (delivery.account_id, delivery.endpoint_id)
        )

    async def claim(
        self, now: datetime, lease_until: datetime, limit: int, shares: EndpointShares | None = None,
    ) -> list[ClaimedDelivery]:
        claimed: list[ClaimedDelivery] = []
        taken: Counter[str] = Counter(shares.in_flight if shares else {})
        for delivery in sorted(self.deliveries.values(), key=lambda d: (d.account_id, d.seq)):
            endpoint = self.endpoints[delivery.endpoint_id]
            if len(claimed) >= limit:
                break
            if (delivery.status != PENDING or not endpoint.enabled or not self._is_head(delivery)
                    or (delivery.next_attempt_at and delivery.next_attempt_at > now)
                    or (delivery.lease_until and delivery.lease_until > now)):
                continue
            if shares is not None:
                share = shares.failing_per_endpoint if endpoint.failing_since else shares.per_endpoint
                if taken[delivery.endpoint_id] >= share:
                    continue
                taken[delivery.endpoint_id] += 1
            delivery.lease_until = lease_until
            event = delivery.event
            claimed.append(ClaimedDelivery(
                delivery.account_id, delivery.endpoint_id, delivery.seq, event["event_id"], event["type"],
                event["created_at"], event["payload"], delivery.attempts, endpoint.url, (endpoint.secret,),
                endpoint.failing_since, lease_until,
            ))
        return claimed

    async def record(self, delivery: ClaimedDelivery, result: AttemptResult, outcome: Outcome, now: datetime) -> bool:
        stored = self.deliveries[(delivery.account_id, delivery.endpoint_id, delivery.seq)]
        if stored.status != PENDING or stored.lease_until != delivery.lease_until:
            return False
        stored.attempts += 1
        stored.results.append(result)
        stored.status = outcome.status
        stored.next_attempt_at = outcome.next_attempt_at
        stored.lease_until = None
        endpoint = self.endpoints[delivery.endpoint_id]
        if outcome.status == DELIVERED:
            endpoint.failing_since = None
        elif outcome.endpoint_failing and endpoint.failing_since is None:
            endpoint.failing_since = now
        if outcome.disable_reason:
            endpoint.enabled, endpoint.disabled_reason = False, outcome.disable_reason
        return True


def _holds_to_the_port(queue: MemoryOutboundQueue) -> OutboundQueue:  # mypy (`make lint`) checks the fake
    return queue


# A claim with no endpoint's share in the way (tests that claim by hand).
NO_SHARES = EndpointShares(per_endpoint=1_000_000, failing_per_endpoint=1_000_000, in_flight={})
