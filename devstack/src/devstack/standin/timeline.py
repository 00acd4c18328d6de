"""What falls due as the stand-in's clock moves: subscription renewals at their period's end, and webhook
redeliveries at the time their backoff set (both on the stand-in's clock, so advancing it brings them on)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from devstack.standin.store import Store

RENEWING = ("active", "past_due")


@dataclass(frozen=True)
class Step:
    at: int
    subscription_id: str | None = None  # a renewal
    event_id: str | None = None  # a redelivery


def next_due(store: Store, until: int) -> Step | None:
    """The earliest renewal or redelivery due at or before `until` (renewals first at the same instant)."""
    steps = [
        Step(period_end(sub), subscription_id=sub["id"])
        for sub in store.objects.values()
        if sub["object"] == "subscription" and sub["status"] in RENEWING and period_end(sub) <= until
    ] + [
        Step(record["next_delivery_at"], event_id=event_id)
        for event_id, record in store.deliveries.items()
        if record.get("next_delivery_at") is not None and record["next_delivery_at"] <= until
    ]
    return min(steps, key=lambda step: (step.at, step.subscription_id is None), default=None)


def period_end(sub: dict[str, Any]) -> int:
    return int(max(item["current_period_end"] for item in sub["items"]["data"]))


def claim_redelivery(store: Store, event_id: str | None) -> dict[str, Any] | None:
    """The event to send again, taken off the schedule (the attempt puts it back on if it fails again)."""
    record = store.deliveries.get(event_id or "")
    if record is None or record.get("next_delivery_at") is None:
        return None
    record["next_delivery_at"] = None
    return store.find("event", event_id)
