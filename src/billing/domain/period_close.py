"""Closing ended subscription periods (rollover) and warning before rollover seconds expire.

Both run inside a wallet change, before the change itself (the account's upkeep), so they
are exact whenever they run: a rollover bucket expires rollover_days after its period's end,
not after the touch that created it, and the cap counts what the account held at that end.

Ledger: the ended period's unused seconds leave its (expired) bucket as a `rollover_created`
entry (the part kept) and a `rollover_discard` entry (the part over the cap); the kept part
enters the new rollover bucket as a second `rollover_created` entry. The pair nets to zero;
the history shows the credit (docs/decisions.md, "Rollover").
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

from billing.domain.buckets import Source
from billing.domain.subscription import closing_due, next_closing, rollover_split, rollover_warnings_due
from billing.domain.wallet import EventType, Wallet


def close_ended_periods(wallet: Wallet, cap_seconds: int | None, rollover_days: int, now: datetime) -> None:
    """Rolls over every subscription bucket that ended by `now` (the wallet must have been loaded
    with the buckets expired since subscription.closes_at)."""
    subscription = wallet.account.subscription
    if not closing_due(subscription, now):
        return
    ended = sorted(
        (
            b for b in wallet.buckets
            if b.source == Source.SUBSCRIPTION and b.expires_at is not None and b.expires_at <= now
            and b.free_seconds > 0
            # Not a period closed before (loaded again because a hold still reserves some of it:
            # what the hold gives back after its close expires, it does not roll over).
            and (subscription.closes_at is None or b.expires_at >= subscription.closes_at)
        ),
        key=lambda b: (b.expires_at, b.bucket_seq),
    )
    for period_bucket in ended:
        assert period_bucket.expires_at is not None
        period_end = period_bucket.expires_at
        # Seconds an open hold reserved on the ended bucket stay there: what the hold does not use
        # expires with the bucket when it settles (domain/holds.py).
        in_rollover = sum(b.free_seconds for b in wallet.buckets if b.source == Source.ROLLOVER and b.is_usable(period_end))
        split = rollover_split(period_bucket.free_seconds, cap_seconds, in_rollover)
        rollover_expires_at = period_end + timedelta(days=rollover_days)
        kept = split.kept_seconds if rollover_expires_at > now else 0  # rolled over and expired since
        assert cap_seconds is None or kept == 0 or in_rollover + kept <= cap_seconds, "rollover above the cap"
        discarded = period_bucket.free_seconds - kept
        metadata = {"period_end": period_end.isoformat(), "from_bucket_seq": period_bucket.bucket_seq}
        if kept:
            wallet.take_from_bucket(
                period_bucket.bucket_seq, kept, EventType.ROLLOVER_CREATED, "Unused subscription minutes moved to rollover",
                now, {**metadata, "leg": "out"},
            )
            wallet.credit(
                Source.ROLLOVER, kept, expires_at=rollover_expires_at, now=now, event_type=EventType.ROLLOVER_CREATED,
                reason="Unused subscription minutes rolled over", metadata={**metadata, "cap_seconds": cap_seconds},
            )
        if discarded:
            reason = "Unused subscription minutes over the rollover cap" if split.discarded_seconds else "Rollover expired before it was created"
            wallet.take_from_bucket(
                period_bucket.bucket_seq, discarded, EventType.ROLLOVER_DISCARD, reason, now,
                {**metadata, "cap_seconds": cap_seconds},
            )
    wallet.change_subscription(dataclasses.replace(subscription, closes_at=next_closing(wallet.buckets, now)))


def end_complimentary_period(wallet: Wallet, free_plan_key: str, free_status: str, now: datetime) -> None:
    """A period nobody pays for (an admin's complimentary one: set to cancel, the free plan pending)
    returns the account to the free plan once it has ended and closed; a paid subscription's end
    comes from its provider instead."""
    subscription = wallet.account.subscription
    ended = subscription.period_end is not None and subscription.period_end <= now
    if not (ended and subscription.cancel_at_period_end and subscription.pending_plan_key == free_plan_key):
        return
    if closing_due(subscription, now):
        return  # closed first, under the plan it was given (its rollover cap)
    wallet.change_plan(free_plan_key, free_status)
    wallet.change_subscription(dataclasses.replace(
        subscription, period_start=None, period_end=None, cancel_at_period_end=False, pending_plan_key=None,
    ))


def warn_expiring_rollovers(wallet: Wallet, now: datetime) -> None:
    """One rollover_discard_pending per rollover bucket that has seconds left in its last week."""
    due = rollover_warnings_due(wallet.account.subscription, wallet.buckets, now)
    if not due:
        return
    for bucket in due:
        if bucket.is_usable(now):
            assert bucket.expires_at is not None
            wallet.notice(
                EventType.ROLLOVER_DISCARD_PENDING, "Rollover minutes expire soon", bucket.bucket_seq, now,
                {"source": str(bucket.source), "expires_at": bucket.expires_at.isoformat(),
                 "seconds_at_risk": bucket.free_seconds},
            )
    subscription = wallet.account.subscription
    wallet.change_subscription(dataclasses.replace(subscription, rollover_warned_through_seq=due[-1].bucket_seq))
