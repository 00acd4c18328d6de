"""What server processes and `billing tick` write about themselves (service/ports.py ServiceRecords):
service-wide rows, one statement each, off the request path (a replica's reporter every ~10 s)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from billing.adapters.db.unit_of_work import PostgresStorage
from billing.domain.activity import COUNTERS, HourCounts
from billing.domain.console import ReplicaRecord

_HEARTBEAT = """
INSERT INTO replica_heartbeats (replica_id, host, pid, started_at, seen_at)
VALUES (%(replica_id)s, %(host)s, %(pid)s, %(started_at)s, %(seen_at)s)
ON CONFLICT (replica_id) DO UPDATE SET seen_at = EXCLUDED.seen_at
"""
_ADD_ACTIVITY = f"""
INSERT INTO service_activity (hour_at, replica_id, {", ".join(COUNTERS)})
SELECT hour_at, %(replica_id)s, {", ".join(COUNTERS)}
FROM unnest(%(hours)s::timestamptz[], {", ".join(f"%({c})s::bigint[]" for c in COUNTERS)})
     AS counts (hour_at, {", ".join(COUNTERS)})
ON CONFLICT (hour_at, replica_id) DO UPDATE SET
  {", ".join(f"{c} = service_activity.{c} + EXCLUDED.{c}" for c in COUNTERS)}
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

    async def heartbeat(self, replica: ReplicaRecord) -> None:
        await self._execute(_HEARTBEAT, {
            "replica_id": replica.replica_id, "host": replica.host, "pid": replica.pid,
            "started_at": replica.started_at, "seen_at": replica.seen_at,
        })

    async def add_activity(self, replica_id: str, hours: Mapping[datetime, HourCounts]) -> None:
        if not hours:
            return
        ordered = sorted(hours.items())
        params: dict[str, Any] = {"replica_id": replica_id, "hours": [hour for hour, _ in ordered]}
        for counter in COUNTERS:
            params[counter] = [getattr(counts, counter) for _, counts in ordered]
        await self._execute(_ADD_ACTIVITY, params)

    async def job_ran(self, job: str, started_at: datetime, finished_at: datetime, accounts_touched: int) -> None:
        await self._execute(_JOB_RAN, {"job": job, "started_at": started_at, "finished_at": finished_at,
                                       "touched": accounts_touched})
