"""A deliberately naive reference model of the wallet, for the property tests.

A plain list of buckets and a greedy "pick the bucket the documented rule says goes
first" loop: simple enough to be obviously right, independent of the engine's code.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from billing.domain.buckets import Source
from billing.domain.catalog import Plan
from billing.domain.wallet import BALANCE_SECONDS_MAX

UTC = timezone.utc


def month_of(day: date) -> tuple[int, int]:
    return (day.year, day.month)


def midnight_after(now: datetime) -> datetime:
    return datetime.combine(now.date() + timedelta(days=1), time(0), tzinfo=UTC)



@dataclass
class RefBucket:
    seq: int
    source: Source
    granted: int
    remaining: int
    expires_at: datetime | None

    def usable(self, now: datetime) -> bool:
        if self.remaining == 0:
            return False
        return self.expires_at is None or now < self.expires_at


def goes_first(a: RefBucket, b: RefBucket) -> bool:
    """The guide's rule, spelled out: is `a` consumed before `b`?"""
    a_daily, b_daily = a.source is Source.DAILY, b.source is Source.DAILY
    if a_daily != b_daily:
        return a_daily
    if a.expires_at != b.expires_at:
        if a.expires_at is None:
            return False
        if b.expires_at is None:
            return True
        return a.expires_at < b.expires_at
    if a.remaining != b.remaining:
        return a.remaining < b.remaining
    return a.seq < b.seq


class RefModel:
    def __init__(self, plan: Plan):
        self.plan = plan
        self.buckets: list[RefBucket] = []
        self.last_grant_day: date | None = None
        self.bonus_used_by_month: Counter = Counter()

    def pool(self, now: datetime, *, with_daily: bool = True) -> list[RefBucket]:
        return [b for b in self.buckets if b.usable(now) and (with_daily or b.source is not Source.DAILY)]

    def bonus(self, now: datetime) -> int:
        return sum(b.remaining for b in self.pool(now) if b.source is Source.DAILY)

    def paid(self, now: datetime) -> int:
        return sum(b.remaining for b in self.pool(now, with_daily=False))

    def total(self, now: datetime) -> int:
        return self.bonus(now) + self.paid(now)

    def fits_under_ceiling(self, seconds: int, now: datetime) -> bool:
        return self.total(now) + seconds <= BALANCE_SECONDS_MAX

    def credit(self, source: Source, seconds: int, expires_at: datetime | None) -> RefBucket:
        bucket = RefBucket(len(self.buckets) + 1, source, seconds, seconds, expires_at)
        self.buckets.append(bucket)
        return bucket

    def daily_offer(self, now: datetime) -> int:
        """Seconds the daily bonus should grant now; 0 for none."""
        today = now.date()
        if self.last_grant_day == today:
            return 0
        daily = self.plan.bonus_daily_minutes * 60
        cap_minutes = self.plan.monthly_bonus_cap_minutes
        if cap_minutes is None:
            amount = daily
        else:
            amount = min(daily, max(0, cap_minutes * 60 - self.bonus_used_by_month[month_of(today)]))
        if amount == 0 or not self.fits_under_ceiling(amount, now):
            return 0
        return amount

    def grant_daily(self, amount: int, now: datetime) -> RefBucket:
        self.last_grant_day = now.date()
        return self.credit(Source.DAILY, amount, midnight_after(now))

    def take(self, seconds: int, now: datetime, *, with_daily: bool) -> list[tuple[int, int]] | None:
        """Greedy: repeatedly pay from whichever usable bucket goes first. None: does not fit."""
        pool = self.pool(now, with_daily=with_daily)
        if sum(b.remaining for b in pool) < seconds:
            return None
        taken_from: list[tuple[int, int]] = []
        while seconds > 0:
            best = pool[0]
            for candidate in pool[1:]:
                if goes_first(candidate, best):
                    best = candidate
            taken = min(best.remaining, seconds)
            best.remaining -= taken
            seconds -= taken
            pool.remove(best)
            taken_from.append((best.seq, taken))
            if best.source is Source.DAILY:
                self.bonus_used_by_month[month_of(now.date())] += taken
        return taken_from
