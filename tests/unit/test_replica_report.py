"""The replica's reporter (service/replica_report.py): hourly rows SET from cumulative counters, a
report whose commit was not confirmed counted once, old heartbeats and hours pruned once an hour."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from billing.adapters.clock import FixedClock
from billing.domain.activity import ActivityCounts, HourCounts
from billing.service.ports import Unavailable
from billing.service.replica_report import LIVE_WITHIN, ReplicaReporter, this_replica

START = datetime(2026, 3, 14, 9, 59, 40, tzinfo=timezone.utc)


class _Table:
    """service_activity and the prunes as a dict; `fail_after_commit` loses the answer of a write."""

    def __init__(self):
        self.rows: dict[datetime, HourCounts] = {}
        self.prunes: list[tuple[datetime, datetime]] = []
        self.fail_after_commit = False

    async def heartbeat(self, replica, live_since):
        return 1

    async def set_activity(self, replica_id, hours):
        self.rows.update(hours)
        if self.fail_after_commit:
            raise Unavailable("the commit's answer was lost", kind="database")

    async def prune(self, heartbeats_before, activity_before):
        self.prunes.append((heartbeats_before, activity_before))


async def test_every_count_lands_once_though_a_report_failed_after_committing():
    clock, table, activity = FixedClock(START), _Table(), ActivityCounts()
    reporter = ReplicaReporter(table, activity, clock, this_replica(START))
    activity.consumes += 3
    assert await reporter.report()
    activity.consumes += 4
    table.fail_after_commit = True
    assert not await reporter.report()  # written, though the reporter cannot know
    table.fail_after_commit = False
    activity.consumes += 5
    clock.set(START + timedelta(seconds=30))  # the next hour
    assert await reporter.report()
    assert await reporter.report()  # again: nothing changes
    assert {hour: counts.consumes for hour, counts in table.rows.items()} == {
        START.replace(minute=0, second=0): 3, START.replace(hour=10, minute=0, second=0): 9}
    assert sum(counts.consumes for counts in table.rows.values()) == activity.consumes == 12


async def test_old_heartbeats_and_hours_are_pruned_once_an_hour():
    clock, table = FixedClock(START), _Table()
    reporter = ReplicaReporter(table, ActivityCounts(), clock, this_replica(START))
    for minutes in (0, 25, 50, 75):  # prunes at the first report, then at the first an hour later
        clock.set(START + timedelta(minutes=minutes))
        assert await reporter.report()
    later = START + timedelta(minutes=75)
    assert table.prunes == [(START - timedelta(days=1), START - timedelta(days=30)),
                            (later - timedelta(days=1), later - timedelta(days=30))]


async def test_each_report_hands_on_how_many_replicas_are_live_counted_over_three_intervals():
    class _Beats(_Table):
        def __init__(self):
            super().__init__()
            self.live_since: list[datetime] = []

        async def heartbeat(self, replica, live_since):
            self.live_since.append(live_since)
            return 3

    clock, table, counts = FixedClock(START), _Beats(), []
    reporter = ReplicaReporter(table, ActivityCounts(), clock, this_replica(START), live_replicas=counts.append)
    assert await reporter.report()
    assert counts == [3] and table.live_since == [START - LIVE_WITHIN]
    assert LIVE_WITHIN == timedelta(seconds=30)
