"""Expired seconds over time, for the ledger's timeline (the operator console, issue 23).

Expiry writes no ledger row: an expired bucket keeps the seconds it held and counts for nothing
(docs/decisions.md, "Ledger and engine"). What expired at a bucket's expires_at is what it holds now
plus what rows took out of it since (a refund of its payment, a period close's rollover): those
rows take seconds that had already left the user's view, so each lowers "expired" at its own
instant and the user's available seconds do not move at it. What the user could use right after a
ledger row is the ledger's running sum less what had expired by the row's instant and was not yet
taken out by the rows up to it.

A hold that reserved seconds on the bucket before it expired and commits them after is the exception:
those leave with the commit's row (they count as available, like any held seconds, until it), and
what the hold gives back expires with the bucket (docs/decisions.md, "Operator console: reads"); the
reader passes no hold commit (a consumption row) as a later debit."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime
from itertools import accumulate
from typing import Any, Iterable


@dataclass(frozen=True)
class RowExpiry:
    available_after_seconds: int
    expired_before_seconds: int


@dataclass(frozen=True)
class ExpiringBucket:
    bucket_seq: int
    expires_at: datetime
    remaining_seconds: int  # now


@dataclass(frozen=True)
class LaterDebit:
    """A ledger row that took seconds out of a bucket at or after its expiry (not a hold's commit,
    nor a rollover's outgoing leg: see the reader)."""
    event_seq: int
    bucket_seq: int
    occurred_at: datetime
    seconds: int  # negative


class _Steps:
    """A step function: the sum of the amounts at keys <= k."""

    def __init__(self, steps: Iterable[tuple[Any, int]]):  # instants, or event_seqs
        ordered = sorted(steps)
        self._keys = [key for key, _ in ordered]
        self._totals = list(accumulate(amount for _, amount in ordered))

    def by(self, key: Any) -> int:
        count = bisect_right(self._keys, key)
        return self._totals[count - 1] if count else 0


class ExpiredSeconds:
    """expired_by(t): seconds expired at or before t and not taken out since; expired_between: the
    seconds that expired between two instants (what the user saw vanish)."""

    def __init__(self, buckets: Iterable[ExpiringBucket], later_debits: Iterable[LaterDebit] = ()):
        buckets = list(buckets)
        expires_at = {b.bucket_seq: b.expires_at for b in buckets}
        taken_after: dict[int, int] = {}
        taken: list[tuple[int, int]] = []
        for debit in later_debits:
            assert debit.seconds < 0
            if debit.bucket_seq in expires_at and debit.occurred_at >= expires_at[debit.bucket_seq]:
                taken_after[debit.bucket_seq] = taken_after.get(debit.bucket_seq, 0) - debit.seconds
                taken.append((debit.event_seq, -debit.seconds))
        expiries = [(b.expires_at, b.remaining_seconds + taken_after.get(b.bucket_seq, 0)) for b in buckets]
        assert all(amount >= 0 for _, amount in expiries)
        self._expiries = _Steps(expiries)
        # Taken out by the ledger's order (the running sum's), so rows written at one instant stay
        # consistent: expired seconds leave the running sum and "expired" at the same row.
        self._taken = _Steps(taken)

    def expired_by(self, instant: datetime, event_seq: int | None = None) -> int:
        """A bucket expiring at T is unusable at T: it counts from T on, until a row takes it out
        (the rows up to event_seq; every row when None)."""
        taken = self._taken.by(2**63 if event_seq is None else event_seq)
        return self._expiries.by(instant) - taken

    def expired_between(self, earlier: datetime | None, later: datetime) -> int:
        """Expired after `earlier` up to `later` (everything up to `later` when there is no earlier);
        0 when the instants run backwards."""
        before = 0 if earlier is None else self._expiries.by(earlier)
        return max(0, self._expiries.by(later) - before)

    def explain(
        self, balance_after_seconds: int, occurred_at: datetime, previous_at: datetime | None, event_seq: int,
    ) -> RowExpiry:
        """A ledger row's available seconds after it and the seconds expired since the row before it.
        Both instants are the running maximum of occurred_at (the caller's), so a clock that steps
        back between two replicas' rows counts no expiry twice."""
        return RowExpiry(
            available_after_seconds=balance_after_seconds - self.expired_by(occurred_at, event_seq),
            expired_before_seconds=self.expired_between(previous_at, occurred_at),
        )
