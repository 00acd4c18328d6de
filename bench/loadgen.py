"""A lean asyncio load generator for billing.v1.BillingService, over gRPC or REST (Envoy).

Its parts: the request bytes of each scenario (bench/load_requests.py, shared with the
compiled gRPC generator's tests), the HTTP/1.1 client (testkit/http1_client.py), percentiles and
CPU time (bench/load_stats.py); this module runs them.

Usable as a library (`run(LoadConfig(...))`, or `run_subprocess(...)` to get it in its own
process) and as a CLI:

    python -m bench.loadgen --protocol grpc|rest --target HOST:PORT \
        --scenario consume|balance|batch|single_check --accounts N [--account-offset 0] \
        --duration SECONDS [--warmup SECONDS] (--concurrency C | --rate RPS) \
        [--connections K] [--timeout 10] [--max-inflight 2000] --out result.json

Scenarios (accounts are the decimal strings offset+1 .. offset+N, one picked at random per request):
  consume       Consume{user_id, operation="build", seconds=1, idempotency_key=<unique>}
                REST: POST /v1/billing/consume
  balance       GetBalance{user_id}            REST: GET /v1/billing/balance/{user_id}
  batch         CheckSufficientBatch{user_id, 50 operations cycling build/plan/export/
                metadata_generation, estimate_seconds=1}
                REST: POST /v1/billing/check-sufficient-batch {"userId":..,"operations":[..]}
  single_check  the same RPC with 1 operation

Modes:
  closed (--concurrency C)  C workers, each sends its next request when the previous one answered.
  open   (--rate R)         request i is due at t0 + i/R whatever the answers; each is its own task;
                            latency is taken from the *scheduled* time (no coordinated omission).
                            Beyond --max-inflight requests in flight a due request is not sent and
                            counted as `dropped`.

Cheapness, since the generator shares the CPUs with the server and PostgreSQL:
  - gRPC requests are protobuf bytes built by hand (a prebuilt tail + the user_id field; consume
    appends the key field), sent with serializer/deserializer None: no message objects, replies
    are not parsed (success = status OK).
  - REST is a minimal HTTP/1.1 keep-alive client on asyncio.Protocol (no streams, no third-party
    code): prebuilt request prefix/suffix bytes, Content-Length (or chunked) framing, status 200 = success.
  - latencies go to a list of floats; percentiles are computed after the measured window.
  - client_cpu_s is user+sys of THIS process (getrusage RUSAGE_SELF, all threads, incl. gRPC's)
    over the measured window; run it in its own process (the CLI, or run_subprocess) so the
    figure is the load generator's alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from testkit.http1_client import ConnectionPool, HttpConnection
from bench.load_requests import RUN_ID_PATTERN, GRPC_METHODS, PROTOCOLS, SCENARIOS, make_request_builder, signing
from bench.load_stats import cpu_seconds, latency_summary

DEFAULT_GRPC_CHANNELS = 4
DEFAULT_OPEN_LOOP_CONNECTIONS = 64
ERROR_SAMPLES_MAX = 5
EARLY_LAUNCH_S = 0.0006


# ------------------------------------------------------------------ the run


@dataclass
class LoadConfig:
    protocol: str
    target: str  # HOST:PORT (an http:// prefix is accepted)
    scenario: str
    accounts: int
    duration_s: float
    account_offset: int = 0
    warmup_s: float = 0.0
    concurrency: int | None = None  # closed loop
    rate: float | None = None  # open loop (requests per second)
    connections: int | None = None  # gRPC channels / REST connections
    timeout_s: float = 10.0
    max_inflight: int = 2000
    run_id: str = field(default_factory=lambda: os.urandom(6).hex())

    def validate(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}")
        if self.scenario not in SCENARIOS:
            raise ValueError(f"scenario must be one of {SCENARIOS}")
        if (self.concurrency is None) == (self.rate is None):
            raise ValueError("give exactly one of concurrency (closed loop) and rate (open loop)")
        if self.concurrency is not None and self.concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        if self.rate is not None and self.rate <= 0:
            raise ValueError("rate must be > 0")
        if self.accounts < 1 or self.account_offset < 0:
            raise ValueError("accounts must be >= 1 and account_offset >= 0")
        if self.duration_s <= 0 or self.warmup_s < 0:
            raise ValueError("duration must be > 0 and warmup >= 0")
        if self.connections is not None and self.connections < 1:
            raise ValueError("connections must be >= 1")
        if not RUN_ID_PATTERN.fullmatch(self.run_id):
            raise ValueError(f"run_id must be 1-64 of [A-Za-z0-9_.], got {self.run_id!r}")

    @property
    def mode(self) -> str:
        return "closed" if self.concurrency is not None else "open"

    def host_port(self) -> tuple[str, int]:
        target = self.target.split("://", 1)[-1].rstrip("/")
        host, _, port = target.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"target must be HOST:PORT, got {self.target!r}")
        return host.strip("[]"), int(port)

    def resolved_connections(self) -> int:
        if self.connections is not None:
            return self.connections
        if self.protocol == "grpc":
            return DEFAULT_GRPC_CHANNELS
        return self.concurrency if self.concurrency is not None else DEFAULT_OPEN_LOOP_CONNECTIONS


class _Recorder:
    __slots__ = ("latencies", "errors", "error_samples", "dropped")

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.errors = 0
        self.error_samples: list[str] = []
        self.dropped = 0

    def error(self, text: str) -> None:
        self.errors += 1
        if len(self.error_samples) < ERROR_SAMPLES_MAX and text not in self.error_samples:
            self.error_samples.append(text[:300])


async def _grpc_sender(cfg: LoadConfig, build: Callable[[], bytes]):
    import grpc

    # A comma-separated target list (one address per server worker) is spread evenly over
    # the channels, instead of leaving the split to the kernel's SO_REUSEPORT hashing.
    targets = [t.split("://", 1)[-1].rstrip("/") for t in cfg.target.split(",")]
    options = [("grpc.use_local_subchannel_pool", 1), ("grpc.enable_retries", 0)]
    channels = [
        grpc.aio.insecure_channel(targets[i % len(targets)], options=options) for i in range(cfg.resolved_connections())
    ]
    for channel in channels:
        await asyncio.wait_for(channel.channel_ready(), timeout=cfg.timeout_s)
    method = GRPC_METHODS[cfg.scenario]
    calls = [ch.unary_unary(method, request_serializer=None, response_deserializer=None) for ch in channels]
    count = len(calls)
    timeout = cfg.timeout_s
    rpc_error = grpc.aio.AioRpcError
    authorization = os.environ.get("BENCH_GRPC_AUTHORIZATION", "")  # a backend key (bench/stack.py)
    metadata = (("authorization", authorization),) if authorization else None

    async def send(slot: int) -> str | None:
        try:
            await calls[slot % count](build(), timeout=timeout, metadata=metadata)
        except rpc_error as exc:
            return f"{exc.code().name}: {exc.details()}"
        except Exception as exc:  # noqa: BLE001
            return repr(exc)
        return None

    async def close() -> None:
        for channel in channels:
            await channel.close()

    return send, close


async def _rest_sender(cfg: LoadConfig, build: Callable[[], bytes]):
    loop = asyncio.get_running_loop()
    host, port = cfg.host_port()
    conns = [HttpConnection(loop, host, port) for _ in range(cfg.resolved_connections())]
    await asyncio.gather(*(c.connect() for c in conns))
    pool = ConnectionPool(conns)
    acquire, release = pool.acquire, pool.release
    timeout = cfg.timeout_s

    async def watchdog() -> None:  # one timer for all requests instead of one per request
        while True:
            await asyncio.sleep(min(1.0, timeout / 4))
            now = time.perf_counter()
            for conn in conns:
                conn.timeout_check(now, timeout)

    dog = loop.create_task(watchdog())

    async def send(slot: int) -> str | None:
        conn = await acquire()
        try:
            return await conn.send(build())
        except Exception as exc:  # noqa: BLE001
            return repr(exc)
        finally:
            release(conn)

    async def close() -> None:
        dog.cancel()
        for conn in conns:
            if conn.transport is not None:
                conn.transport.close()

    return send, close


async def _closed_loop(send, concurrency: int, rec: _Recorder, measure_from: float, stop_at: float) -> None:
    clock = time.perf_counter
    latencies = rec.latencies

    async def worker(slot: int) -> None:
        while True:
            start = clock()
            if start >= stop_at:
                return
            error = await send(slot)
            if start >= measure_from:
                latencies.append(clock() - start)
                if error is not None:
                    rec.error(error)

    await asyncio.gather(*(worker(i) for i in range(concurrency)))


async def _open_loop(
    send, rate: float, max_inflight: int, rec: _Recorder, t0: float, measure_from: float, stop_at: float, drain_s: float
) -> None:
    loop = asyncio.get_running_loop()
    clock = time.perf_counter
    latencies = rec.latencies
    inflight = 0
    idle = asyncio.Event()
    idle.set()

    async def one(slot: int, due: float, measured: bool) -> None:
        nonlocal inflight
        try:
            error = await send(slot)
        finally:
            inflight -= 1
            if inflight == 0:
                idle.set()
        if measured:
            latencies.append(clock() - due)
            if error is not None:
                rec.error(error)

    interval = 1.0 / rate
    i = 0
    tasks = set()
    while True:
        now = clock()
        due = t0 + i * interval
        # uvloop timers have 1 ms resolution and run a sleep under 0.5 ms as call_soon (a busy
        # spin), so requests due within EARLY_LAUNCH_S are launched now. Latency is taken from
        # min(due, now): a late launch (timer lag, busy loop) counts against the server, an early
        # one is timed from its launch -- never from after it was sent.
        horizon = now + EARLY_LAUNCH_S
        while due <= horizon and due < stop_at:
            measured = due >= measure_from
            if inflight >= max_inflight:
                if measured:
                    rec.dropped += 1
            else:
                inflight += 1
                idle.clear()
                task = loop.create_task(one(i, due if due <= now else now, measured))
                tasks.add(task)  # keep a strong reference until done
                task.add_done_callback(tasks.discard)
            i += 1
            due = t0 + i * interval
        if due >= stop_at:
            break
        await asyncio.sleep(due - clock())
    try:
        await asyncio.wait_for(idle.wait(), timeout=drain_s)
    except asyncio.TimeoutError:
        for task in list(tasks):
            task.cancel()
        rec.error(f"{inflight} requests still in flight {drain_s:g}s after the end; cancelled")


async def run_load(cfg: LoadConfig) -> dict:
    """Runs one load test in this process and returns the result dict (see module doc)."""
    cfg.validate()
    host, port = cfg.host_port()
    build = make_request_builder(cfg.protocol, cfg.scenario, f"{host}:{port}", cfg.accounts, cfg.account_offset, cfg.run_id)
    key_id, secret = os.environ.get("BENCH_KEY_ID", ""), os.environ.get("BENCH_KEY_SECRET", "")
    if cfg.protocol == "rest" and key_id and secret:
        build = signing(build, key_id, secret)  # as a client must (README, "Signing requests")
    make_sender = _grpc_sender if cfg.protocol == "grpc" else _rest_sender
    send, close = await make_sender(cfg, build)
    rec = _Recorder()
    clock = time.perf_counter
    try:
        t0 = clock() + 0.01
        measure_from = t0 + cfg.warmup_s
        stop_at = measure_from + cfg.duration_s

        async def window() -> tuple[float, float]:
            await asyncio.sleep(max(0.0, measure_from - clock()))
            return cpu_seconds(), clock(), time.time()

        window_task = asyncio.ensure_future(window())
        if cfg.mode == "closed":
            await _closed_loop(send, cfg.concurrency, rec, measure_from, stop_at)
        else:
            await _open_loop(send, cfg.rate, cfg.max_inflight, rec, t0, measure_from, stop_at, cfg.timeout_s + 2.0)
        cpu_end, wall_end, unix_end = cpu_seconds(), clock(), time.time()
        cpu_start, wall_start, unix_start = await window_task
    finally:
        await close()

    requests = len(rec.latencies)
    duration = cfg.duration_s
    client_cpu = max(0.0, cpu_end - cpu_start)
    result = {
        "tool": "loadgen",
        "protocol": cfg.protocol,
        "scenario": cfg.scenario,
        "mode": cfg.mode,
        "concurrency": cfg.concurrency,
        "target_rate": cfg.rate,
        "connections": cfg.resolved_connections(),
        "accounts": cfg.accounts,
        "account_offset": cfg.account_offset,
        "requests": requests,
        "errors": rec.errors,
        "dropped": rec.dropped,
        "duration_s": round(duration, 3),
        "wall_s": round(wall_end - wall_start, 3),  # the window plus the drain of its last requests
        "rps": round(requests / duration, 1),
    }
    result.update(latency_summary(rec.latencies))
    result.update(
        {
            "client_cpu_s": round(client_cpu, 3),
            "client_cpu_per_request_us": round(client_cpu / requests * 1e6, 1) if requests else None,
            "client_cpu_utilization": round(client_cpu / max(wall_end - wall_start, 1e-9), 3),
            "warmup_s": cfg.warmup_s,
            # the measured window in wall-clock time, to line up server-side CPU samples with it
            "window_start_unix": round(unix_start, 3),
            "window_end_unix": round(unix_end, 3),
            "run_id": cfg.run_id,
            "error_samples": rec.error_samples,
        }
    )
    return result


def _runner() -> asyncio.Runner:
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.Runner()
    return asyncio.Runner(loop_factory=uvloop.new_event_loop)


def run(cfg: LoadConfig) -> dict:
    """run_load on a fresh uvloop event loop (blocks). client_cpu_s is this whole process's CPU."""
    with _runner() as runner:
        return runner.run(run_load(cfg))


def cli_args(cfg: LoadConfig) -> list[str]:
    args = [
        "--protocol", cfg.protocol, "--target", cfg.target, "--scenario", cfg.scenario,
        "--accounts", str(cfg.accounts), "--account-offset", str(cfg.account_offset),
        "--duration", str(cfg.duration_s), "--warmup", str(cfg.warmup_s),
        "--timeout", str(cfg.timeout_s), "--max-inflight", str(cfg.max_inflight), "--run-id", cfg.run_id,
    ]  # fmt: skip
    args += ["--concurrency", str(cfg.concurrency)] if cfg.concurrency is not None else ["--rate", str(cfg.rate)]
    if cfg.connections is not None:
        args += ["--connections", str(cfg.connections)]
    return args


def run_subprocess(cfg: LoadConfig, *, python: str = sys.executable, env: dict | None = None) -> dict:
    """Runs the CLI in its own process (so client_cpu_s is the generator's alone) and returns its result."""
    cfg.validate()
    root = Path(__file__).resolve().parents[1]
    child_env = dict(os.environ if env is None else env)
    child_env["PYTHONPATH"] = os.pathsep.join([str(root)] + ([child_env["PYTHONPATH"]] if child_env.get("PYTHONPATH") else []))
    with tempfile.TemporaryDirectory(prefix="loadgen-") as tmp:
        out = Path(tmp) / "result.json"
        proc = subprocess.run(
            [python, "-m", "bench.loadgen", *cli_args(cfg), "--out", str(out)],
            cwd=root, env=child_env, capture_output=True, text=True,
            timeout=cfg.warmup_s + cfg.duration_s + cfg.timeout_s + 60,
        )  # fmt: skip
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"loadgen failed (exit {proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
        return json.loads(out.read_text())


def parse_args(argv: list[str] | None = None) -> tuple[LoadConfig, str | None]:
    p = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__.split("\n\n")[0])
    p.add_argument("--protocol", choices=PROTOCOLS, required=True)
    p.add_argument("--target", required=True, help="HOST:PORT (gRPC server, or Envoy for rest)")
    p.add_argument("--scenario", choices=SCENARIOS, required=True)
    p.add_argument("--accounts", type=int, required=True, help="accounts are offset+1 .. offset+N")
    p.add_argument("--account-offset", type=int, default=0)
    p.add_argument("--duration", type=float, required=True, help="measured seconds")
    p.add_argument("--warmup", type=float, default=0.0, help="seconds of load before measuring")
    loop = p.add_mutually_exclusive_group(required=True)
    loop.add_argument("--concurrency", type=int, help="closed loop: this many requests in flight")
    loop.add_argument("--rate", type=float, help="open loop: requests per second on a fixed schedule")
    p.add_argument("--connections", type=int, help="gRPC channels (default 4) / REST connections "
                   f"(default: concurrency; open loop {DEFAULT_OPEN_LOOP_CONNECTIONS})")  # fmt: skip
    p.add_argument("--timeout", type=float, default=10.0, help="per-request timeout, seconds")
    p.add_argument("--max-inflight", type=int, default=2000, help="open loop: drop due requests beyond this")
    p.add_argument("--run-id", default=None, help="idempotency key prefix (default: random)")
    p.add_argument("--out", help="write the result JSON here (it is always printed on stdout too)")
    a = p.parse_args(argv)
    cfg = LoadConfig(
        protocol=a.protocol, target=a.target, scenario=a.scenario, accounts=a.accounts,
        account_offset=a.account_offset, duration_s=a.duration, warmup_s=a.warmup,
        concurrency=a.concurrency, rate=a.rate, connections=a.connections,
        timeout_s=a.timeout, max_inflight=a.max_inflight,
    )  # fmt: skip
    if a.run_id:
        cfg.run_id = a.run_id
    try:
        cfg.validate()
    except ValueError as exc:
        p.error(str(exc))
    return cfg, a.out


def main(argv: list[str] | None = None) -> int:
    cfg, out = parse_args(argv)
    result = run(cfg)
    text = json.dumps(result)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
