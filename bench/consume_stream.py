"""ConsumeStream under load (issue 24): `python -m bench.run --only stream --accounts 1000`.

A Python grpc.aio client (its own process: `python -m bench.consume_stream`, as bench/holds.py's
clients) opens `--streams` ConsumeStreams direct to a server process (bearer service key from
BENCH_GRPC_AUTHORIZATION, as bench/stack.py sets it) and pipelines on each: a writer keeps
`--pipeline` consumes unanswered (each {user: a random account of the dataset, build, 1 second,
a fresh idempotency key}), a reader counts the answers. Answers (consumes) per second over the
window, and every error answer counted; bench/run.py meters the server's CPU per consume and runs
pgbench's one-Consume-per-transaction baseline beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.load_requests import pb_bytes_field, pb_string_field, pb_varint_field
from bench.load_stats import cpu_seconds

CONSUME_STREAM = "/billing.v1.BillingService/ConsumeStream"
OPERATION, SECONDS = "build", 1
CHANNEL_STREAMS = 8  # streams per channel (one HTTP/2 connection each)


def stream_message(user_id: str, idempotency_key: str) -> bytes:
    """ConsumeStreamRequest{consume: ConsumeRequest{user_id, operation, seconds, idempotency_key}}."""
    consume = (pb_string_field(1, user_id) + pb_string_field(2, OPERATION) + pb_varint_field(3, SECONDS)
               + pb_string_field(4, idempotency_key))
    return pb_bytes_field(1, consume)


def _is_error_answer(answer: bytes) -> bool:
    """Whether a ConsumeStreamResponse carries `error` (field 4), found by walking its top-level
    fields (varints and length-delimited only) without decoding the message."""
    position = 0
    while position < len(answer):
        tag, position = _varint(answer, position)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            _, position = _varint(answer, position)
            continue
        length, position = _varint(answer, position)
        if number == 4:
            return True
        position += length
    return False


def _varint(data: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, position
        shift += 7


async def run_streams(
    target: str, accounts: int, duration_s: float, streams: int, pipeline: int, warmup_s: float = 0.0,
) -> dict:
    import grpc

    run_id = os.urandom(6).hex()
    authorization = os.environ.get("BENCH_GRPC_AUTHORIZATION", "")
    metadata = (("authorization", authorization),) if authorization else None
    channels = [grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
                for _ in range(-(-streams // CHANNEL_STREAMS))]
    clock, rand = time.perf_counter, random.Random().random
    measure_from = clock() + warmup_s
    stop_at = measure_from + duration_s
    counted = {"answers": 0, "errors": 0}
    window: dict[str, float] = {}
    error_samples: list[bytes] = []

    async def one_stream(number: int) -> None:
        call = channels[number // CHANNEL_STREAMS].stream_stream(
            CONSUME_STREAM, request_serializer=None, response_deserializer=None)(metadata=metadata, timeout=duration_s + warmup_s + 60)
        credit = asyncio.Semaphore(pipeline)

        async def write() -> None:
            sequence = 0
            while clock() < stop_at:
                await credit.acquire()
                sequence += 1
                await call.write(stream_message(str(1 + int(rand() * accounts)), f"{run_id}-{number}-{sequence}"))
            await call.done_writing()

        writer = asyncio.ensure_future(write())
        async for answer in call:
            credit.release()
            now = clock()
            if measure_from <= now < stop_at:
                if not window:
                    window.update(cpu=cpu_seconds(), wall=now)
                counted["answers"] += 1
                if _is_error_answer(answer):
                    counted["errors"] += 1
                    if len(error_samples) < 5:
                        error_samples.append(answer)
        await writer

    try:
        await asyncio.gather(*(one_stream(n) for n in range(streams)))
        client_cpu = cpu_seconds() - window.get("cpu", cpu_seconds())
    finally:
        for channel in channels:
            await channel.close()
    requests = counted["answers"]
    return {
        "tool": "bench.consume_stream", "protocol": "grpc", "scenario": "consume_stream", "mode": "pipelined",
        "streams": streams, "pipeline": pipeline, "concurrency": streams * pipeline, "accounts": accounts,
        "requests": requests, "errors": counted["errors"], "dropped": 0, "duration_s": duration_s,
        "rps": round(requests / duration_s, 1), "client_cpu_s": round(client_cpu, 3),
        "client_cpu_per_request_us": round(client_cpu / requests * 1e6, 1) if requests else None,
        "error_samples": [sample.hex()[:200] for sample in error_samples],
    }


def streams_subprocess(target: str, accounts: int, duration_s: float, streams: int, pipeline: int) -> dict:
    """run_streams in its own process: its client CPU is its own, its event loop not the bench's."""
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(root)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    with tempfile.TemporaryDirectory(prefix="bench-stream-") as tmp:
        out = Path(tmp) / "result.json"
        proc = subprocess.run(
            [sys.executable, "-m", "bench.consume_stream", "--target", target, "--accounts", str(accounts),
             "--duration", str(duration_s), "--streams", str(streams), "--pipeline", str(pipeline), "--out", str(out)],
            cwd=root, env=env, capture_output=True, text=True, timeout=duration_s + 120,
        )
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"bench.consume_stream failed (exit {proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
        return json.loads(out.read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.consume_stream")
    parser.add_argument("--target", required=True, help="HOST:PORT of a server process")
    parser.add_argument("--accounts", type=int, required=True, help="accounts 1..N of the dataset")
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--pipeline", type=int, default=128, help="unanswered consumes per stream")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    try:
        import uvloop
        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:  # pragma: no cover
        runner = asyncio.Runner()
    with runner:
        result = runner.run(run_streams(args.target, args.accounts, args.duration, args.streams, args.pipeline))
    Path(args.out).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
