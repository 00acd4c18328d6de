"""What a set of buckets is worth at an instant."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from billing.domain.buckets import Bucket, in_consumption_order
from billing.domain.clock_math import next_utc_midnight


@dataclass(frozen=True)
class BalanceTotals:
    total_seconds: int
    paid_seconds: int
    bonus_seconds: int
    next_expiry_at: datetime | None
    # Reserved by open holds: not in total_seconds (nobody else may take them), not gone yet either.
    held_seconds: int = 0

    def __post_init__(self) -> None:
        assert self.paid_seconds >= 0 and self.bonus_seconds >= 0 and self.held_seconds >= 0
        assert self.total_seconds == self.paid_seconds + self.bonus_seconds


@dataclass(frozen=True)
class BalanceView:
    totals: BalanceTotals
    # Usable buckets in consumption order; their free_seconds is what each is worth (held seconds are not).
    daily: tuple[Bucket, ...]  # bonus buckets
    paid: tuple[Bucket, ...]  # every other


def balance_at(buckets, now: datetime) -> BalanceView:
    """Expired, empty and wholly held buckets count for nothing and are not shown; held seconds
    are counted apart (expired buckets' too: a hold keeps what it reserved until it settles)."""
    buckets = list(buckets)
    usable = in_consumption_order(buckets, now)
    daily = tuple(b for b in usable if b.is_bonus)
    paid = tuple(b for b in usable if not b.is_bonus)
    expiries = [b.expires_at for b in usable if b.expires_at is not None]
    bonus_seconds = sum(b.free_seconds for b in daily)
    paid_seconds = sum(b.free_seconds for b in paid)
    totals = BalanceTotals(
        total_seconds=bonus_seconds + paid_seconds,
        paid_seconds=paid_seconds,
        bonus_seconds=bonus_seconds,
        next_expiry_at=min(expiries) if expiries else None,
        held_seconds=sum(b.held_seconds for b in buckets),
    )
    return BalanceView(totals=totals, daily=daily, paid=paid)


def changes_by_itself_at(
    view: BalanceView, period_closes_at: datetime | None, now: datetime, hold_expires_at: datetime | None = None,
) -> datetime:
    """The next instant this balance changes with nothing written before it: a bucket expires, a
    subscription period closes, a hold expires (giving back what it did not use), or the UTC day
    ends (the daily bonus resets; on the 1st the month's bonus use too). A live view re-reads the balance then."""
    candidates = [next_utc_midnight(now)]
    scheduled = (view.totals.next_expiry_at, period_closes_at, hold_expires_at)
    candidates += [t for t in scheduled if t is not None and t > now]
    return min(candidates)
