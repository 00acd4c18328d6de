"""`python -m bench.run --only standby`: reads on a hot standby (adapters/db/read_routing.py).

1. gRPC GetBalance at full load on a stack reading the primary, then on one with DATABASE_READ_URL
   naming a hot standby of the bench's embedded PostgreSQL (made once by pg_basebackup into
   `.data/postgres-standby`, started if stopped): calls/s, latency, server CPU per call, and the
   CPU per call of the primary's and the standby's PostgreSQL processes apart (which server a read
   costs is the point of a standby).
2. Commit-to-visible as the service observes it: while gRPC Consume writes at full load, the
   service's own ReplayFence, run in this process, measures each cycle (the primary's WAL position
   read, then the standby polled until it has replayed it): p50 / p99 / max over the window, of
   every cycle (what a read waits, less the pacing) and of those that found new WAL to wait for.
3. GetBalance on the standby stack while Consume writes beside it: the reads now wait for the
   fence (a cycle under write load) or fall back to the primary; their latency and where the CPU went.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from pathlib import Path
from typing import Callable

import psutil

from billing.adapters.db.read_routing import ReplayFence, StandbyBreaker
from billing.settings import libpq_url
from devstack import embedded_postgres

ROOT = Path(__file__).resolve().parents[1]


def _tree_cpu(postmaster: int) -> dict[int, float]:
    """CPU seconds of a postmaster and its backends (one server's, not every PostgreSQL on the host)."""
    try:
        processes = [psutil.Process(postmaster)] + psutil.Process(postmaster).children(recursive=True)
    except psutil.NoSuchProcess:
        return {}
    seconds = {}
    for process in processes:
        try:
            times = process.cpu_times()
            seconds[process.pid] = times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return seconds


def _delta(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(after[pid] - before[pid] for pid in after if pid in before)


class ServerMeter:
    """CPU seconds of the stack's processes, the primary's PostgreSQL and the standby's, apart."""

    def __init__(self, stack_pids: list[int], primary_dir: Path, standby_dir: Path):
        self.stack_pids = stack_pids
        self.postmasters = {name: embedded_postgres.postmaster_pid(directory)
                            for name, directory in (("primary", primary_dir), ("standby", standby_dir))}

    def _sample(self) -> dict[str, dict[int, float]]:
        samples = {name: _tree_cpu(pid) if pid else {} for name, pid in self.postmasters.items()}
        samples["stack"] = {}
        for pid in self.stack_pids:
            try:
                times = psutil.Process(pid).cpu_times()
                samples["stack"][pid] = times.user + times.system
            except psutil.NoSuchProcess:
                pass
        return samples

    def __enter__(self) -> "ServerMeter":
        self._start = self._sample()
        return self

    def __exit__(self, *exc: object) -> None:
        end = self._sample()
        self.seconds = {name: _delta(self._start[name], end[name]) for name in end}


def per_call(result: dict, meter: ServerMeter) -> dict:
    calls = max(1, result.get("requests") or 1)
    result.update({f"{name}_cpu_per_call_us": round(seconds / calls * 1e6, 1) for name, seconds in meter.seconds.items()})
    return result


def line(result: dict) -> str:
    return (f"{result['label']:<40} {result.get('rps', 0):>8.0f} calls/s  p50 {result.get('p50_ms')} "
            f"p99 {result.get('p99_ms')} ms  errors {result.get('errors', 0)}  server {result.get('stack_cpu_per_call_us')} "
            f"us/call  primary PG {result.get('primary_cpu_per_call_us')} us  standby PG {result.get('standby_cpu_per_call_us')} us")


async def _observe_fence(primary_url: str, standby_url: str, seconds: float) -> tuple[list[float], list[float]]:
    breaker = StandbyBreaker()
    fence = ReplayFence(libpq_url(primary_url), libpq_url(standby_url), breaker, wait_seconds=1.0)
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await fence.wait()
        return list(fence.observed_lags), list(fence.polled_lags)
    finally:
        await fence.close()


def commit_to_visible(primary_url: str, standby_url: str, seconds: float, write_load: Callable[[], dict]) -> dict:
    """The fence's cycles while `write_load` (a blocking closed loop of Consume) runs beside them."""
    written: dict = {}
    writer = threading.Thread(target=lambda: written.update(write_load()), daemon=True)
    writer.start()
    time.sleep(0.5)  # the load's own start-up
    every_cycle, polled = asyncio.run(_observe_fence(primary_url, standby_url, seconds))
    writer.join()
    return {"writes_per_s": written.get("rps"), **_quantiles(every_cycle), "polled": _quantiles(polled)}


def _quantiles(seconds: list[float]) -> dict:
    lags = sorted(seconds)
    if not lags:
        return {"cycles": 0}
    return {
        "cycles": len(lags), "p50_ms": round(statistics.median(lags) * 1000, 2),
        "p99_ms": round(lags[min(len(lags) - 1, int(len(lags) * 0.99))] * 1000, 2), "max_ms": round(lags[-1] * 1000, 2),
    }


def standby_of(primary_dir: Path, database_url: str) -> tuple[Path, str]:
    """The hot standby of the bench's embedded PostgreSQL (made once), and the dataset's URL on it."""
    server = embedded_postgres.start_standby(primary_dir)
    return embedded_postgres.standby_data_dir(primary_dir), server.rsplit("/", 1)[0] + "/" + database_url.rsplit("/", 1)[1]
