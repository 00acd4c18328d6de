"""Live balance (WatchBalance) under load: how many idle streams one server process holds, and
how long one change takes to reach many watchers of its account.

`python -m bench.run --only watchers --accounts 1000`: the stack as `make bench` runs it, its
server told to allow the streams (BILLING_MAX_WATCHERS, BILLING_MAX_WATCHERS_PER_USER). The
streams are direct gRPC (one HTTP/2 connection per CHANNEL_STREAMS streams, bearer service key),
so the figures are the server process's, not Envoy's.

1. Idle: `idle_watchers` streams over the dataset's accounts; the server's resident memory
   before and after, and its CPU over IDLE_SECONDS while they sit (heartbeats only).
2. Fan-out: `fanout_watchers` streams of ONE account; CHANGES consumes of it, one at a time;
   each stream's latency from the consume's call to its update (the consume's own round trip
   included: what a user sees between acting and seeing it).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import grpc
import psutil

from billing.v1 import billing_service_pb2, billing_service_pb2_grpc, consumption_pb2

IDLE_SECONDS = 20.0
CHANGES = 5
CHANNEL_STREAMS = 500
OPEN_BATCH = 250
UPDATE_TIMEOUT_SECONDS = 10.0


def server_settings(idle_watchers: int, fanout_watchers: int) -> dict[str, str]:
    """What the server must allow for this scenario (added to its environment)."""
    return {
        "BILLING_MAX_WATCHERS": str(max(idle_watchers, fanout_watchers) + 100),
        "BILLING_MAX_WATCHERS_PER_USER": str(fanout_watchers),
    }


def _rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            total += psutil.Process(pid).memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return round(total / 2**20, 1)


def _cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


class Streams:
    """Open WatchBalance streams, spread over channels; each remembers when it last heard news."""

    def __init__(self, target: str):
        self._target = target
        self._channels: list[grpc.aio.Channel] = []
        self._tasks: list[asyncio.Task] = []
        self.opened = 0
        self.first = asyncio.Event()
        self.updates: dict[int, asyncio.Queue] = {}

    def _stub(self) -> billing_service_pb2_grpc.BillingServiceStub:
        if not self._channels or self.opened >= len(self._channels) * CHANNEL_STREAMS:
            self._channels.append(grpc.aio.insecure_channel(self._target))
        return billing_service_pb2_grpc.BillingServiceStub(self._channels[-1])

    async def open(self, account_id: str) -> asyncio.Queue:
        """Opens one stream; returns the queue of (arrival time, version) of its balance updates,
        after its first message has arrived."""
        metadata = (("authorization", os.environ["BENCH_GRPC_AUTHORIZATION"]),)
        call = self._stub().WatchBalance(billing_service_pb2.WatchBalanceRequest(user_id=account_id), metadata=metadata)
        arrivals: asyncio.Queue = asyncio.Queue()
        first = asyncio.get_running_loop().create_future()

        async def read() -> None:
            async for update in call:
                if not first.done():
                    first.set_result(int(update.version))
                elif not update.heartbeat:
                    arrivals.put_nowait((time.perf_counter(), int(update.version)))

        self._tasks.append(asyncio.get_running_loop().create_task(read()))
        self.opened += 1
        await asyncio.wait_for(first, UPDATE_TIMEOUT_SECONDS)
        return arrivals

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for channel in self._channels:
            await channel.close()


async def _open_many(streams: Streams, account_ids: list[str]) -> list[asyncio.Queue]:
    queues = []
    for start in range(0, len(account_ids), OPEN_BATCH):
        queues += await asyncio.gather(*(streams.open(a) for a in account_ids[start:start + OPEN_BATCH]))
    return queues


async def _idle(target: str, pids: list[int], watchers: int, accounts: int) -> dict:
    rss_before = _rss_mb(pids)
    streams = Streams(target)
    started = time.perf_counter()
    await _open_many(streams, [str(1 + n % accounts) for n in range(watchers)])
    open_seconds = time.perf_counter() - started
    await asyncio.sleep(2.0)
    rss_after = _rss_mb(pids)
    cpu_before = _cpu_seconds(pids)
    await asyncio.sleep(IDLE_SECONDS)
    cpu_percent = (_cpu_seconds(pids) - cpu_before) / IDLE_SECONDS * 100
    await streams.close()
    return {
        "idle_watchers": watchers, "open_seconds": round(open_seconds, 2),
        "server_rss_mb_before": rss_before, "server_rss_mb_with_watchers": rss_after,
        "server_kb_per_watcher": round((rss_after - rss_before) * 1024 / watchers, 1),
        "server_cpu_percent_idle": round(cpu_percent, 1),
    }


def _percentile(sorted_values: list[float], fraction: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


async def _fan_out(target: str, watchers: int, account_id: str) -> dict:
    streams = Streams(target)
    queues = await _open_many(streams, [account_id] * watchers)
    metadata = (("authorization", os.environ["BENCH_GRPC_AUTHORIZATION"]),)
    latencies_ms: list[float] = []
    async with grpc.aio.insecure_channel(target) as channel:
        stub = billing_service_pb2_grpc.BillingServiceStub(channel)
        for _ in range(CHANGES):
            await asyncio.sleep(0.5)
            sent = time.perf_counter()
            await stub.Consume(consumption_pb2.ConsumeRequest(
                user_id=account_id, operation="build", seconds=1, idempotency_key=uuid.uuid4().hex,
            ), metadata=metadata)
            arrivals = await asyncio.gather(*(asyncio.wait_for(q.get(), UPDATE_TIMEOUT_SECONDS) for q in queues))
            latencies_ms += [(arrived - sent) * 1000 for arrived, _version in arrivals]
    await streams.close()
    latencies_ms.sort()
    return {
        "fanout_watchers": watchers, "changes": CHANGES,
        "fanout_p50_ms": round(_percentile(latencies_ms, 0.5), 1),
        "fanout_p99_ms": round(_percentile(latencies_ms, 0.99), 1),
        "fanout_max_ms": round(latencies_ms[-1], 1),
    }


def run(target: str, pids: list[int], accounts: int, idle_watchers: int, fanout_watchers: int) -> dict:
    async def both() -> dict:
        idle = await _idle(target, pids, idle_watchers, accounts)
        return idle | await _fan_out(target, fanout_watchers, str(accounts))

    return asyncio.run(both())


def line(result: dict) -> str:
    return (
        f"watchers: {result['idle_watchers']} idle streams opened in {result['open_seconds']} s; server RSS "
        f"{result['server_rss_mb_before']} -> {result['server_rss_mb_with_watchers']} MB "
        f"({result['server_kb_per_watcher']} KB each), CPU idle {result['server_cpu_percent_idle']}%; "
        f"one change to {result['fanout_watchers']} watchers: p50 {result['fanout_p50_ms']} ms, "
        f"p99 {result['fanout_p99_ms']} ms, max {result['fanout_max_ms']} ms ({result['changes']} changes)"
    )
