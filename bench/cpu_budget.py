"""Issue 24's CPU budget per RPC: server CPU per call and where it goes, one RPC at a time.

`python -m bench.run --only cpu [--accounts 1000] [--seconds 8]` (a full `make bench` runs it too,
on the 1M-account stack of its own): on one stack, each scenario runs its closed loop at full load
(`--concurrency` in flight) for `--seconds`, after an unmeasured warmup and a CHECKPOINT, with

  - the server processes' CPU (user+sys, Envoy apart) over the window, divided by the calls
    answered in it: `server_cpu_per_call_us` (Envoy's and PostgreSQL's beside it);
  - py-spy sampling the server over the same window (bench/profile_frames.py): the top frames
    by self and by inclusive time, each with its estimated microseconds per call.

Scenarios (a call is what the budget is for):
  consume      gRPC Consume                                   compiled client if built, else Python
  balance      gRPC GetBalance                                same
  batch        gRPC CheckSufficientBatch, 50 operations       same
  hold_cycle   gRPC CreateHold + final CommitHold of the hold (one call = the cycle; Python client)
  webhook      a Stripe payment_intent.succeeded delivery over REST through Envoy (bench/webhooks.py)

The webhook scenario is last: its credits add buckets to the accounts they pay into.
"""

from __future__ import annotations

from bench import profile_frames

SCENARIOS = ("consume", "balance", "batch", "hold_cycle", "webhook")
LABELS = {
    "consume": "Consume",
    "balance": "GetBalance",
    "batch": "CheckSufficientBatch(50)",
    "hold_cycle": "hold create + final commit",
    "webhook": "webhook delivery (REST)",
}
# Issue 24's budgets, gRPC at full load; the others have none yet (this measures them first).
TARGET_US = {"consume": 450, "balance": 350}
TABLE_FRAMES = 5


def budget_row(scenario: str, load: dict, server_cpu_s: float, envoy_cpu_s: float, postgres_cpu_s: float,
               profiler: profile_frames.Profiler, steal_percent: float | None) -> dict:
    """One scenario's figures: the load generator's result, CPU per call and the profile's top frames."""
    calls = load.get("requests") or 0
    per_call = (lambda seconds: round(seconds / calls * 1e6, 1) if calls else None)
    server_us = per_call(server_cpu_s)
    profile = profile_frames.top_frames(profiler.stacks)
    return {
        "scenario": scenario, "rpc": LABELS[scenario], "client": load.get("tool"),
        "calls": calls, "calls_per_s": load.get("rps"), "errors": load.get("errors", 0),
        "p50_ms": load.get("p50_ms"), "p99_ms": load.get("p99_ms"),
        "server_cpu_per_call_us": server_us, "envoy_cpu_per_call_us": per_call(envoy_cpu_s),
        "postgres_cpu_per_call_us": per_call(postgres_cpu_s),
        "client_cpu_per_call_us": load.get("client_cpu_per_request_us"),
        "target_us": TARGET_US.get(scenario), "cpu_steal_percent": steal_percent,
        "profile": {
            "samples": profile["samples"], "rate_hz": profiler.rate, "native": profiler.native,
            "profiler_cpu_s": None if profiler.cpu_s is None else round(profiler.cpu_s, 3),
            "error": profiler.error,
            "self": profile_frames.frame_cost_us(profile["self"], server_us),
            "inclusive": profile_frames.frame_cost_us(profile["inclusive"], server_us),
            "packages": profile_frames.frame_cost_us(profile["packages"], server_us),
        },
    }


def table(rows: list[dict], frames: int = TABLE_FRAMES) -> str:
    """rpc, calls/s, server CPU us/call (Envoy, PostgreSQL), then each RPC's top frames by self time."""
    header = f"{'rpc':<28} {'calls/s':>8} {'server us':>9} {'target':>6} {'envoy us':>8} {'pg us':>7} {'errors':>6}"
    lines = ["CPU per RPC (issue 24), full load, closed loop", header, "-" * len(header)]
    for row in rows:
        target = row["target_us"] or "-"
        lines.append(
            f"{row['rpc']:<28} {row['calls_per_s'] or 0:>8,.0f} {_us(row['server_cpu_per_call_us']):>9} {target:>6} "
            f"{_us(row['envoy_cpu_per_call_us']) if row['scenario'] == 'webhook' else '-':>8} "
            f"{_us(row['postgres_cpu_per_call_us']):>7} {row['errors']:>6}"
        )
    for row in rows:
        profile = row["profile"]
        lines.append("")
        lines.append(f"{row['rpc']}: top frames of the server by self time "
                     f"({profile['samples']} samples{'; ' + profile['error'] if profile['error'] else ''})")
        for frame in profile["self"][:frames]:
            meaning = profile_frames.MEANING.get(frame["frame"])
            lines.append(f"  {frame['percent']:>5.1f}%  {_us(frame.get('us_per_call')):>6} us  {frame['frame']}"
                         + (f"  [{meaning}]" if meaning else ""))
        if profile["packages"]:
            lines.append("  self time by package: " + "; ".join(
                f"{p['frame']} {_us(p.get('us_per_call'))} us" for p in profile["packages"][:6]))
        ours = [f for f in profile["inclusive"] if "billing/" in f["frame"] and "billing/entrypoints" not in f["frame"]]
        if ours:
            lines.append("  inclusive, ours: " + "; ".join(
                f"{f['frame']} {_us(f.get('us_per_call'))} us" for f in ours[:3]))
    return "\n".join(lines)


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"
