"""Expired seconds over time (domain/expiry_timeline.py): what the ledger's timeline subtracts."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from billing.domain.expiry_timeline import ExpiredSeconds, ExpiringBucket, LaterDebit, RowExpiry

DAY = datetime(2026, 3, 1, tzinfo=timezone.utc)


def _days(n: int) -> datetime:
    return DAY + timedelta(days=n)


def _buckets(*pairs: tuple[datetime, int]) -> list[ExpiringBucket]:
    return [ExpiringBucket(seq, at, remaining) for seq, (at, remaining) in enumerate(pairs, start=1)]


def test_a_bucket_counts_as_expired_from_its_expiry_on():
    expired = ExpiredSeconds(_buckets((_days(2), 600), (_days(1), 600), (_days(1), 50), (_days(3), 0)))
    assert expired.expired_by(_days(1) - timedelta(microseconds=1)) == 0
    assert expired.expired_by(_days(1)) == 650  # unusable at its instant
    assert expired.expired_by(_days(2)) == expired.expired_by(_days(30)) == 1250


def test_expired_between_two_rows_never_runs_backwards():
    expired = ExpiredSeconds(_buckets((_days(1), 600), (_days(2), 600)))
    assert expired.expired_between(DAY, _days(2)) == 1200
    assert expired.expired_between(_days(1), _days(2)) == 600
    assert expired.expired_between(None, _days(1)) == 600
    assert expired.expired_between(_days(2), _days(1)) == 0  # a row stamped before its predecessor


def test_a_row_is_explained_by_what_expired_by_it():
    expired = ExpiredSeconds(_buckets((_days(1), 600)))
    assert expired.explain(1800, _days(1) + timedelta(hours=9), DAY + timedelta(hours=9), 3) == RowExpiry(1200, 600)
    assert expired.explain(1200, DAY + timedelta(hours=10), DAY + timedelta(hours=9), 2) == RowExpiry(1200, 0)
    assert ExpiredSeconds([]).explain(30, DAY, None, 1) == RowExpiry(30, 0)


def test_seconds_taken_from_an_expired_bucket_had_expired_at_its_expiry():
    """A package expires with 800 s unused; a row takes them five days later: they expired at the
    expiry (the user lost them then), and the taking row does not move what is available."""
    expired = ExpiredSeconds(_buckets((_days(1), 0), (_days(2), 100)), [LaterDebit(7, 1, _days(6), -800)])
    assert expired.expired_by(_days(1), 1) == 800  # before the row that takes them
    assert expired.expired_by(_days(2), 1) == 900
    assert expired.expired_by(_days(6), 6) == 900  # not taken yet by the rows up to 6
    assert expired.expired_by(_days(6), 7) == expired.expired_by(_days(6)) == 100  # taken out of the running sum too
    assert expired.expired_between(DAY, _days(6)) == 900  # what vanished from the user's view
    assert expired.explain(1800, _days(3), _days(1), 6) == RowExpiry(900, 100)
    assert expired.explain(1000, _days(6), _days(3), 7) == RowExpiry(900, 0)  # the debit: running 1800 - 800


def test_rows_at_one_instant_take_expired_seconds_in_the_ledger_order():
    """A period close writes its rows at one instant: what a later one takes is still expired at an
    earlier one, so each row's available follows from the one before it."""
    expired = ExpiredSeconds(_buckets((_days(1), 0)), [LaterDebit(3, 1, _days(2), -500)])
    assert expired.explain(2000, _days(2), DAY, 2) == RowExpiry(1500, 500)  # a row before the debit
    assert expired.explain(1500, _days(2), _days(2), 3) == RowExpiry(1500, 0)  # the debit


def test_a_debit_before_the_expiry_or_of_another_bucket_is_not_a_later_debit():
    expired = ExpiredSeconds(_buckets((_days(2), 0)), [LaterDebit(1, 1, _days(1), -500), LaterDebit(2, 9, _days(3), -5)])
    assert expired.expired_by(_days(30)) == 0


def test_a_debit_at_the_expiry_instant_takes_expired_seconds():
    expired = ExpiredSeconds(_buckets((_days(1), 0)), [LaterDebit(4, 1, _days(1), -300)])
    assert expired.expired_between(None, _days(1)) == 300
    assert expired.expired_by(_days(1), 3) == 300 and expired.expired_by(_days(1), 4) == 0
