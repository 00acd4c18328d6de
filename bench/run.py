"""`make bench`: throughput and latency of the service against the database's own ceiling.

One run, one machine, same PostgreSQL: pgbench runs the exact SQL of Consume (captured
from the code) in interleaved rounds with the real stack (server workers + Envoy) measured
over gRPC, REST and ConsumeStream (pgbench / gRPC / REST / ConsumeStream, back to back, 3
rounds: report.ROUNDS), then the other scenarios; every figure is also given as a ratio to
pgbench (a round's to its own round's, the others' to the median round: `baseline`). Writes
bench/results/<date>.json and a PNG plot, prints a table, and checks the ledger
invariants afterwards.

`--only webhooks` runs the REST webhooks scenario alone (no pgbench baseline, no other
scenario), on the dataset `--accounts` names: `python -m bench.run --only webhooks --accounts 1000 --seconds 5`.
`--only consume` runs gRPC Consume alone (closed loop, `--concurrency` in flight): the quick check
that a change did not slow the hot path. `--only watchers` runs the live-balance scenario alone (a full run ends with it)
(bench/watchers.py: `--watchers` idle streams, one change to `--fanout-watchers` streams).
`--only webhooks-out` runs the outbound webhooks scenario (bench/webhooks_out.py: a local receiver,
the sender's drain rate, commit-to-delivery at 200 events/s, Consume with an endpoint against none;
a full run ends with it).
`--only holds` runs hold cycles (CreateHold + final CommitHold) beside gRPC Consume, both from the
same Python client; `--only sessions` runs `--sessions` metered sessions for `--session-seconds`
(bench/holds.py; a full run has both).
`--only cpu` runs issue 24's CPU budget per RPC (bench/cpu_budget.py: Consume, GetBalance,
CheckSufficientBatch(50), a hold cycle, a webhook delivery, each alone at full load with the server
profiled by py-spy; a full run ends with it).
`--only stream` runs ConsumeStream (bench/consume_stream.py: `--streams` streams, `--pipeline` consumes
unanswered on each) after pgbench's baseline on the same dataset, and prints their ratio.
`--only rounds` runs issue 24's key targets alone (~5-8 minutes): a 1k Consume sample, the rounds on
the 1M stack, GetBalance closed loop then open loop at 50% of it, a 2nd 1k sample.
`--only pgbouncer` runs pgbench's Consume SQL with 500 clients and the service's gRPC Consume with 500 pooled
connections through pgbouncer in transaction mode, beside the service on the database directly
(measure_through_pgbouncer; a full run has it too).
`--only standby` runs GetBalance on a stack reading the primary, then on one reading a hot standby
(DATABASE_READ_URL; made once in `.data/postgres-standby`), and the commit-to-visible delay the service's
replay fence observes while Consume writes (bench/standby.py).
`--only console` times the operator console's account page (overview + first ledger page) on an
account with 100,000 ledger rows added to the dataset (bench/console.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import psutil

from bench import (
    authorization_cost, console, consume_stream, cpu_budget, grpc_loadgen, holds, legacy_migration, loadgen,
    pgbench_script, profile_frames, report, standby, watchers, webhooks, webhooks_out,
)
from bench.stack import running_stack
from bench.wrk_runner import run_wrk
from devstack import embedded_postgres
from billing.adapters.db.invariants import find_violations_in_database
from billing.settings import libpq_url

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
LARGE, SMALL = 1_000_000, 1_000
SMALL_CONSUME, LARGE_CONSUME, SECOND_ROUND = report.SMALL_CONSUME, report.LARGE_CONSUME, report.SECOND_ROUND


def dataset_url(server_url: str, accounts: int) -> str:
    name = "billing_bench_1m" if accounts == LARGE else "billing_bench_1k"
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def server_url() -> str:
    configured = os.environ.get("BENCH_DATABASE_URL")
    if configured:
        return configured
    return embedded_postgres.start(ROOT / embedded_postgres.DEFAULT_DATA_DIR)


def postgres_pids() -> list[int]:
    return [p.pid for p in psutil.process_iter(["name", "username"]) if p.info["name"] == "postgres"]


class Meter:
    """CPU seconds of the server, Envoy and PostgreSQL over one measured scenario.

    Only processes alive at both ends count: one that exits in between (an autovacuum
    worker) would otherwise subtract its whole lifetime.
    """

    def __init__(self, stack_pids: list[int]):
        self.stack_pids = stack_pids

    def __enter__(self):
        self.pg_start = cpu_by_pid(postgres_pids())
        self.stack_start = cpu_by_pid(self.stack_pids)
        self.machine_start = psutil.cpu_times()
        return self

    def __exit__(self, *exc):
        self.server_cpu_s = cpu_delta(self.stack_start, cpu_by_pid(self.stack_pids))
        self.postgres_cpu_s = cpu_delta(self.pg_start, cpu_by_pid(postgres_pids()))
        self.steal_percent = steal_percent(self.machine_start, psutil.cpu_times())


def steal_percent(start, end) -> float | None:
    """The share of the window the hypervisor ran something else on our vCPUs. On this VM it
    reached 10-38% in bursts while a scenario ran: each burst is latency no code of ours spent,
    and it is what moved GetBalance's p99 from ~9 ms to 50+ ms between runs. Even 2% of an 8 s
    window is ~160 ms of each vCPU, which in one burst can hold every request in flight that long
    (report._stolen says it as time)."""
    if not hasattr(start, "steal"):
        return None
    total = sum(end) - sum(start)
    return round(100.0 * (end.steal - start.steal) / total, 1) if total > 0 else None


def cpu_by_pid(pids: list[int]) -> dict[int, float]:
    seconds = {}
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
            seconds[pid] = times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return seconds


def cpu_delta(start: dict[int, float], end: dict[int, float]) -> float:
    return sum(end[pid] - start[pid] for pid in start.keys() & end.keys())


SEED_STORED_ANSWERS = """
INSERT INTO idempotency_records (account_id, idempotency_key, request_fingerprint, response, created_at)
SELECT account_id, 'seed-' || account_id, 'consume:build:1', '{}'::jsonb, now()
FROM accounts ORDER BY account_id LIMIT 100000
ON CONFLICT DO NOTHING
"""


def prewarm(url: str) -> None:
    """Loads the hot tables into shared buffers, so the baseline (run first) is not measured cold."""
    import psycopg

    relations = ["accounts", "accounts_pkey", "buckets", "buckets_pkey", "ledger_events_pkey", "idempotency_records_pkey"]
    with psycopg.connect(libpq_url(url), autocommit=True) as connection:
        # A service that has run holds stored answers. With an empty, never-analyzed
        # idempotency_records, prepared plans (pgbench's and the server's) chose a sequential
        # scan of it that grew with every request of the run: the first run after
        # `make bench-data` measured pgbench at ~1,500 tps, later ones at ~3,400.
        if connection.execute("SELECT NOT EXISTS (SELECT 1 FROM idempotency_records)").fetchone()[0]:
            connection.execute(SEED_STORED_ANSWERS)
        connection.execute("ANALYZE accounts, buckets, idempotency_records")
        connection.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        for relation in relations:
            connection.execute("SELECT pg_prewarm(%s)", (relation,))


def run_pgbench(url: str, accounts: int, clients: int, duration_s: int, *, connect_url: str | None = None,
                protocol: str = "prepared", connect_s: float = 1.0) -> dict:
    """connect_url: where pgbench connects when not url itself (a pooler's); protocol: pgbench's -M;
    connect_s: how long its clients take to connect (not metered; pgbench's tps leaves it out too)."""
    statements = asyncio.run(pgbench_script.capture_consume(url, "1"))
    script = pgbench_script.build_script(statements, accounts, clients)
    with tempfile.NamedTemporaryFile("w", suffix=".pgbench", delete=False) as handle:
        handle.write(script.text)
    command = pgbench_script.pgbench_command(script, handle.name, connect_url or url, clients,
                                             seconds=round(duration_s + connect_s - 1.0), protocol=protocol)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # pgbench's backends live only as long as the run: meter them over its middle part.
    time.sleep(connect_s)
    cpu_start, window_start, machine_start = cpu_by_pid(postgres_pids()), time.monotonic(), psutil.cpu_times()
    time.sleep(max(0.5, duration_s - 2.0))
    cpu_used, window = cpu_delta(cpu_start, cpu_by_pid(postgres_pids())), time.monotonic() - window_start
    steal = steal_percent(machine_start, psutil.cpu_times())
    out, err = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"pgbench failed: {err[-3000:]}")
    figures = {line.split("=")[0].strip(): line.split("=")[1].split()[0] for line in out.splitlines() if "=" in line}
    tps = float(figures["tps"])
    return {
        "scenario": "pgbench consume", "protocol": "sql", "mode": "closed", "concurrency": clients,
        "rps": tps, "p50_ms": None, "p99_ms": None, "p999_ms": None,
        "latency_avg_ms": float(figures["latency average"]),
        "postgres_cpu_per_request_us": round(cpu_used / (tps * window) * 1e6, 1) if tps else None,
        "cpu_steal_percent": steal,
        "script": script.text,
    }


def checkpoint(url: str) -> None:
    """Every scenario starts just after a checkpoint. Right after one, the first change to each
    page writes the whole page to the WAL (full_page_writes): a timed checkpoint falling inside
    one scenario and not another made runs differ by 15% and more. A checkpoint before each
    also keeps the timed ones (every 5 minutes) out of the run."""
    import psycopg

    with psycopg.connect(libpq_url(url), autocommit=True) as connection:
        connection.execute("CHECKPOINT")


def measure(label: str, stack_pids: list[int], work, warmup=None, *, database_url: str) -> dict:
    """Checkpoints, runs `warmup` (unmeasured), then `work` with the stack's and PostgreSQL's CPU metered."""
    checkpoint(database_url)
    if warmup is not None:
        warmup()
    with Meter(stack_pids) as meter:
        result = work()
    requests = max(1, result.get("requests") or 1)
    result.update(
        label=label,
        server_cpu_per_request_us=round(meter.server_cpu_s / requests * 1e6, 1),
        postgres_cpu_per_request_us=round(meter.postgres_cpu_s / requests * 1e6, 1),
        cpu_steal_percent=meter.steal_percent,
    )
    print(report.one_line(result), flush=True)
    return result


WARMUP_S = 1.5
ONLY = (
    "webhooks", "consume", "watchers", "holds", "sessions", "webhooks-out", "console", "cpu", "stream", "rounds", "pgbouncer",
    "standby",
)


def grpc_load(target: str, scenario: str, accounts: int, duration_s: float, **mode) -> dict:
    config = loadgen.LoadConfig(
        protocol="grpc", target=target, scenario=scenario, accounts=accounts, duration_s=duration_s, **mode,
    )
    return grpc_loadgen.run_subprocess(config)


def rest_open_loop(base_url: str, scenario: str, accounts: int, duration_s: float, rate: float) -> dict:
    config = loadgen.LoadConfig(
        protocol="rest", target=base_url, scenario=scenario, accounts=accounts, duration_s=duration_s, rate=rate,
    )
    return loadgen.run_subprocess(config)


def webhook_load(base_url: str, accounts: int, duration_s: float, concurrency: int) -> dict:
    config = webhooks.WebhookConfig(target=base_url, accounts=accounts, duration_s=duration_s, concurrency=concurrency)
    return webhooks.run_subprocess(config)


def measure_webhooks(base_url: str, pids: list[int], accounts: int, args, database_url: str) -> dict:
    """The REST webhooks scenario (bench/webhooks.py), then the ledger: every PaymentIntent
    delivered must have exactly one package_credit row (said loudly here; a failed target and
    exit status 1 at the end)."""
    webhooks.register_customers(database_url, 0, accounts)
    result = measure(
        report.WEBHOOKS, pids, lambda: webhook_load(base_url, accounts, args.seconds, args.concurrency),
        warmup=lambda: webhook_load(base_url, accounts, WARMUP_S, args.concurrency), database_url=database_url,
    )
    result.update(webhooks.verify_credits(database_url, result))
    del result["payments"]  # one entry per PaymentIntent: checked, not kept
    print(report.webhook_line(result), flush=True)
    if not result["credit_check"]["ok"]:
        print(f"WEBHOOK CREDITS WRONG: {result['credit_check']}", file=sys.stderr, flush=True)
    return result


def measure_hold_cycles(target: str, pids: list[int], accounts: int, args, database_url: str) -> list[dict]:
    """gRPC Consume then hold cycles (CreateHold + final CommitHold), back to back on one stack,
    both from bench/holds.py's Python client at the bench's concurrency: their ratio is the
    server's, not the client's (the compiled generator speaks single calls only). Server CPU
    per cycle as per Consume (measure: per `requests`, here cycles)."""
    results = []
    for label, scenario in ((report.HOLD_CONSUME, "consume"), (report.HOLD_CYCLE, "hold_cycle")):
        results.append(measure(
            label, pids, lambda s=scenario: holds.cycles_subprocess(target, s, accounts, args.seconds, args.concurrency),
            warmup=lambda s=scenario: holds.cycles_subprocess(target, s, accounts, WARMUP_S, args.concurrency),
            database_url=database_url,
        ))
    print(report.holds_line(results[0], results[1]), flush=True)
    return results


# `--only pgbouncer`: this many client connections to pgbouncer (transaction mode), over this many
# server connections to PostgreSQL.
POOLER_CLIENTS = 500
POOLER_SERVER_CONNECTIONS = 20
# 500 SCRAM logins through pgbouncer took ~5 s on the 2 shared cores: pgbench's clients connect first.
POOLER_CONNECT_SECONDS = 10.0


def measure_through_pgbouncer(args, url: str, logs: Path) -> list[dict]:
    """pgbench's Consume SQL and the service's gRPC Consume through pgbouncer in transaction mode (Debian's,
    testkit/pgbouncer.py) with POOLER_CLIENTS client connections, beside the service on the database itself.
    pgbench runs `-M extended`: its prepared mode is what a transaction pooler breaks (docs/decisions.md);
    the service runs with BILLING_DB_POOLER=transaction and its pools hold POOLER_CLIENTS connections over
    its workers. pgbouncer's CPU counts as the stack's."""
    from testkit.pgbouncer import running_pgbouncer

    results = []
    with running_pgbouncer(url, pool_size=POOLER_SERVER_CONNECTIONS, max_client_conn=POOLER_CLIENTS + 50) as bouncer:
        checkpoint(url)
        pgbench = run_pgbench(url, args.accounts, POOLER_CLIENTS, int(args.seconds), connect_url=bouncer.url,
                              protocol="extended", connect_s=POOLER_CONNECT_SECONDS)
        results.append(pgbench | {"label": f"pgbench Consume SQL, {POOLER_CLIENTS} clients via pgbouncer"})
        print(report.one_line(results[-1]), flush=True)
        pooled = {"BILLING_DB_POOLER": "transaction", "DATABASE_DIRECT_URL": url,
                  "BILLING_DB_POOL_SIZE": str(-(-POOLER_CLIENTS // args.workers))}
        for route, stack_url, env in (("direct", url, {}), ("pgbouncer", bouncer.url, pooled)):
            with running_stack(stack_url, args.workers, logs / f"pooler-{route}", server_env=env,
                               direct_url=url) as (target, _base, pids):
                if route == "pgbouncer":
                    time.sleep(POOLER_CONNECT_SECONDS)  # the pools fill in the background after the server starts
                label = "gRPC consume, " + (
                    f"{POOLER_CLIENTS} connections via pgbouncer" if route == "pgbouncer" else "direct pool")
                results.append(measure(
                    label, pids + ([bouncer.pid] if route == "pgbouncer" else []),
                    lambda: grpc_load(target, "consume", args.accounts, args.seconds, concurrency=args.concurrency),
                    warmup=lambda: grpc_load(target, "consume", args.accounts, WARMUP_S, concurrency=args.concurrency),
                    database_url=url,
                ))
    return results


def measure_consume_stream(args, url: str, logs: Path) -> dict:
    """ConsumeStream (bench/consume_stream.py) against pgbench's one-Consume transactions, same
    dataset and seconds: consumes/s, server CPU per consume (the stream bypasses Envoy, which is
    metered anyway: it idles) and the ratio to pgbench."""
    prewarm(url)
    checkpoint(url)
    baseline = run_pgbench(url, args.accounts, args.concurrency, int(args.seconds))
    print(report.one_line(baseline | {"label": "pgbench Consume SQL"}), flush=True)
    with running_stack(url, args.workers, logs / "stream") as (target, _base, pids):
        direct = target.split(",")[0]
        result = measure(
            f"gRPC ConsumeStream ({args.streams}x{args.pipeline})", pids,
            lambda: consume_stream.streams_subprocess(direct, args.accounts, args.seconds, args.streams, args.pipeline),
            warmup=lambda: consume_stream.streams_subprocess(direct, args.accounts, WARMUP_S, args.streams, args.pipeline),
            database_url=url,
        )
    pgbench_tps = baseline["rps"]
    result["pgbench_tps"] = pgbench_tps
    ratio = result["rps"] / pgbench_tps if pgbench_tps else None
    result["vs_pgbench"] = round(ratio, 2) if ratio is not None else None
    print(f"ConsumeStream: {result['rps']:.0f} consumes/s, server {result['server_cpu_per_request_us']:.0f} us CPU per "
          f"consume, postgres {result['postgres_cpu_per_request_us']:.0f} us; pgbench {pgbench_tps} tps"
          + (f" ({ratio:.2f}x)" if ratio is not None else ""), flush=True)
    return result


def measure_rounds(args, url: str, target: str, base: str, pids: list[int]) -> list[dict]:
    """Issue 24's interleaved rounds (report.ROUNDS) on one running stack: in each, pgbench's
    one-Consume transactions (the stack up and idle), gRPC Consume (compiled client, closed loop),
    REST Consume (wrk) and ConsumeStream (`--streams` x `--pipeline`), back to back, each after a
    checkpoint, each row with its window's CPU steal. ConsumeStream is in every round, so its
    ratio to pgbench is judged like the others: per round, then the median."""
    rows = []
    direct = target.split(",")[0]  # ConsumeStream goes to a server process, not through Envoy
    accounts, concurrency = args.accounts, args.concurrency
    loads = {
        report.GRPC_CONSUME: lambda seconds: grpc_load(target, "consume", accounts, seconds, concurrency=concurrency),
        report.REST_CONSUME: lambda seconds: run_wrk(base, "consume", accounts, 0, seconds, threads=1,
                                                     connections=concurrency),
        report.STREAM_CONSUME: lambda seconds: consume_stream.streams_subprocess(
            direct, accounts, seconds, args.streams, args.pipeline),
    }
    for number in range(1, report.ROUNDS + 1):
        checkpoint(url)
        baseline = run_pgbench(url, args.accounts, args.concurrency, int(args.seconds))
        baseline.update(label=report.round_label(report.PGBENCH, number), round=number)
        print(report.one_line(baseline), flush=True)
        rows.append(baseline)
        for part, load in loads.items():
            row = measure(report.round_label(part, number), pids, lambda load=load: load(args.seconds),
                          warmup=lambda load=load: load(WARMUP_S), database_url=url)
            row["round"] = number
            rows.append(row)
    return rows


def median_rps(rows: list[dict]) -> float:
    return statistics.median(r["rps"] for r in rows)


def measure_rounds_alone(args, url: str, small_url: str, logs: Path) -> list[dict]:
    """`--only rounds`: what issue 24's key targets need, in ~5-8 minutes at the default 8 s: a 1k
    Consume sample, the rounds on the `--accounts` stack, GetBalance closed loop then open loop at
    50% of it, and a 2nd 1k sample (the data-size target: the rounds' gRPC samples against both)."""
    results = []
    def small(label: str) -> None:
        with running_stack(small_url, args.workers, logs / label.replace(" ", "-")) as (target, _base, pids):
            results.append(measure(
                label, pids, lambda: grpc_load(target, "consume", SMALL, args.seconds, concurrency=args.concurrency),
                warmup=lambda: grpc_load(target, "consume", SMALL, WARMUP_S, concurrency=args.concurrency),
                database_url=small_url,
            ))

    small(SMALL_CONSUME)
    with running_stack(url, args.workers, logs / "rounds") as (target, base, pids):
        results += measure_rounds(args, url, target, base, pids)
        def balance(seconds: float, **mode) -> dict:
            return grpc_load(target, "balance", args.accounts, seconds, **mode)
        closed = measure("gRPC balance", pids, lambda: balance(args.seconds, concurrency=args.concurrency),
                         warmup=lambda: balance(WARMUP_S, concurrency=args.concurrency), database_url=url)
        results.append(closed)
        rate = round(closed["rps"] * 0.5, 1)
        results.append(measure("gRPC balance open-loop 50%", pids, lambda: balance(args.seconds, rate=rate),
                               warmup=lambda: balance(WARMUP_S, concurrency=args.concurrency), database_url=url))
    small(SMALL_CONSUME + SECOND_ROUND)
    return results


def measure_sessions(args, url: str, logs: Path) -> dict:
    """`--sessions` MeterSession streams on a stack of their own (bench/holds.py): the server's
    CPU and the database's writes per second while they report every second."""
    checkpoint(url)
    with running_stack(url, args.workers, logs / "sessions") as (target, _base, pids):
        server_pids = [pid for pid in pids if pid != pids[-1]]  # the last is Envoy, which the streams bypass
        # With several workers, the streams all go to the first one's port; every worker is metered.
        result = holds.sessions_subprocess(
            target.split(",")[0], server_pids, url, args.sessions, args.accounts, args.session_seconds)
    print(holds.sessions_line(result), flush=True)
    return result


def grpc_closed_loop(target: str, scenario: str, accounts: int, duration_s: float, concurrency: int) -> dict:
    """The compiled generator where it is built or can be (its grpc++ development files are
    there), else the Python grpc.aio one (~190 us of client CPU a call instead of ~65, on the same
    cores: it lowers calls/s, not the server's CPU per call)."""
    config = loadgen.LoadConfig(
        protocol="grpc", target=target, scenario=scenario, accounts=accounts, duration_s=duration_s,
        concurrency=concurrency,
    )
    compiled = grpc_loadgen.binary_path().exists() or grpc_loadgen._have_grpc_dev()
    return grpc_loadgen.run_subprocess(config) if compiled else loadgen.run_subprocess(config)


def cpu_budget_load(scenario: str, target: str, base: str, accounts: int, duration_s: float, concurrency: int) -> dict:
    if scenario == "hold_cycle":
        return holds.cycles_subprocess(target, scenario, accounts, duration_s, concurrency)
    if scenario == "webhook":
        return webhook_load(base, accounts, duration_s, concurrency)
    return grpc_closed_loop(target, scenario, accounts, duration_s, concurrency)


def measure_cpu_budget(args, url: str, logs: Path) -> list[dict]:
    """Each RPC of issue 24's budget alone, on one stack (bench/cpu_budget.py): server CPU per call
    over the window, Envoy's and PostgreSQL's beside it, and py-spy's profile of the server."""
    rows = []
    webhooks.register_customers(url, 0, args.accounts)
    with running_stack(url, args.workers, logs / "cpu-budget") as (target, base, pids):
        server_pids, envoy_pid = pids[:-1], pids[-1]  # the last is Envoy (bench/stack.py)
        for scenario in args.cpu_scenarios.split(","):
            def load(seconds, s=scenario):
                return cpu_budget_load(s, target, base, args.accounts, seconds, args.concurrency)
            checkpoint(url)
            load(WARMUP_S)
            envoy_start = cpu_by_pid([envoy_pid])
            # server_pids[-1] is the process started (the workers' supervisor when there are several):
            # py-spy follows its children.
            profiler = profile_frames.Profiler(server_pids[-1], rate=args.profile_rate, native=args.profile_native)
            with Meter(server_pids) as meter, profiler:
                result = load(args.seconds)
            envoy_cpu_s = cpu_delta(envoy_start, cpu_by_pid([envoy_pid]))
            if scenario == "webhook":
                result.update(webhooks.verify_credits(url, result))
                del result["payments"]
            row = cpu_budget.budget_row(scenario, result, meter.server_cpu_s, envoy_cpu_s, meter.postgres_cpu_s,
                                        profiler, meter.steal_percent)
            if scenario == "webhook":
                row["credit_check"] = result["credit_check"]
            rows.append(row)
            print(f"cpu budget: {row['rpc']}: {row['calls_per_s']} calls/s, server {row['server_cpu_per_call_us']} us/call "
                  f"({row['profile']['samples']} samples)", flush=True)
    print(cpu_budget.table(rows), flush=True)
    return rows


def measure_standby(args, url: str, logs: Path) -> list[dict]:
    """bench/standby.py: GetBalance on the primary, then on the standby; commit-to-visible under Consume;
    GetBalance on the standby beside a Consume load."""
    grpc_loadgen.ensure_built()
    primary_dir = ROOT / embedded_postgres.DEFAULT_DATA_DIR
    standby_dir, standby_url = standby.standby_of(primary_dir, url)
    rows = []

    def balance(target: str, seconds: float, concurrency: int = args.concurrency) -> dict:
        return grpc_closed_loop(target, "balance", args.accounts, seconds, concurrency)

    def consume(target: str, seconds: float, concurrency: int = args.concurrency) -> dict:
        return grpc_closed_loop(target, "consume", args.accounts, seconds, concurrency)

    for label, read_url in (("GetBalance on the primary", ""), ("GetBalance on the standby", standby_url)):
        with environment(DATABASE_READ_URL=read_url), running_stack(url, args.workers, logs / "standby") as (
                target, _base, pids):
            checkpoint(url)
            balance(target, WARMUP_S)
            with standby.ServerMeter(pids, primary_dir, standby_dir) as meter:
                result = balance(target, args.seconds)
            rows.append(standby.per_call(result | {"label": label}, meter))
            print(standby.line(rows[-1]), flush=True)
            if read_url:
                lag = standby.commit_to_visible(url, standby_url, args.seconds,
                                                lambda: consume(target, args.seconds + 1.0))
                polled = lag["polled"]
                print(f"commit-to-visible (the replay fence's cycles under Consume at {lag.get('writes_per_s')} "
                      f"writes/s): p50 {lag.get('p50_ms')} ms, p99 {lag.get('p99_ms')} ms, max {lag.get('max_ms')} ms "
                      f"over {lag['cycles']} cycles; the {polled['cycles']} that waited for new WAL: p50 "
                      f"{polled.get('p50_ms')} ms, p99 {polled.get('p99_ms')} ms", flush=True)
                mixed_writes: dict = {}
                half = max(1, args.concurrency // 2)
                writer = threading.Thread(target=lambda: mixed_writes.update(consume(target, args.seconds + 1.0, half)))
                writer.start()
                with standby.ServerMeter(pids, primary_dir, standby_dir) as meter:
                    result = balance(target, args.seconds, half)
                writer.join()
                rows.append(standby.per_call(result | {"label": "GetBalance on the standby, Consume beside",
                                                       "consume_rps": mixed_writes.get("rps")}, meter))
                print(standby.line(rows[-1]) + f"  (Consume beside: {mixed_writes.get('rps')} calls/s)", flush=True)
                rows.append({"label": "commit-to-visible", **lag})
    return rows


@contextmanager
def environment(**values: str):
    """os.environ with `values` set while the block runs (the stacks it starts inherit them)."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def measure_outbound(args, url: str, logs: Path) -> tuple[dict, list[dict]]:
    """The outbound webhooks scenario (bench/webhooks_out.py): a backlog written with the sender
    off, then on a stack with its sender: the backlog's drain, CreateGrant at RATE/s and the
    commit-to-delivery of its events, and gRPC Consume rounds with the endpoint enabled and
    disabled, interleaved. Returns (its figures, the Consume rounds as result rows)."""
    import psycopg

    from billing.domain.auth import Scope
    from testkit.signing import create_key

    grpc_loadgen.ensure_built()
    receiver = webhooks_out.Receiver()
    admin = create_key(url, Scope.ADMIN)  # CreateGrant is an admin call
    rows: list[dict] = []
    with environment(**{webhooks_out.ADMIN_AUTHORIZATION: admin.bearer()[0][1], "BILLING_WEBHOOK_ALLOW_PRIVATE": "1"}), \
            psycopg.connect(libpq_url(url), autocommit=True) as db:
        endpoint = webhooks_out.add_endpoint(db, receiver.url)
        try:
            checkpoint(url)
            with environment(BILLING_WEBHOOK_SENDER="0"):
                with running_stack(url, args.workers, logs / "outbound-backlog") as (target, _base, _pids):
                    written_from = time.time()
                    backlog_grants = webhooks_out.grants_subprocess(
                        target.split(",")[0], args.accounts, args.seconds, None, args.concurrency)
                    backlog = webhooks_out.events_between(db, written_from, time.time())
            checkpoint(url)
            with running_stack(url, args.workers, logs / "outbound") as (target, _base, pids):
                direct = target.split(",")[0]
                drain = webhooks_out.drain_figures(
                    backlog, webhooks_out.wait_for(receiver, backlog, webhooks_out.DELIVERY_WAIT_S))
                drain["written_per_s"] = backlog_grants["calls_per_s"]
                print(f"outbound webhooks: backlog of {drain['backlog_events']} events drained at "
                      f"{drain['events_per_s']} events/s", flush=True)
                with Meter(pids) as meter:
                    start = time.time()
                    grants = webhooks_out.grants_subprocess(
                        direct, args.accounts, webhooks_out.STEADY_SECONDS, webhooks_out.RATE, 64)
                    end = time.time()
                created = webhooks_out.events_between(db, start, end)
                steady = webhooks_out.lag_figures(
                    created, webhooks_out.wait_for(receiver, created, webhooks_out.DELIVERY_WAIT_S), end - start)
                steady.update(server_cores=round(meter.server_cpu_s / (end - start), 3),
                              postgres_cores=round(meter.postgres_cpu_s / (end - start), 3),
                              cpu_steal_percent=meter.steal_percent)
                rounds = []
                for number in range(1, webhooks_out.CONSUME_ROUNDS + 1):
                    pair = {}
                    for enabled in ((True, False) if number % 2 else (False, True)):
                        webhooks_out.set_endpoint_enabled(db, endpoint, enabled)
                        label = f"gRPC consume, {'webhook endpoint' if enabled else 'no endpoint'}, round {number}"
                        pair[enabled] = measure(
                            label, pids,
                            lambda: grpc_load(direct, "consume", args.accounts, args.seconds, concurrency=args.concurrency),
                            warmup=lambda: grpc_load(direct, "consume", args.accounts, WARMUP_S, concurrency=args.concurrency),
                            database_url=url,
                        )
                    rows += [pair[True], pair[False]]
                    rounds.append((pair[True], pair[False]))
        finally:
            webhooks_out.retire_endpoint(db, endpoint)
            receiver.close()
    result = {
        "rate": webhooks_out.RATE, "steady_seconds": webhooks_out.STEADY_SECONDS, "accounts": args.accounts,
        "drain": drain, "backlog_grants": backlog_grants, "steady": steady, "grants": grants,
        "consume_rounds": [(w["rps"], n["rps"]) for w, n in rounds],
        "consume_ratio": webhooks_out.consume_ratio(rounds),
        "consume_clean": all(not r.get("errors") and not r.get("dropped") for r in rows),
    }
    print(webhooks_out.line(result), flush=True)
    return result, rows


def run_scenarios(args, url: str, accounts: int, logs: Path, small_url: str) -> list[dict]:
    results = []
    duration, concurrency = args.seconds, args.concurrency
    def grpc(label, target, pids, scenario, accounts, **mode):
        warm = dict(mode, rate=None, concurrency=concurrency)
        results.append(measure(
            label, pids, lambda: grpc_load(target, scenario, accounts, duration, **mode),
            warmup=lambda: grpc_load(target, scenario, accounts, WARMUP_S, **warm),
            database_url=small_url if accounts == SMALL else url,
        ))

    with running_stack(small_url, args.workers, logs / "small") as (target, _base, pids):
        grpc(SMALL_CONSUME, target, pids, "consume", SMALL, concurrency=concurrency)
    with running_stack(url, args.workers, logs / "large") as (target, base, pids):
        # Consume over gRPC and REST, and pgbench, are measured in the interleaved rounds (first on
        # this stack: the targets' figures); the open loops below run at half their medians.
        rounds = measure_rounds(args, url, target, base, pids)
        results += rounds
        consume = {part: median_rps([r for r in rounds if r["label"].startswith(part + report.ROUND)])
                   for part in (report.GRPC_CONSUME, report.REST_CONSUME)}
        for scenario in ("balance", "batch", "single_check"):
            grpc(f"gRPC {scenario}", target, pids, scenario, accounts, concurrency=concurrency)
        closed = {r["scenario"]: r["rps"] for r in results if r["label"] in ("gRPC balance", "gRPC batch")}
        closed["consume"] = consume[report.GRPC_CONSUME]
        for scenario in ("consume", "balance", "batch"):
            rate = round(closed[scenario] * 0.5, 1)
            grpc(f"gRPC {scenario} open-loop 50%", target, pids, scenario, accounts, rate=rate)
        for scenario in ("balance", "batch"):
            results.append(measure(
                f"REST {scenario}", pids,
                lambda s=scenario: run_wrk(base, s, accounts, 0, duration, threads=1, connections=concurrency),
                warmup=lambda s=scenario: run_wrk(base, s, accounts, 0, WARMUP_S, threads=1, connections=concurrency),
                database_url=url,
            ))
        rest = {r["scenario"]: r["rps"] for r in results if r["label"] in ("REST balance", "REST batch")}
        rest["consume"] = consume[report.REST_CONSUME]
        for scenario in ("consume", "balance", "batch"):
            rate = round(rest[scenario] * 0.5, 1)
            results.append(measure(
                f"REST {scenario} open-loop 50%", pids,
                lambda s=scenario, r=rate: rest_open_loop(base, s, accounts, duration, r),
                warmup=lambda s=scenario, r=rate: rest_open_loop(base, s, accounts, WARMUP_S, r),
                database_url=url,
            ))
        results += measure_hold_cycles(target, pids, accounts, args, url)
        # Last on this stack: its package credits add buckets to the accounts they pay into.
        results.append(measure_webhooks(base, pids, accounts, args, url))
    # Data size is judged on every 1k and 1M sample: the rounds' gRPC ones, and a 1k/1M pair
    # measured back to back at the end (one pair of 8-second samples moved by ±10% with the
    # speed of this VM; report.py takes the medians).
    with running_stack(small_url, args.workers, logs / "small-2") as (target, _base, pids):
        grpc(f"{SMALL_CONSUME}{SECOND_ROUND}", target, pids, "consume", SMALL, concurrency=concurrency)
    with running_stack(url, args.workers, logs / "large-2") as (target, _base, pids):
        grpc(f"{LARGE_CONSUME}{SECOND_ROUND}", target, pids, "consume", accounts, concurrency=concurrency)
    return results


def measure_watchers(args, url: str, logs: Path) -> dict:
    """Idle live-balance streams one server process holds, and one change's fan-out (bench/watchers.py)."""
    settings = watchers.server_settings(args.watchers, args.fanout_watchers)
    before = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        with running_stack(url, args.workers, logs / "watchers") as (target, _base, pids):
            server_pids = [pid for pid in pids if pid != pids[-1]]  # the last is Envoy, which streams bypass
            result = watchers.run(target, server_pids, args.accounts, args.watchers, args.fanout_watchers)
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    print(watchers.line(result), flush=True)
    return result


def find_violations_now(urls: list[str]) -> list:
    violations = [v for database in dict.fromkeys(urls) for v in asyncio.run(find_violations_in_database(database))]
    if violations:
        print(f"LEDGER INVARIANTS VIOLATED: {violations[:5]}", file=sys.stderr)
    return violations


def write_named_result(kind: str, started_at: datetime, args, **figures) -> Path:
    """A scenario run alone (`--only`): its figures in bench/results/<kind>-<date>.json."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{kind}-{started_at.strftime('%Y-%m-%dT%H%M%SZ')}.json"
    path.write_text(json.dumps({"started_at": started_at.isoformat(), "machine": {"cpus": os.cpu_count()},
                                "settings": vars(args), **figures}, indent=2))
    print(f"wrote {path}")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench")
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per scenario")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight (pgbench clients too)")
    # One process: group commit batches what is in flight in a process, so at the benchmark's
    # concurrency one process makes larger batches and serves more than two (docs/performance.md).
    parser.add_argument("--workers", type=int, default=1, help="server processes (SO_REUSEPORT)")
    parser.add_argument("--accounts", type=int, default=LARGE, help="which dataset: 1000000 or 1000")
    parser.add_argument("--only", choices=ONLY,
                        help="run this scenario alone (no other scenario; pgbench only in `rounds` and `stream`)")
    parser.add_argument("--watchers", type=int, default=5000, help="live balance: idle streams to hold")
    parser.add_argument("--fanout-watchers", type=int, default=1000, help="live balance: streams of the changed account")
    parser.add_argument("--sessions", type=int, default=2000, help="metered sessions: streams reporting every second")
    parser.add_argument("--streams", type=int, default=4, help="ConsumeStream: streams")
    parser.add_argument("--pipeline", type=int, default=128, help="ConsumeStream: unanswered consumes per stream")
    parser.add_argument("--session-seconds", type=float, default=60.0, help="metered sessions: the metered window")
    parser.add_argument("--cpu-scenarios", default=",".join(cpu_budget.SCENARIOS),
                        help="--only cpu: which RPCs, comma-separated (%(default)s)")
    parser.add_argument("--profile-native", action="store_true",
                        help="cpu budget: py-spy --native (C frames too; pauses the server at each sample)")
    parser.add_argument("--profile-rate", type=int, default=profile_frames.RATE_HZ,
                        help="cpu budget: py-spy samples per second (0: no profile, the figures alone)")
    args = parser.parse_args(argv)
    unknown = set(args.cpu_scenarios.split(",")) - set(cpu_budget.SCENARIOS)
    if unknown:
        parser.error(f"--cpu-scenarios: unknown {', '.join(sorted(unknown))} (known: {', '.join(cpu_budget.SCENARIOS)})")
    server = server_url()
    url, small_url = dataset_url(server, args.accounts), dataset_url(server, SMALL)
    started_at = datetime.now(timezone.utc)
    logs = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    baseline: dict | None = None
    if args.only == "webhooks":
        prewarm(url)  # as before a full run: on a fresh dataset, stored answers are seeded and analyzed
        with running_stack(url, args.workers, logs / "webhooks") as (_target, base, pids):
            results = [measure_webhooks(base, pids, args.accounts, args, url)]
        checked = [url]
    elif args.only == "consume":
        grpc_loadgen.ensure_built()
        prewarm(url)
        with running_stack(url, args.workers, logs / "consume") as (target, _base, pids):
            results = [measure(
                f"gRPC consume ({args.accounts} accounts)", pids,
                lambda: grpc_load(target, "consume", args.accounts, args.seconds, concurrency=args.concurrency),
                warmup=lambda: grpc_load(target, "consume", args.accounts, WARMUP_S, concurrency=args.concurrency),
                database_url=url,
            )]
        checked = [url]
    elif args.only == "stream":
        results = [measure_consume_stream(args, url, logs)]
        checked = [url]
    elif args.only == "pgbouncer":
        grpc_loadgen.ensure_built()
        prewarm(url)
        results = measure_through_pgbouncer(args, url, logs)
        checked = [url]
    elif args.only == "holds":
        prewarm(url)
        with running_stack(url, args.workers, logs / "holds") as (target, _base, pids):
            results = measure_hold_cycles(target, pids, args.accounts, args, url)
        checked = [url]
    elif args.only == "sessions":
        prewarm(url)
        results, checked = [], [url]
    elif args.only == "webhooks-out":
        prewarm(url)
        results, checked = [], [url]
    elif args.only == "cpu":
        prewarm(url)
        rows = measure_cpu_budget(args, url, logs)
        write_named_result("cpu", started_at, args, cpu_budget=rows)
        wrong = [row for row in rows if not row.get("credit_check", {"ok": True})["ok"]]
        return 1 if wrong or find_violations_now([url]) else 0
    elif args.only == "standby":
        prewarm(url)
        rows = measure_standby(args, url, logs)
        write_named_result("standby", started_at, args, standby=rows)
        return 1 if find_violations_now([url]) else 0
    elif args.only == "console":
        prewarm(url)
        result = console.run(url)  # an account of its own with 100,000 ledger rows, on the dataset
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / f"console-{started_at.strftime('%Y-%m-%dT%H%M%SZ')}.json"
        path.write_text(json.dumps({"started_at": started_at.isoformat(), "settings": vars(args), "result": result}, indent=2))
        print(f"wrote {path}")
        return 0
    elif args.only == "watchers":
        result = measure_watchers(args, url, logs)
        # No throughput to plot or judge against pgbench: the figures alone, for docs/performance.md.
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / f"watchers-{started_at.strftime('%Y-%m-%dT%H%M%SZ')}.json"
        path.write_text(json.dumps({"started_at": started_at.isoformat(), "settings": vars(args), "result": result}, indent=2))
        print(f"wrote {path}")
        return 0
    elif args.only == "rounds":
        grpc_loadgen.ensure_built()
        prewarm(url)
        results = measure_rounds_alone(args, url, small_url, logs)
        baseline = report.median_round(results)
        checked = [url, small_url]
    else:
        grpc_loadgen.ensure_built()
        prewarm(url)
        results = run_scenarios(args, url, args.accounts, logs, small_url)
        baseline = report.median_round(results)  # the median pgbench round
        checked = [url, small_url]
    # Before the ledger check: every session settles at the end, and `billing verify` must agree.
    sessions = measure_sessions(args, url, logs) if args.only in (None, "sessions") else None
    outbound = None
    if args.only in (None, "webhooks-out"):
        outbound, consume_rounds = measure_outbound(args, url, logs)
        results += consume_rounds
    # Before the ledger check too: its webhook deliveries credit accounts.
    cpu_rows = measure_cpu_budget(args, url, logs) if args.only is None else None
    if args.only is None:  # before the ledger check too: its consumes go through pgbouncer
        results += measure_through_pgbouncer(args, url, logs)
    violations = [v for database in dict.fromkeys(checked) for v in asyncio.run(find_violations_in_database(database))]
    summary = report.summarize(baseline, results, violations, sessions, outbound, full=args.only is None)
    signature_check_us = authorization_cost.microseconds_per_check()
    authorization_us = authorization_cost.microseconds_per_authorization()
    print(f"signature check (server CPU per signed request, in-process): {signature_check_us:.1f} us; "
          f"the whole authorization of a signed REST Consume (signature, signed request = this call, scope, "
          f"per-key rate limit): {authorization_us:.1f} us", flush=True)
    document = {
        "started_at": started_at.isoformat(), "machine": {"cpus": os.cpu_count()}, "settings": vars(args),
        "baseline": baseline, "results": results, "summary": summary, "invariant_violations": violations[:20],
        "signature_check_us": signature_check_us, "authorization_us": authorization_us,
        "metered_sessions": sessions, "outbound_webhooks": outbound, "cpu_budget": cpu_rows,
    }
    if args.only is None:
        document["watchers"] = measure_watchers(args, url, logs)
        document["legacy_migration"] = legacy = legacy_migration.run(server)  # alone: python -m bench.legacy_migration
        violations += legacy["invariant_violations"]
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / started_at.strftime("%Y-%m-%dT%H%M%SZ")
    stem.with_suffix(".json").write_text(json.dumps(document, indent=2, default=str))
    written = [stem.with_suffix(".json")]
    if report.has_rows(document):  # --only sessions: no throughput to plot
        report.plot(document, stem.with_suffix(".png"))
        written.append(stem.with_suffix(".png"))
    print(report.table(document))
    print("wrote " + " and ".join(map(str, written)))
    if violations:
        print(f"LEDGER INVARIANTS VIOLATED: {violations[:5]}", file=sys.stderr)
    wrong_credits = [r for r in results + (cpu_rows or []) if not r.get("credit_check", {"ok": True})["ok"]]
    for result in wrong_credits:
        print(f"WEBHOOK CREDITS WRONG ({result.get('label') or result.get('rpc')}): {result['credit_check']}", file=sys.stderr)
    return 1 if violations or wrong_credits else 0


if __name__ == "__main__":
    sys.exit(main())
