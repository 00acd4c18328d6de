"""Holds and metered sessions under load (issue 21): what a hold cycle costs beside a Consume, and
what 2,000 metered sessions reporting every second cost the server and the database.

`python -m bench.run --only holds --accounts 1000`: on one stack, gRPC Consume and hold cycles,
back to back, both from this Python asyncio client (the same concurrency, the same channels), so
the ratio is not the client's: a hold cycle is CreateHold{seconds: HOLD_SECONDS} then
CommitHold{used_seconds: USED_SECONDS, final: true} of the same hold, one after the other, on a
random account of the dataset. Server CPU per cycle is metered as the bench meters it per Consume
(bench/run.py `measure`: the server's and Envoy's processes, user+sys, over the window).

`python -m bench.run --only sessions --accounts 1000`: `sessions` MeterSession streams (direct
gRPC to the server, CHANNEL_STREAMS streams per channel, bearer service key), block_seconds
BLOCK_SECONDS, each reporting its elapsed seconds every second. They are opened first (not
metered), then, over `window` seconds: the server processes' CPU in cores, PostgreSQL's, and the
database's writes: committed transactions (pg_stat_database.xact_commit of the bench's database,
less this module's own sampling queries: the figure judged against the target) and rows written
(n_tup_ins + n_tup_upd + n_tup_del of its tables, per table). The clients also count the answers
whose committed or held seconds moved: the persists the server says it made. Then every session
sends `done` and settles.

Both run in their own process (`python -m bench.holds cycles|sessions ...`), as the load
generators do: their client CPU is theirs alone, and their gRPC event loop is not the bench's.
The database URL of `sessions` comes in the environment (BENCH_SESSIONS_DATABASE_URL): an
argument shows in ps.
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

from bench.load_requests import RUN_ID_PATTERN, pb_string_field, pb_varint_field
from bench.load_stats import cpu_seconds, latency_summary

SERVICE = "/billing.v1.BillingService/"
CREATE_HOLD, COMMIT_HOLD, CONSUME = SERVICE + "CreateHold", SERVICE + "CommitHold", SERVICE + "Consume"
METER_SESSION = SERVICE + "MeterSession"
OPERATION = "build"
HOLD_SECONDS = 5  # held by each cycle's CreateHold
USED_SECONDS = 1  # committed by its final CommitHold: what a Consume of the bench takes
CHANNELS = 4
CHANNEL_STREAMS = 250
OPEN_BATCH = 50
# Sessions open evenly over one persist period (10 s), as independent work would start: their
# persists then spread evenly over time instead of coming in one burst every 10 s, which also keeps
# the write counters honest (a backend reports its counts up to seconds late, so a burst at either
# end of the window could fall in or out of it).
OPEN_SPREAD_S = 10.0
BLOCK_SECONDS = 60
REPORT_EVERY_S = 1.0
SETTLE_S = 3.0  # after the last stream opened, before the window: the opening writes are not metered
DATABASE_URL_VARIABLE = "BENCH_SESSIONS_DATABASE_URL"
SESSIONS_TARGET_CORES = 0.5
SESSIONS_TARGET_WRITES = 300.0


# ------------------------------------------------------------------ request bytes


def create_hold_request(user_id: str, hold_id: str, seconds: int = HOLD_SECONDS) -> bytes:
    """CreateHoldRequest{user_id, hold_id, operation, seconds} (ttl: the server's default)."""
    return pb_string_field(1, user_id) + pb_string_field(2, hold_id) + pb_string_field(3, OPERATION) + pb_varint_field(4, seconds)


def commit_hold_request(user_id: str, hold_id: str, used_seconds: int = USED_SECONDS, final: bool = True) -> bytes:
    """CommitHoldRequest{user_id, hold_id, used_seconds, final}."""
    return pb_string_field(1, user_id) + pb_string_field(2, hold_id) + pb_varint_field(3, used_seconds) + pb_varint_field(4, int(final))


def consume_request(user_id: str, idempotency_key: str) -> bytes:
    """ConsumeRequest{user_id, operation, seconds: USED_SECONDS, idempotency_key}."""
    return pb_string_field(1, user_id) + pb_string_field(2, OPERATION) + pb_varint_field(3, USED_SECONDS) + pb_string_field(4, idempotency_key)


def session_accounts(sessions: int, accounts: int) -> list[str]:
    """The account of each session: 1, 2, ... wrapping around the dataset (two sessions an
    account when there are 2,000 sessions on the 1k dataset; at most 100 an account, the open
    holds' limit)."""
    if sessions > 100 * accounts:
        raise ValueError(f"{sessions} sessions over {accounts} accounts passes 100 open holds an account")
    return [str(1 + n % accounts) for n in range(sessions)]


def seconds_needed(sessions: int, accounts: int, window_s: float, block_seconds: int = BLOCK_SECONDS) -> int:
    """The balance the busiest account needs: each of its sessions runs the opening, the settle
    and the window (rounded up), and holds up to two blocks past what it reported."""
    per_account = -(-sessions // accounts)
    return per_account * (int(window_s + SETTLE_S) + 60 + 2 * block_seconds)


# ------------------------------------------------------------------ hold cycles (closed loop)


def _metadata() -> tuple | None:
    authorization = os.environ.get("BENCH_GRPC_AUTHORIZATION", "")  # a service key (bench/stack.py)
    return (("authorization", authorization),) if authorization else None


async def _channels(target: str, count: int, timeout: float = 10.0) -> list:
    import grpc

    options = [("grpc.use_local_subchannel_pool", 1), ("grpc.enable_retries", 0)]
    channels = [grpc.aio.insecure_channel(target, options=options) for _ in range(count)]
    for channel in channels:
        await asyncio.wait_for(channel.channel_ready(), timeout=timeout)
    return channels


async def run_cycles(
    target: str, scenario: str, accounts: int, duration_s: float, concurrency: int, warmup_s: float = 0.0,
    run_id: str | None = None,
) -> dict:
    """Closed loop: `concurrency` workers, each starting its next hold cycle (or Consume) when the
    previous one answered. A cycle's latency is from its CreateHold's send to its CommitHold's answer."""
    import grpc

    if scenario not in ("hold_cycle", "consume"):
        raise ValueError("scenario must be hold_cycle or consume")
    run_id = run_id or os.urandom(6).hex()
    if not RUN_ID_PATTERN.fullmatch(run_id):
        raise ValueError(f"run_id must be 1-64 of [A-Za-z0-9_.], got {run_id!r}")
    channels = await _channels(target, CHANNELS)
    create = [c.unary_unary(CREATE_HOLD, request_serializer=None, response_deserializer=None) for c in channels]
    commit = [c.unary_unary(COMMIT_HOLD, request_serializer=None, response_deserializer=None) for c in channels]
    consume = [c.unary_unary(CONSUME, request_serializer=None, response_deserializer=None) for c in channels]
    metadata = _metadata()
    rand = random.Random().random
    counter = iter(range(1, 1 << 62)).__next__
    latencies: list[float] = []
    errors: list[str] = []
    clock = time.perf_counter

    async def one(slot: int) -> str | None:
        user, key = str(1 + int(rand() * accounts)), f"{run_id}-{counter()}"
        channel = slot % len(channels)
        try:
            if scenario == "consume":
                await consume[channel](consume_request(user, key), timeout=10.0, metadata=metadata)
            else:
                await create[channel](create_hold_request(user, key), timeout=10.0, metadata=metadata)
                await commit[channel](commit_hold_request(user, key), timeout=10.0, metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            return f"{exc.code().name}: {exc.details()}"
        return None

    measure_from = clock() + warmup_s
    stop_at = measure_from + duration_s
    window: dict[str, float] = {}

    async def worker(slot: int) -> None:
        while (start := clock()) < stop_at:
            if start >= measure_from and not window:
                window.update(cpu=cpu_seconds(), wall=start)
            error = await one(slot)
            if start >= measure_from:
                latencies.append(clock() - start)
                if error is not None and len(errors) < 1000:
                    errors.append(error)

    try:
        await asyncio.gather(*(worker(slot) for slot in range(concurrency)))
        client_cpu = cpu_seconds() - window.get("cpu", cpu_seconds())
    finally:
        for channel in channels:
            await channel.close()
    requests = len(latencies)
    return {
        "tool": "bench.holds", "protocol": "grpc", "scenario": scenario, "mode": "closed", "concurrency": concurrency,
        "connections": CHANNELS, "accounts": accounts, "requests": requests, "errors": len(errors),
        "dropped": 0, "duration_s": duration_s, "rps": round(requests / duration_s, 1),
        **latency_summary(latencies),
        "client_cpu_s": round(client_cpu, 3),
        "client_cpu_per_request_us": round(client_cpu / requests * 1e6, 1) if requests else None,
        "error_samples": sorted(set(errors))[:5],
        "calls_per_request": 2 if scenario == "hold_cycle" else 1,
    }


def cycles_subprocess(target: str, scenario: str, accounts: int, duration_s: float, concurrency: int) -> dict:
    """run_cycles in its own process (`python -m bench.holds cycles`): its client CPU is its own."""
    args = ["cycles", "--target", target, "--scenario", scenario, "--accounts", str(accounts),
            "--duration", str(duration_s), "--concurrency", str(concurrency)]  # fmt: skip
    return _subprocess(args, timeout=duration_s + 60)


# ------------------------------------------------------------------ metered sessions


class SessionStreams:
    """MeterSession streams over a few channels; counts their answers and the persists they show."""

    def __init__(self, target: str, block_seconds: int, run_id: str):
        self.target, self.block_seconds, self.run_id = target, block_seconds, run_id
        self.channels: list = []
        self.calls: list = []
        self.answers = 0
        self.persists = 0  # answers whose committed or held seconds moved: a write of the server
        self.errors: list[str] = []
        self.report_lag_s: list[float] = []  # send to answer of each report in the window
        self.metering = False
        self.stop = asyncio.Event()  # set: each stream sends `done` within done_spread_s
        self.done_spread_s = OPEN_SPREAD_S

    def _channel(self):
        import grpc

        if not self.channels or len(self.calls) >= len(self.channels) * CHANNEL_STREAMS:
            self.channels.append(grpc.aio.insecure_channel(self.target, options=[("grpc.use_local_subchannel_pool", 1)]))
        return self.channels[-1]

    async def open(self, number: int, account_id: str) -> tuple:
        from billing.v1 import metered_sessions_pb2 as pb

        stream = self._channel().stream_stream(
            METER_SESSION, request_serializer=pb.MeterSessionRequest.SerializeToString,
            response_deserializer=pb.MeterSessionResponse.FromString)
        call = stream(metadata=_metadata())
        self.calls.append(call)
        await call.write(pb.MeterSessionRequest(open=pb.MeterSessionOpen(
            user_id=account_id, session_id=f"{self.run_id}-{number}", operation=OPERATION, block_seconds=self.block_seconds)))
        answer = await call.read()
        if answer.held_seconds <= 0:
            raise RuntimeError(f"session {number} opened with nothing held: {answer}")
        return call, time.monotonic(), (answer.committed_seconds, answer.held_seconds)

    async def run(self, call, opened_at: float, last: tuple) -> None:
        """Reports the elapsed seconds since it opened, every REPORT_EVERY_S, until told to stop;
        then `done` (settles at its last elapsed)."""
        from billing.v1 import metered_sessions_pb2 as pb

        clock = time.monotonic
        elapsed, phase = 0, "report"
        try:
            while not self.stop.is_set():
                elapsed += 1
                delay = opened_at + elapsed * REPORT_EVERY_S - clock()
                if delay > 0:
                    await asyncio.sleep(delay)
                if self.stop.is_set():
                    elapsed -= 1
                    break
                sent = clock()
                await call.write(pb.MeterSessionRequest(report=pb.MeterSessionReport(elapsed_seconds=elapsed)))
                answer = await call.read()
                self.answers += 1
                now = (answer.committed_seconds, answer.held_seconds)
                if self.metering:
                    self.report_lag_s.append(clock() - sent)
                    if now != last:
                        self.persists += 1
                last = now
                if answer.HasField("exhausted"):
                    raise RuntimeError(f"session exhausted at {elapsed} s: the accounts need more balance")
            phase = "done"
            # Each stream settles at its own instant in the next spread: the end does not come as
            # one burst of 2,000 final commits (real sessions do not end together either).
            await asyncio.sleep(self.done_spread_s * random.random())
            await call.write(pb.MeterSessionRequest(done=pb.MeterSessionDone(elapsed_seconds=elapsed)))
            settled = await call.read()
            await call.done_writing()
            if not settled.settled:
                raise RuntimeError(f"done did not settle: {settled}")
        except Exception as exc:  # noqa: BLE001
            import grpc

            said = f"{exc.code().name}: {exc.details()}" if isinstance(exc, grpc.aio.AioRpcError) else repr(exc)
            self.errors.append(f"{phase}{' (in the window)' if self.metering else ''}: {said}"[:300])

    async def close(self) -> None:
        for channel in self.channels:
            await channel.close()


WRITES_SQL = """
SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint,
       (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()),
       coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint,
       coalesce(json_object_agg(relname, n_tup_ins + n_tup_upd + n_tup_del)
                FILTER (WHERE n_tup_ins + n_tup_upd + n_tup_del > 0), '{}')
FROM pg_stat_user_tables
"""


def database_writes(connection) -> tuple[int, int, int, dict[str, int]]:
    """(the next transaction id, committed transactions, rows written, rows written per table).

    The next transaction id moves by one for each transaction that writes (a read-only one gets
    no id): its delta is the write transactions of the whole PostgreSQL, exactly and at once
    (nothing else writes during the window but autovacuum's ANALYZE, now and then). The other
    figures are the bench database's statistics, which its backends report up to a second or
    so late (at most every second while busy): over a minute, off by about a second's worth.
    xact_commit counts read-only transactions too. Taken after pg_stat_clear_snapshot, so fresh."""
    connection.execute("SELECT pg_stat_clear_snapshot()")
    next_xid, commits, rows, per_table = connection.execute(WRITES_SQL).fetchone()
    return int(next_xid), int(commits), int(rows), {k: int(v) for k, v in (per_table or {}).items()}


def _cpu(pids: list[int]) -> float:
    import psutil

    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def _postgres_pids() -> list[int]:
    import psutil

    return [p.pid for p in psutil.process_iter(["name"]) if p.info["name"] == "postgres"]


def min_balance(connection, account_ids: list[str]) -> int:
    row = connection.execute(
        "SELECT min(total) FROM (SELECT account_id, sum(remaining_seconds - held_seconds) AS total FROM buckets "
        "WHERE account_id = ANY(%s) AND (expires_at IS NULL OR expires_at > now()) GROUP BY account_id) AS t",
        (list(set(account_ids)),),
    ).fetchone()
    return int(row[0] or 0)


async def run_sessions(
    target: str, server_pids: list[int], database_url: str, sessions: int, accounts: int, window_s: float,
    block_seconds: int = BLOCK_SECONDS,
) -> dict:
    import psycopg

    from billing.settings import libpq_url

    account_ids = session_accounts(sessions, accounts)
    database = psycopg.connect(libpq_url(database_url), autocommit=True)
    needed, available = seconds_needed(sessions, accounts, window_s, block_seconds), min_balance(database, account_ids)
    if available < needed:
        raise RuntimeError(f"an account of the sessions has {available} s, under the {needed} s the window needs")
    streams = SessionStreams(target, block_seconds, os.urandom(6).hex())
    started = time.perf_counter()
    tasks = []
    batches = range(0, sessions, OPEN_BATCH)
    for number, start in enumerate(batches):
        await asyncio.sleep(max(0.0, started + number * OPEN_SPREAD_S / len(batches) - time.perf_counter()))
        opened = await asyncio.gather(*(streams.open(n, account_ids[n]) for n in range(start, min(sessions, start + OPEN_BATCH))))
        tasks += [asyncio.ensure_future(streams.run(*session)) for session in opened]  # each reports from its opening
    open_seconds = time.perf_counter() - started
    await asyncio.sleep(SETTLE_S)
    postgres = _postgres_pids()
    writes_before, server_before, pg_before = database_writes(database), _cpu(server_pids), _cpu(postgres)
    client_before, window_start = cpu_seconds(), time.monotonic()
    streams.metering = True
    await asyncio.sleep(window_s)
    streams.metering = False
    window = time.monotonic() - window_start
    server_cpu, pg_cpu, client_cpu = _cpu(server_pids) - server_before, _cpu(postgres) - pg_before, cpu_seconds() - client_before
    writes_after = database_writes(database)
    streams.stop.set()
    await asyncio.gather(*tasks)
    await streams.close()
    database.close()
    write_transactions = writes_after[0] - writes_before[0]
    commits = writes_after[1] - writes_before[1] - 2  # the first sample's query, the second's clear_snapshot
    rows = writes_after[2] - writes_before[2]
    per_table = {t: n - writes_before[3].get(t, 0) for t, n in writes_after[3].items() if n - writes_before[3].get(t, 0)}
    lag = latency_summary(streams.report_lag_s)
    return {
        "sessions": sessions, "accounts": accounts, "sessions_per_account": -(-sessions // accounts),
        "block_seconds": block_seconds, "report_every_s": REPORT_EVERY_S, "window_s": round(window, 1),
        "open_seconds": round(open_seconds, 2), "channels": len(streams.channels),
        "reports_per_s": round(len(streams.report_lag_s) / window, 1),
        "server_cores": round(server_cpu / window, 3), "postgres_cores": round(pg_cpu / window, 3),
        "client_cores": round(client_cpu / window, 3),
        "server_cpu_per_report_us": round(server_cpu / max(1, len(streams.report_lag_s)) * 1e6, 1),
        "db_write_transactions_per_s": round(write_transactions / window, 1),
        "db_commits_per_s": round(commits / window, 1), "db_rows_written_per_s": round(rows / window, 1),
        "db_rows_written_per_s_by_table": {t: round(n / window, 1) for t, n in sorted(per_table.items())},
        "persists_seen_per_s": round(streams.persists / window, 1),
        "report_p50_ms": lag["p50_ms"], "report_p99_ms": lag["p99_ms"], "report_max_ms": lag["max_ms"],
        "errors": len(streams.errors), "errors_in_window": sum("in the window" in e for e in streams.errors),
        "error_samples": sorted(set(streams.errors))[:5],
        "target_server_cores": SESSIONS_TARGET_CORES, "target_db_writes_per_s": SESSIONS_TARGET_WRITES,
    }


def sessions_subprocess(
    target: str, server_pids: list[int], database_url: str, sessions: int, accounts: int, window_s: float,
) -> dict:
    args = ["sessions", "--target", target, "--server-pids", ",".join(map(str, server_pids)),
            "--sessions", str(sessions), "--accounts", str(accounts), "--window", str(window_s)]  # fmt: skip
    return _subprocess(args, timeout=window_s + 240, env={DATABASE_URL_VARIABLE: database_url})


def sessions_line(result: dict) -> str:
    cores, writes = result["server_cores"], result["db_write_transactions_per_s"]
    return (
        f"metered sessions: {result['sessions']} streams ({result['sessions_per_account']} an account, block "
        f"{result['block_seconds']} s) reporting every {result['report_every_s']:g} s, {result['reports_per_s']:,.0f} "
        f"reports/s over {result['window_s']:g} s: server {cores} cores (target < {SESSIONS_TARGET_CORES}: "
        f"{'met' if cores < SESSIONS_TARGET_CORES else 'MISSED'}), database {writes} write transactions/s (target < "
        f"{SESSIONS_TARGET_WRITES:g}: {'met' if writes < SESSIONS_TARGET_WRITES else 'MISSED'}; "
        f"{result['db_commits_per_s']} commits/s with the read-only ones), {result['db_rows_written_per_s']} rows "
        f"written/s {result['db_rows_written_per_s_by_table']}, persists seen {result['persists_seen_per_s']}/s; "
        f"postgres {result['postgres_cores']} cores, client {result['client_cores']} cores; report p50 "
        f"{result['report_p50_ms']} p99 {result['report_p99_ms']} ms; opened over {result['open_seconds']} s; "
        f"errors {result['errors']} ({result['errors_in_window']} in the window)"
    )


def sessions_targets(result: dict) -> dict[str, tuple]:
    """The issue's two targets, judged on a clean run only (every stream reported and settled).
    Writes: the transactions that wrote (bench/holds.py database_writes)."""
    clean = not result["errors"]
    cores, writes = result["server_cores"], result["db_write_transactions_per_s"]
    return {
        f"{result['sessions']} metered sessions: server CPU < {SESSIONS_TARGET_CORES} core": (
            cores, clean and cores < SESSIONS_TARGET_CORES),
        f"{result['sessions']} metered sessions: database writes < {SESSIONS_TARGET_WRITES:g}/s (write transactions)": (
            f"{writes} ({result['db_commits_per_s']} commits/s with the read-only ones)",
            clean and writes < SESSIONS_TARGET_WRITES),
    }


# ------------------------------------------------------------------ processes


def _subprocess(args: list[str], timeout: float, env: dict[str, str] | None = None) -> dict:
    root = Path(__file__).resolve().parents[1]
    child_env = os.environ | (env or {})
    child_env["PYTHONPATH"] = os.pathsep.join([str(root)] + ([child_env["PYTHONPATH"]] if child_env.get("PYTHONPATH") else []))
    with tempfile.TemporaryDirectory(prefix="bench-holds-") as tmp:
        out = Path(tmp) / "result.json"
        proc = subprocess.run(
            [sys.executable, "-m", "bench.holds", *args, "--out", str(out)], cwd=root, env=child_env,
            capture_output=True, text=True, timeout=timeout,
        )
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"bench.holds {args[0]} failed (exit {proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
        return json.loads(out.read_text())


def _runner() -> asyncio.Runner:
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.Runner()
    return asyncio.Runner(loop_factory=uvloop.new_event_loop)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.holds")
    commands = parser.add_subparsers(dest="command", required=True)
    cycles = commands.add_parser("cycles", help="closed-loop hold cycles (or Consumes) for --duration seconds")
    cycles.add_argument("--scenario", choices=("hold_cycle", "consume"), default="hold_cycle")
    cycles.add_argument("--duration", type=float, required=True)
    cycles.add_argument("--concurrency", type=int, required=True)
    sessions = commands.add_parser("sessions", help=f"MeterSession streams; the database URL in {DATABASE_URL_VARIABLE}")
    sessions.add_argument("--server-pids", required=True, help="comma-separated: the processes whose CPU is metered")
    sessions.add_argument("--sessions", type=int, default=2000)
    sessions.add_argument("--window", type=float, default=60.0, help="metered seconds")
    for command in (cycles, sessions):
        command.add_argument("--target", required=True, help="HOST:PORT of a server process")
        command.add_argument("--accounts", type=int, required=True, help="accounts 1..N of the dataset")
        command.add_argument("--out", help="write the result JSON here too")
    args = parser.parse_args(argv)
    with _runner() as runner:
        if args.command == "cycles":
            result = runner.run(run_cycles(args.target, args.scenario, args.accounts, args.duration, args.concurrency))
        else:
            pids = [int(pid) for pid in args.server_pids.split(",") if pid]
            result = runner.run(run_sessions(
                args.target, pids, os.environ[DATABASE_URL_VARIABLE], args.sessions, args.accounts, args.window))
    text = json.dumps(result)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
