"""Expired seconds over time, for the ledger's timeline (the operator console, issue 23).

Expiry writes no ledger row: an expired bucket keeps its remaining_seconds and counts for nothing
(docs/decisions.md, "Ledger and engine"). So the seconds expired by an instant t are the remaining
seconds of the account's buckets whose expires_at <= t, and what the user could use right after a
ledger row is the ledger's running sum less what had expired by the row's instant.

That reading takes a bucket's remaining seconds as they are now. They stay as they were at expiry,
except for a hold that reserved seconds on the bucket before it expired and commits them after: those
leave with the commit's row (they count as available, like any held seconds, until it), and what the
hold gives back expires with the bucket (docs/decisions.md, "Operator console: reads")."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime
from itertools import accumulate
from typing import Iterable


@dataclass(frozen=True)
class RowExpiry:
    available_after_seconds: int
    expired_before_seconds: int


class ExpiredSeconds:
    """expired_by(t): seconds expired at or before t, from the account's expiring buckets that still
    hold seconds ((expires_at, remaining_seconds) pairs, any order)."""

    def __init__(self, buckets: Iterable[tuple[datetime, int]]):
        ordered = sorted((expires_at, remaining) for expires_at, remaining in buckets if remaining > 0)
        assert all(remaining >= 0 for _, remaining in ordered)
        self._instants = [expires_at for expires_at, _ in ordered]
        self._totals = list(accumulate(remaining for _, remaining in ordered))

    def expired_by(self, instant: datetime) -> int:
        """A bucket expiring at T is unusable at T: it counts from T on."""
        count = bisect_right(self._instants, instant)
        return self._totals[count - 1] if count else 0

    def expired_between(self, earlier: datetime | None, later: datetime) -> int:
        """Expired after `earlier` up to `later` (everything up to `later` when there is no earlier);
        0 when the instants run backwards (clocks of two replicas)."""
        before = 0 if earlier is None else self.expired_by(earlier)
        return max(0, self.expired_by(later) - before)

    def explain(self, balance_after_seconds: int, occurred_at: datetime, previous_at: datetime | None) -> RowExpiry:
        """A ledger row's available seconds after it and the seconds expired since the row before it."""
        return RowExpiry(
            available_after_seconds=balance_after_seconds - self.expired_by(occurred_at),
            expired_before_seconds=self.expired_between(previous_at, occurred_at),
        )
