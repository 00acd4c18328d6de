"""UTC calendar arithmetic. Every function takes the instant it works on; none reads a clock."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

UTC = timezone.utc


def assert_utc(instant: datetime) -> None:
    assert instant.tzinfo is not None, "naive datetime"
    assert instant.utcoffset() == timedelta(0), "datetime not in UTC"


def next_utc_midnight(now: datetime) -> datetime:
    assert_utc(now)
    return datetime.combine(now.date() + timedelta(days=1), time(0), tzinfo=UTC)


def start_of_utc_day(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def first_day_of_month(day: date) -> date:
    return day.replace(day=1)


def add_months(instant: datetime, months: int) -> datetime:
    """Same day-of-month `months` later, clamped to the month's last day (Jan 31 + 1 = Feb 28/29)."""
    assert_utc(instant)
    month_index = instant.month - 1 + months
    year, month = instant.year + month_index // 12, month_index % 12 + 1
    last_day = (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)).day
    return instant.replace(year=year, month=month, day=min(instant.day, last_day))


def days_from(first: date, last: date) -> list[date]:
    """Every date from first to last, both included."""
    assert first <= last
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
