"""Expired seconds over time (domain/expiry_timeline.py): what the ledger's timeline subtracts."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from billing.domain.expiry_timeline import ExpiredSeconds, RowExpiry

DAY = datetime(2026, 3, 1, tzinfo=timezone.utc)


def _days(n: int) -> datetime:
    return DAY + timedelta(days=n)


def test_a_bucket_counts_as_expired_from_its_expiry_on():
    expired = ExpiredSeconds([(_days(2), 600), (_days(1), 600), (_days(1), 50), (_days(3), 0)])
    assert expired.expired_by(_days(1) - timedelta(microseconds=1)) == 0
    assert expired.expired_by(_days(1)) == 650  # unusable at its instant
    assert expired.expired_by(_days(2)) == expired.expired_by(_days(30)) == 1250


def test_expired_between_two_rows_never_runs_backwards():
    expired = ExpiredSeconds([(_days(1), 600), (_days(2), 600)])
    assert expired.expired_between(DAY, _days(2)) == 1200
    assert expired.expired_between(_days(1), _days(2)) == 600
    assert expired.expired_between(None, _days(1)) == 600
    assert expired.expired_between(_days(2), _days(1)) == 0  # a row stamped before its predecessor


def test_a_row_is_explained_by_what_expired_by_it():
    expired = ExpiredSeconds([(_days(1), 600)])
    assert expired.explain(1800, _days(1) + timedelta(hours=9), DAY + timedelta(hours=9)) == RowExpiry(1200, 600)
    assert expired.explain(1200, DAY + timedelta(hours=10), DAY + timedelta(hours=9)) == RowExpiry(1200, 0)
    assert ExpiredSeconds([]).explain(30, DAY, None) == RowExpiry(30, 0)
