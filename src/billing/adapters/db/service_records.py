"""What server processes and `billing tick` write about themselves (service/ports.py ServiceRecords):
service-wide rows, one statement each, off the request path (a replica's reporter every ~10 s)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from billing.adapters.db.unit_of_work import PostgresStorage
from billing.domain.activity import COUNTERS, HourCounts
from billing.domain.console import ReplicaRecord

# The statement's snapshot does not see its own insert: the others live, plus this one. On the
# replica_heartbeats_seen index; a few rows (one per live process).
_HEARTBEAT = """
WITH beat AS (
  INSERT INTO replica_heartbeats (replica_id, host, pid, started_at, seen_at)
  VALUES (%(replica_id)s, %(host)s, %(pid)s, %(started_at)s, %(seen_at)s)
  ON CONFLICT (replica_id) DO UPDATE SET seen_at = EXCLUDED.seen_at
)
SELECT 1 + count(*) FROM replica_heartbeats WHERE seen_at >= %(live_since)s AND replica_id <> %(replica_id)s
"""
# SET, not +=: a report's rows are what the replica counted in the hour (domain/activity.py HourlyRows),
# so a report written twice (a commit whose answer was lost) counts once.
_SET_ACTIVITY = f"""
INSERT INTO service_activity (hour_at, replica_id, {", ".join(COUNTERS)})
SELECT hour_at, %(replica_id)s, {", ".join(COUNTERS)}
FROM unnest(%(hours)s::timestamptz[], {", ".join(f"%({c})s::bigint[]" for c in COUNTERS)})
     AS counts (hour_at, {", ".join(COUNTERS)})
ON CONFLICT (hour_at, replica_id) DO UPDATE SET
  {", ".join(f"{c} = EXCLUDED.{c}" for c in COUNTERS)}
"""
# Both on an index's leading column (replica_heartbeats_seen, service_activity_pkey): run hourly,
# each deletes about an hour's rows.
_PRUNE = """
WITH heartbeats AS (DELETE FROM replica_heartbeats WHERE seen_at < %(heartbeats_before)s)
DELETE FROM service_activity WHERE hour_at < %(activity_before)s
"""
_JOB_RAN = """
INSERT INTO job_runs (job, started_at, finished_at, accounts_touched)
VALUES (%(job)s, %(started_at)s, %(finished_at)s, %(touched)s)
ON CONFLICT (job) DO UPDATE SET started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at,
  accounts_touched = EXCLUDED.accounts_touched
"""


class PostgresServiceRecords:
    def __init__(self, storage: PostgresStorage):
        self._storage = storage

    async def _execute(self, query: str, params: Any) -> None:
        async with self._storage.reader() as uow:
            await (await uow.connection()).execute(query, params)

    async def heartbeat(self, replica: ReplicaRecord, live_since: datetime) -> int:
        async with self._storage.reader() as uow:
            cursor = await (await uow.connection()).execute(_HEARTBEAT, {
                "replica_id": replica.replica_id, "host": replica.host, "pid": replica.pid,
                "started_at": replica.started_at, "seen_at": replica.seen_at, "live_since": live_since,
            })
            row = await cursor.fetchone()
        assert row is not None
        return int(row[0])

    async def set_activity(self, replica_id: str, hours: Mapping[datetime, HourCounts]) -> None:
        if not hours:
            return
        ordered = sorted(hours.items())
        params: dict[str, Any] = {"replica_id": replica_id, "hours": [hour for hour, _ in ordered]}
        for counter in COUNTERS:
            params[counter] = [getattr(counts, counter) for _, counts in ordered]
        await self._execute(_SET_ACTIVITY, params)

    async def prune(self, heartbeats_before: datetime, activity_before: datetime) -> None:
        await self._execute(_PRUNE, {"heartbeats_before": heartbeats_before, "activity_before": activity_before})

    async def job_ran(self, job: str, started_at: datetime, finished_at: datetime, accounts_touched: int) -> None:
        await self._execute(_JOB_RAN, {"job": job, "started_at": started_at, "finished_at": finished_at,
                                       "touched": accounts_touched})
