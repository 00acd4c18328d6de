"""Each server process reports itself every ~10 s, off the request path: a heartbeat row (the health
panel's replicas; its answer, how many replicas are live, sets this process's share of the per-key
limits: api/key_rate_limit.py) and its hourly activity rows, set from its cumulative counters (domain/activity.py
HourlyRows); once an hour it deletes old heartbeats and hours. Its last report runs at shutdown, so
a stopped replica's counts are not lost."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from contextlib import suppress
from datetime import datetime, timedelta
from typing import Callable

from billing.domain.activity import ActivityCounts, HourlyRows
from billing.domain.console import ReplicaRecord
from billing.service.operator_ports import ServiceRecords
from billing.service.ports import Clock, Unavailable, outage_log

log = logging.getLogger(__name__)
REPORT_EVERY_SECONDS = 10.0
RETRY_SECONDS = 1.0  # a report that failed (a server starting before its database answers) is tried again soon
# Heartbeats (the health panel shows the last 60 s) and hourly activity (the panel reads at most
# 168 hours) are kept this long, pruned by every replica once an hour (idempotent deletes).
HEARTBEATS_KEPT = timedelta(days=1)
ACTIVITY_KEPT = timedelta(days=30)
PRUNE_EVERY = timedelta(hours=1)
# A replica seen this recently counts as live: three report intervals, so a report or two lost to a
# slow database does not hand its share to the others; a replica gone is counted this long after.
LIVE_WITHIN = timedelta(seconds=3 * REPORT_EVERY_SECONDS)


def this_replica(now: datetime) -> ReplicaRecord:
    """A new id per process: a restarted process is a new replica."""
    return ReplicaRecord("r_" + secrets.token_hex(8), socket.gethostname()[:200], os.getpid(), now, now)


class ReplicaReporter:
    def __init__(self, records: ServiceRecords, activity: ActivityCounts, clock: Clock, replica: ReplicaRecord,
                 every_seconds: float = REPORT_EVERY_SECONDS, live_replicas: Callable[[int], None] = lambda count: None):
        self._records = records
        self._activity = activity
        self._clock = clock
        self.replica = replica
        self._every = every_seconds
        self._live_replicas = live_replicas
        self._task: asyncio.Task[None] | None = None
        self._reported_once = False  # a server starts before its database answers: quiet until then
        self._rows = HourlyRows()
        self._pruned_at: datetime | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="replica reporter")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
        await self.report()

    async def _run(self) -> None:
        while True:
            reported = await self.report()
            await asyncio.sleep(self._every if reported else min(self._every, RETRY_SECONDS))

    async def report(self) -> bool:
        """The heartbeat, then this hour's counts (SET: a report written twice counts once; a failed
        one is covered by the next), then, once an hour, the old rows go."""
        now, totals = self._clock.now(), self._activity.totals()
        try:
            live = await self._records.heartbeat(ReplicaRecord(
                self.replica.replica_id, self.replica.host, self.replica.pid, self.replica.started_at, now),
                now - LIVE_WITHIN)
            self._live_replicas(live)
            await self._records.set_activity(self.replica.replica_id, self._rows.rows(now, totals))
            self._rows.written(now, totals)
            if self._pruned_at is None or now - self._pruned_at >= PRUNE_EVERY:
                await self._records.prune(now - HEARTBEATS_KEPT, now - ACTIVITY_KEPT)
                self._pruned_at = now
        except Unavailable as outage:
            if self._reported_once:
                log.warning("replica report not written (tried again): %s", outage,
                            extra=outage_log(outage.kind or "database"))
            return False
        except Exception:
            log.exception("replica report failed")
            return False
        self._reported_once = True
        return True
