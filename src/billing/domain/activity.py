"""Service activity per UTC hour (issue 23): what one replica counted, and its hourly rows.

Counted on the request path (consumes, refusals, top-ups, webhook deliveries), so counting is an
integer add on a cumulative counter, no clock read, no I/O; each replica's reporter turns the
totals into its hourly rows every few seconds (service/replica_report.py), and the hours add up
over replicas when read."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime, timezone

HOUR_SECONDS = 3600


@dataclass
class HourCounts:
    consumed_seconds: int = 0
    consumes: int = 0
    refusals: int = 0
    topups_succeeded: int = 0
    topups_failed: int = 0
    webhooks_delivered: int = 0
    webhooks_failed: int = 0

    def add(self, other: "HourCounts") -> None:
        for counter in COUNTERS:
            setattr(self, counter, getattr(self, counter) + getattr(other, counter))

    def is_empty(self) -> bool:
        return not any(getattr(self, counter) for counter in COUNTERS)

    def minus(self, earlier: "HourCounts") -> "HourCounts":
        return HourCounts(*(getattr(self, counter) - getattr(earlier, counter) for counter in COUNTERS))


COUNTERS = tuple(f.name for f in fields(HourCounts))


def hour_of(instant: datetime) -> datetime:
    """The UTC hour an instant falls in."""
    return instant.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)


class ActivityCounts(HourCounts):
    """What this process counted since it started (cumulative, never reset): the request path adds
    to an attribute (`activity.consumes += 1`: an integer add, no clock read, no dict); the
    replica's reporter turns the totals into hourly rows (HourlyRows)."""

    def totals(self) -> HourCounts:
        return HourCounts(*(getattr(self, counter) for counter in COUNTERS))


class HourlyRows:
    """A replica's rows of service_activity from its cumulative totals: each report SETs the current
    hour's row to the totals less those at the hour's start (the totals of the last report written
    before it), so writing a report again (a flush whose commit was not confirmed) changes nothing,
    and counts go to the hour of the report that writes them (at most one report interval late).

    When the hour changes, the report also writes the previous hour's row once more with the totals
    of its last written report: both rows come from one boundary, so a report that committed though
    it failed is neither lost nor counted twice. `now` is passed in by the caller (its clock)."""

    def __init__(self) -> None:
        self._hour: datetime | None = None
        self._start = HourCounts()  # the totals when self._hour began
        self._written: HourCounts | None = None  # the totals of the last report written in self._hour

    def rows(self, now: datetime, totals: HourCounts) -> dict[datetime, HourCounts]:
        """The rows a report at `now` writes (SET, not added)."""
        hour = hour_of(now)
        if self._hour is None or hour == self._hour:
            return {hour: totals.minus(self._start)}
        boundary = self._written or self._start
        return {self._hour: boundary.minus(self._start), hour: totals.minus(boundary)}

    def written(self, now: datetime, totals: HourCounts) -> None:
        """The rows(now, totals) report was written."""
        hour = hour_of(now)
        if self._hour is not None and hour != self._hour:
            self._start = self._written or self._start
        self._hour, self._written = hour, totals
