"""GetServiceHealth and GetServiceActivity: the console's operations panels, read from what every
server process records (service/replica_report.py), `billing tick`'s last run, the webhook queues
and this replica's pool."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from time import perf_counter

from billing.domain.activity import HourCounts, hour_of
from billing.domain.console import HealthCounts, PoolState
from billing.service.dependencies import Dependencies
from billing.service.operator_inputs import bounded
from billing.service.ports import Unavailable

REPLICA_SEEN_WITHIN = timedelta(seconds=60)
ACTIVITY_HOURS_DEFAULT, ACTIVITY_HOURS_MAX = 24, 168
NOTHING_READ = HealthCounts((), None, 0, 0, 0, 0)


@dataclass(frozen=True)
class ServiceHealth:
    database_ok: bool
    database_latency_ms: int
    pool: PoolState
    counts: HealthCounts  # NOTHING_READ when the database did not answer


async def get_service_health(deps: Dependencies) -> ServiceHealth:
    """Answers while the database is out too (database_ok false): that is when it is looked at."""
    reads = deps.console_reads()
    now = deps.clock.now()
    started = perf_counter()
    try:
        await reads.round_trip()
        latency_ms = round((perf_counter() - started) * 1000)
        counts = await reads.service_health(now, now - REPLICA_SEEN_WITHIN)
    except Unavailable:
        return ServiceHealth(False, 0, reads.pool_state(), NOTHING_READ)
    return ServiceHealth(True, latency_ms, reads.pool_state(), counts)


async def get_service_activity(deps: Dependencies, hours: int) -> list[tuple[datetime, HourCounts]]:
    """Every hour of the span, oldest first (an hour nobody counted in reads as zeros)."""
    span = bounded(hours, "hours", ACTIVITY_HOURS_DEFAULT, ACTIVITY_HOURS_MAX)
    first = hour_of(deps.clock.now()) - timedelta(hours=span - 1)
    counted = dict(await deps.console_reads().activity(first))
    return [(hour, counted.get(hour, HourCounts())) for hour in (first + timedelta(hours=n) for n in range(span))]
