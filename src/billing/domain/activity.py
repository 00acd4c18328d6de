"""Service activity per UTC hour (issue 23): what one replica counted since its last flush.

Counted on the request path (consumes, refusals, top-ups, webhook deliveries), so adding is a
dict lookup and an integer add, no I/O; each replica flushes what it counted to the database
every few seconds (service/replica_report.py), where the hours add up over replicas."""

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


COUNTERS = tuple(f.name for f in fields(HourCounts))


def hour_of(instant: datetime) -> datetime:
    """The UTC hour an instant falls in."""
    return instant.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)


class ActivityCounts:
    """Counts per UTC hour until taken; `now` is passed in by the caller (its clock)."""

    def __init__(self) -> None:
        self._hours: dict[datetime, HourCounts] = {}

    def count(self, now: datetime, counter: str, amount: int = 1) -> None:
        hour = hour_of(now)
        counts = self._hours.get(hour)
        if counts is None:
            counts = self._hours[hour] = HourCounts()
        setattr(counts, counter, getattr(counts, counter) + amount)

    def take(self) -> dict[datetime, HourCounts]:
        """What was counted since the last take (and nothing counted after it is lost)."""
        taken, self._hours = self._hours, {}
        return {hour: counts for hour, counts in taken.items() if not counts.is_empty()}

    def give_back(self, taken: dict[datetime, HourCounts]) -> None:
        """A flush that failed: its counts wait for the next one."""
        for hour, counts in taken.items():
            mine = self._hours.get(hour)
            if mine is None:
                self._hours[hour] = counts
            else:
                mine.add(counts)
