"""Usage analytics from per-day consumption sums, zero-filled over the period."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from billing.domain.clock_math import days_from


@dataclass(frozen=True)
class UsageSummary:
    total_seconds: int
    by_operation: dict[str, int]
    daily_trend: list[tuple[date, int]]


def summarize_usage(rows: list[tuple[date, str, int]], first_day: date, last_day: date) -> UsageSummary:
    """rows: (day, operation, seconds consumed). Days outside [first_day, last_day] are a caller bug."""
    by_operation: dict[str, int] = {}
    by_day: dict[date, int] = {}
    for day, operation, seconds in rows:
        assert first_day <= day <= last_day and seconds >= 0
        by_operation[operation] = by_operation.get(operation, 0) + seconds
        by_day[day] = by_day.get(day, 0) + seconds
    trend = [(day, by_day.get(day, 0)) for day in days_from(first_day, last_day)]
    total = sum(by_operation.values())
    assert total == sum(seconds for _, seconds in trend)
    return UsageSummary(total_seconds=total, by_operation=by_operation, daily_trend=trend)
