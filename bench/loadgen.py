"""A lean asyncio load generator for billing.v1.BillingService, over gRPC or REST (Envoy).

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
import collections
import json
import math
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

SCENARIOS = ("consume", "balance", "batch", "single_check")
PROTOCOLS = ("grpc", "rest")
BATCH_SIZE = 50
BATCH_OPERATIONS = ("build", "plan", "export", "metadata_generation")
CONSUME_OPERATION = "build"
CONSUME_SECONDS = 1
ESTIMATE_SECONDS = 1

SERVICE = "/billing.v1.BillingService/"
GRPC_METHODS = {
    "consume": SERVICE + "Consume",
    "balance": SERVICE + "GetBalance",
    "batch": SERVICE + "CheckSufficientBatch",
    "single_check": SERVICE + "CheckSufficientBatch",
}
REST_PATHS = {
    "consume": "/v1/billing/consume",
    "balance": "/v1/billing/balance/",  # + user_id
    "batch": "/v1/billing/check-sufficient-batch",
    "single_check": "/v1/billing/check-sufficient-batch",
}
DEFAULT_GRPC_CHANNELS = 4
DEFAULT_OPEN_LOOP_CONNECTIONS = 64
MAX_ERROR_SAMPLES = 5
EARLY_LAUNCH_S = 0.0006
_RUN_ID = re.compile(r"[A-Za-z0-9_.]{1,64}")  # goes verbatim into JSON and protobuf keys
PERCENTILES = (("p50_ms", 50.0), ("p90_ms", 90.0), ("p99_ms", 99.0), ("p999_ms", 99.9))


# ------------------------------------------------------------------ pure parts: statistics


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of an ascending sequence; 0.0 when empty.

    The smallest value with at least q% of the values <= it: p50 of 1..100 is 50, p99.9 is 100.
    """
    n = len(sorted_values)
    if n == 0:
        return 0.0
    if q <= 0:
        return sorted_values[0]
    rank = math.ceil(q / 100.0 * n - 1e-9)  # 1-based; the epsilon keeps 99.9% of 1000 at 999
    return sorted_values[min(max(rank, 1), n) - 1]


def latency_summary(latencies_s: list[float]) -> dict[str, float]:
    """p50/p90/p99/p99.9/max in milliseconds (rounded to µs) of latencies in seconds; sorts in place."""
    latencies_s.sort()
    out = {name: round(percentile(latencies_s, q) * 1000.0, 3) for name, q in PERCENTILES}
    out["max_ms"] = round((latencies_s[-1] if latencies_s else 0.0) * 1000.0, 3)
    return out


def cpu_seconds() -> float:
    """user+sys CPU of this process (all threads) so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# ------------------------------------------------------------------ pure parts: request bodies


def batch_operations(count: int) -> list[tuple[str, int]]:
    """(operation, estimate_seconds) pairs cycling build/plan/export/metadata_generation."""
    return [(BATCH_OPERATIONS[i % len(BATCH_OPERATIONS)], ESTIMATE_SECONDS) for i in range(count)]


def scenario_operations(scenario: str) -> int:
    return {"batch": BATCH_SIZE, "single_check": 1}.get(scenario, 0)


def consume_json(user_id: str, idempotency_key: str) -> bytes:
    return json.dumps(
        {"user_id": user_id, "operation": CONSUME_OPERATION, "seconds": CONSUME_SECONDS, "idempotency_key": idempotency_key},
        separators=(",", ":"),
    ).encode()


def batch_json(user_id: str, count: int) -> bytes:
    operations = [{"operation": op, "estimate_seconds": s} for op, s in batch_operations(count)]
    return json.dumps({"userId": user_id, "operations": operations}, separators=(",", ":")).encode()


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # int32/int64 negatives are 10-byte varints
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def pb_bytes_field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (string, bytes or embedded message)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def pb_string_field(number: int, value: str) -> bytes:
    return pb_bytes_field(number, value.encode()) if value else b""  # proto3: "" is not written


def pb_varint_field(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value) if value else b""  # proto3: 0 is not written


def grpc_balance_request(user_id: str) -> bytes:
    """GetBalanceRequest{user_id}."""
    return pb_string_field(1, user_id)


def grpc_consume_request(user_id: str, idempotency_key: str) -> bytes:
    """ConsumeRequest{user_id, operation, seconds, idempotency_key}."""
    return (
        pb_string_field(1, user_id)
        + pb_string_field(2, CONSUME_OPERATION)
        + pb_varint_field(3, CONSUME_SECONDS)
        + pb_string_field(4, idempotency_key)
    )


def grpc_batch_request(user_id: str, count: int) -> bytes:
    """CheckSufficientBatchRequest{user_id, operations=[OperationEstimate{operation, estimate_seconds}...]}."""
    ops = b"".join(
        pb_bytes_field(2, pb_string_field(1, op) + pb_varint_field(2, s)) for op, s in batch_operations(count)
    )
    return pb_string_field(1, user_id) + ops


def grpc_request(scenario: str, user_id: str, idempotency_key: str = "") -> bytes:
    if scenario == "consume":
        return grpc_consume_request(user_id, idempotency_key)
    if scenario == "balance":
        return grpc_balance_request(user_id)
    return grpc_batch_request(user_id, scenario_operations(scenario))


def rest_request(scenario: str, host: str, user_id: str, idempotency_key: str = "") -> bytes:
    """The whole HTTP/1.1 request (head + body) the REST client sends."""
    if scenario == "balance":
        return f"GET {REST_PATHS['balance']}{user_id} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    body = consume_json(user_id, idempotency_key) if scenario == "consume" else batch_json(user_id, scenario_operations(scenario))
    head = (
        f"POST {REST_PATHS[scenario]} HTTP/1.1\r\nHost: {host}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def make_request_builder(
    protocol: str, scenario: str, host: str, accounts: int, offset: int, run_id: str, *, rng: random.Random | None = None
) -> Callable[[], bytes]:
    """A zero-argument function returning the next request's bytes (random account, fresh key).

    Same bytes as grpc_request / rest_request, from parts prebuilt once: the per-request work is a
    random number, an int->str, a counter and two or three bytes concatenations.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    if scenario not in SCENARIOS:
        raise ValueError(f"scenario must be one of {SCENARIOS}, got {scenario!r}")
    if accounts < 1:
        raise ValueError("accounts must be >= 1")
    if not _RUN_ID.fullmatch(run_id):
        raise ValueError(f"run_id must be 1-64 of [A-Za-z0-9_.], got {run_id!r}")
    rand = (rng or random.Random()).random
    base = offset + 1
    key_prefix = f"{run_id}-"
    counter = iter(range(1, 1 << 62)).__next__

    if protocol == "grpc":
        if scenario == "balance":

            def build() -> bytes:
                uid = str(base + int(rand() * accounts)).encode()
                return b"\x0a" + bytes((len(uid),)) + uid

        elif scenario == "consume":
            middle = pb_string_field(2, CONSUME_OPERATION) + pb_varint_field(3, CONSUME_SECONDS) + b"\x22"

            def build() -> bytes:
                uid = str(base + int(rand() * accounts)).encode()
                key = (key_prefix + str(counter())).encode()
                return b"\x0a" + bytes((len(uid),)) + uid + middle + bytes((len(key),)) + key

        else:
            tail = grpc_batch_request("", scenario_operations(scenario))  # user_id "" is not written

            def build() -> bytes:
                uid = str(base + int(rand() * accounts)).encode()
                return b"\x0a" + bytes((len(uid),)) + uid + tail

        if len(str(offset + accounts)) > 127 or len(key_prefix) > 100:
            raise ValueError("user ids and run ids must be short (single-byte protobuf lengths)")
        return build

    if scenario == "balance":
        head = f"GET {REST_PATHS['balance']}".encode()
        tail = f" HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()

        def build() -> bytes:
            return head + str(base + int(rand() * accounts)).encode() + tail

        return build

    head = f"POST {REST_PATHS[scenario]} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: ".encode()
    if scenario == "consume":
        a, b = b'\r\n\r\n{"user_id":"', (
            f'","operation":"{CONSUME_OPERATION}","seconds":{CONSUME_SECONDS},"idempotency_key":"{key_prefix}'
        ).encode()
        fixed = len('{"user_id":"') + len(b) + len('"}')

        def build() -> bytes:
            uid = str(base + int(rand() * accounts)).encode()
            n = str(counter()).encode()
            return head + str(fixed + len(uid) + len(n)).encode() + a + uid + b + n + b'"}'

        return build

    sample = batch_json("", scenario_operations(scenario))  # {"userId":"","operations":[...]}
    a, b = b'\r\n\r\n{"userId":"', sample[len(b'{"userId":"') :]
    fixed = len(sample)

    def build() -> bytes:
        uid = str(base + int(rand() * accounts)).encode()
        return head + str(fixed + len(uid)).encode() + a + uid + b

    return build


# ------------------------------------------------------------------ pure parts: HTTP/1.1 responses


class ProtocolError(Exception):
    pass


def parse_http_response(buf: bytes | bytearray) -> tuple[int, bytes, int, bool] | None:
    """Parses one HTTP/1.1 response at the start of buf.

    Returns None while incomplete, else (status, body, bytes consumed, keep_alive).
    Content-Length and chunked framing; 1xx/204/304 have no body. A response framed by
    connection close is not supported (ProtocolError) -- Envoy always frames its replies.
    """
    end_of_head = buf.find(b"\r\n\r\n")
    if end_of_head < 0:
        if len(buf) > 65536:
            raise ProtocolError("response head larger than 64 KiB")
        return None
    if buf[:5] != b"HTTP/" or len(buf) < 12:
        raise ProtocolError(f"not an HTTP response: {bytes(buf[:40])!r}")
    try:
        status = int(buf[9:12])
    except ValueError:
        raise ProtocolError(f"bad status line: {bytes(buf[:40])!r}") from None
    head = bytes(buf[:end_of_head]).lower()
    keep_alive = b"\r\nconnection: close" not in head and not head.startswith(b"http/1.0")
    start = end_of_head + 4
    i = head.find(b"\r\ncontent-length:")
    if i >= 0:
        j = head.find(b"\r\n", i + 17)
        length = int(head[i + 17 : j if j >= 0 else len(head)])
        end = start + length
        if len(buf) < end:
            return None
        return status, bytes(buf[start:end]), end, keep_alive
    if b"\r\ntransfer-encoding: chunked" in head:
        chunks = []
        pos = start
        while True:
            line_end = buf.find(b"\r\n", pos)
            if line_end < 0:
                return None
            size = int(bytes(buf[pos:line_end]).split(b";", 1)[0], 16)
            if size == 0:
                trailers_end = buf.find(b"\r\n\r\n", line_end)
                if trailers_end == line_end:  # no trailers: "0\r\n\r\n"
                    return status, b"".join(chunks), line_end + 4, keep_alive
                if trailers_end < 0:
                    return None
                return status, b"".join(chunks), trailers_end + 4, keep_alive
            data_end = line_end + 2 + size
            if len(buf) < data_end + 2:
                return None
            chunks.append(bytes(buf[line_end + 2 : data_end]))
            pos = data_end + 2
    if 100 <= status < 200 or status in (204, 304):
        return status, b"", start, keep_alive
    raise ProtocolError(f"HTTP {status} response without Content-Length or chunked framing")


# ------------------------------------------------------------------ REST client


class HttpConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request at a time (no pipelining)."""

    __slots__ = ("loop", "host", "port", "transport", "buf", "waiter", "sent_at", "usable")

    def __init__(self, loop: asyncio.AbstractEventLoop, host: str, port: int) -> None:
        self.loop = loop
        self.host = host
        self.port = port
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future | None = None
        self.sent_at = 0.0
        self.usable = False

    async def connect(self) -> None:
        self.buf.clear()
        await self.loop.create_connection(lambda: self, self.host, self.port)

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport
        self.usable = True

    def connection_lost(self, exc) -> None:
        self.transport = None
        self.usable = False
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionError(f"connection lost: {exc!r}" if exc else "connection closed by peer"))

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        if buf:
            buf += data
            data = buf
        try:
            parsed = parse_http_response(data)
        except Exception as exc:  # noqa: BLE001 -- a broken reply fails this request and the connection
            self._fail(ProtocolError(str(exc)))
            return
        if parsed is None:
            if data is not buf:
                buf += data
            return
        status, body, used, keep_alive = parsed
        if data is buf:
            del buf[:used]
        elif used < len(data):
            buf += data[used:]
        if buf:  # a reply must never arrive unasked (no pipelining)
            self._fail(ProtocolError(f"unexpected bytes after a response: {bytes(buf[:40])!r}"))
            return
        if not keep_alive:
            self.usable = False
            if self.transport is not None:
                self.transport.close()
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None if status == 200 else f"HTTP {status} {body[:200].decode(errors='replace')}")

    def _fail(self, exc: Exception) -> None:
        self.usable = False
        waiter, self.waiter = self.waiter, None
        if self.transport is not None:
            self.transport.abort()
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def timeout_check(self, now: float, timeout: float) -> None:
        if self.waiter is not None and now - self.sent_at > timeout:
            self._fail(TimeoutError(f"no response within {timeout:g}s"))

    async def send(self, request: bytes) -> str | None:
        """Sends one request; None on HTTP 200, else an error text (raises on transport errors)."""
        if not self.usable:
            await self.connect()
        waiter = self.waiter = self.loop.create_future()
        self.sent_at = time.perf_counter()
        self.transport.write(request)
        return await waiter


class ConnectionPool:
    """Idle connections in a list, waiting requesters in a deque; acquire is O(1)."""

    def __init__(self, connections: list[HttpConnection]) -> None:
        self.all = connections
        self.idle = list(connections)
        self.waiters: collections.deque[asyncio.Future] = collections.deque()

    async def acquire(self) -> HttpConnection:
        if self.idle:
            return self.idle.pop()
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        return await waiter

    def release(self, conn: HttpConnection) -> None:
        waiters = self.waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self.idle.append(conn)


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
        if not _RUN_ID.fullmatch(self.run_id):
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
        if len(self.error_samples) < MAX_ERROR_SAMPLES and text not in self.error_samples:
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

    async def send(slot: int) -> str | None:
        try:
            await calls[slot % count](build(), timeout=timeout)
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
    paths = [str(root), str(root / "src"), str(root / "gen")]
    child_env["PYTHONPATH"] = os.pathsep.join(paths + ([child_env["PYTHONPATH"]] if child_env.get("PYTHONPATH") else []))
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
