"""A paid plan's periods: what the account knows of its subscription, and closing a period.

Renewal is driven by the payment provider (a paid invoice credits the period's bucket);
closing a period that ended is lazy: the first read or change after its end (or `billing
tick`) rolls its unused seconds into a rollover bucket, up to the plan's cap. Expiry itself
needs no job: a bucket is unusable from its expires_at.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from billing.domain.buckets import Bucket, Source

# rollover_discard_pending is written this long before a rollover bucket expires.
ROLLOVER_WARNING_LEAD = timedelta(days=7)


@dataclass(frozen=True)
class Subscription:
    period_start: datetime | None = None
    period_end: datetime | None = None
    cancel_at_period_end: bool = False
    pending_plan_key: str | None = None  # a downgrade that takes over at period_end
    # The earliest expiry of a subscription bucket not yet rolled over: at or after it, the
    # next touch closes that period (None: nothing to close).
    closes_at: datetime | None = None
    # Rollover buckets up to this bucket_seq had their rollover_discard_pending (or needed none).
    rollover_warned_through_seq: int = 0


def closing_due(subscription: Subscription, now: datetime) -> bool:
    return subscription.closes_at is not None and now >= subscription.closes_at


def expired_buckets_needed_since(subscription: Subscription, now: datetime) -> datetime | None:
    """When closing is due, the wallet must be loaded with the buckets that expired after this
    instant (the ended period's bucket); None when it is not due."""
    closes_at = subscription.closes_at
    if closes_at is None or now < closes_at:
        return None
    return closes_at - timedelta(microseconds=1)


def next_closing(buckets: list[Bucket], now: datetime) -> datetime | None:
    ends = [b.expires_at for b in buckets if b.source == Source.SUBSCRIPTION and b.expires_at is not None and b.expires_at > now]
    return min(ends) if ends else None


@dataclass(frozen=True)
class Rollover:
    kept_seconds: int
    discarded_seconds: int


def rollover_split(unused_seconds: int, cap_seconds: int | None, rollover_held_seconds: int) -> Rollover:
    """Unused seconds of an ended period: kept up to the cap (counting the rollover seconds the
    account still holds at the period's end), discarded above it. cap None: no cap."""
    assert unused_seconds >= 0 and rollover_held_seconds >= 0
    room = unused_seconds if cap_seconds is None else max(0, cap_seconds - rollover_held_seconds)
    kept = min(unused_seconds, room)
    return Rollover(kept_seconds=kept, discarded_seconds=unused_seconds - kept)


def rollover_warnings_due(subscription: Subscription, buckets: list[Bucket], now: datetime) -> list[Bucket]:
    """Rollover buckets entering their last ROLLOVER_WARNING_LEAD not yet warned about, oldest
    first. Rollover buckets are created period after period, so their expiries follow their
    sequence numbers and one counter remembers which were warned."""
    warned = subscription.rollover_warned_through_seq
    return sorted(
        (
            b for b in buckets
            if b.source == Source.ROLLOVER and b.bucket_seq > warned and b.expires_at is not None
            and b.expires_at - ROLLOVER_WARNING_LEAD <= now
        ),
        key=lambda b: b.bucket_seq,
    )


def with_period(subscription: Subscription, start: datetime, end: datetime) -> Subscription:
    """A newer period replaces the one known; an older one (a late delivery) changes nothing."""
    if subscription.period_end is not None and end <= subscription.period_end:
        return subscription
    return dataclasses.replace(subscription, period_start=start, period_end=end)
