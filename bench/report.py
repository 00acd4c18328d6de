"""Tables, ratios, targets and the plot of a benchmark run."""

from __future__ import annotations

import statistics
from pathlib import Path


def _fmt(value, digits=1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def one_line(result: dict) -> str:
    return (
        f"{result['label']:<34} {_fmt(result.get('rps'), 0):>8} req/s  p50 {_fmt(result.get('p50_ms'))} "
        f"p99 {_fmt(result.get('p99_ms'))} p999 {_fmt(result.get('p999_ms'))} ms  errors {result.get('errors', 0)}  "
        f"client CPU {_fmt(result.get('client_cpu_per_request_us'), 0)} us/req  "
        f"server+envoy {_fmt(result.get('server_cpu_per_request_us'), 0)} us/req  "
        f"postgres {_fmt(result.get('postgres_cpu_per_request_us'), 0)} us/req  "
        f"steal {_fmt(result.get('cpu_steal_percent'), 0)}%"
    )


def _stolen(result: dict) -> str:
    """Steal as time: 2% of an 8 s window is ~160 ms of each vCPU, enough for a p99 of 130 ms
    if it comes in one burst (likely in 2026-12-03T052420Z: p99 134 ms at 1.9%, when the
    scenarios without steal around it had p99 7-19 ms)."""
    steal, seconds = result.get("cpu_steal_percent"), result.get("duration_s")
    if not steal or not seconds:
        return ""
    return f", ~{steal / 100 * seconds * 1000:.0f} ms of the {seconds:g} s"


def _by_label(results: list[dict]) -> dict[str, dict]:
    return {r["label"]: r for r in results}


SMALL_CONSUME, LARGE_CONSUME = "gRPC Consume @1k accounts", "gRPC Consume @1M accounts"
WEBHOOKS = "REST webhooks"
SECOND_ROUND = ", 2nd round"
PAIR = ", pair "  # "gRPC consume, pair 2" and "REST consume, pair 2": measured back to back
REST_GRPC_PAIRS = 5  # the first pair is the scenarios' own "gRPC consume" and "REST consume"
# Measured back to back from the same Python client (bench/holds.py): create + final commit beside Consume.
HOLD_CONSUME, HOLD_CYCLE = "gRPC consume (Python client)", "gRPC hold cycle (create+commit)"


def _grpc_consume_samples(by: dict[str, dict]) -> list[dict]:
    """Every closed-loop gRPC Consume on the 1M-account stack: the scenario's own, the pairs' and
    the 2nd round's. Their median is the run's figure: one 8-second sample on this VM has been
    15% under its siblings (2026-12-03T054742Z: 867 req/s against 888-1,071)."""
    labels = ["gRPC consume"] + [f"gRPC consume{PAIR}{n}" for n in range(2, REST_GRPC_PAIRS + 1)]
    return [by[label] for label in labels + [LARGE_CONSUME + SECOND_ROUND] if label in by]


def _data_size_ratio(by: dict[str, dict]) -> float:
    """Consume/s at 1M accounts over Consume/s at 1k: the medians of every sample of each."""
    small = [by[SMALL_CONSUME]] + [by[k] for k in (SMALL_CONSUME + SECOND_ROUND,) if k in by]
    large = _grpc_consume_samples(by)
    return statistics.median(r["rps"] for r in large) / statistics.median(r["rps"] for r in small)


def _rest_grpc_pairs(by: dict[str, dict]) -> list[tuple[float, float]]:
    """(gRPC Consume/s, REST Consume/s) of each back-to-back pair the run measured."""
    pairs = [(by["gRPC consume"]["rps"], by["REST consume"]["rps"])]
    for pair in range(2, REST_GRPC_PAIRS + 1):
        grpc, rest = by.get(f"gRPC consume{PAIR}{pair}"), by.get(f"REST consume{PAIR}{pair}")
        if grpc and rest:
            pairs.append((grpc["rps"], rest["rps"]))
    return pairs


def holds_ratio(consume: dict, cycle: dict) -> float | None:
    """Hold cycles/s over Consumes/s, measured back to back from the same client."""
    return round(cycle["rps"] / consume["rps"], 3) if consume.get("rps") else None


def holds_line(consume: dict, cycle: dict) -> str:
    return (
        f"holds: {_fmt(cycle['rps'], 0)} hold cycles/s (CreateHold + final CommitHold, {cycle['concurrency']} in flight) "
        f"beside {_fmt(consume['rps'], 0)} Consumes/s from the same client: {holds_ratio(consume, cycle)} x; "
        f"server+envoy CPU {_fmt(cycle.get('server_cpu_per_request_us'), 0)} us per cycle against "
        f"{_fmt(consume.get('server_cpu_per_request_us'), 0)} us per Consume; postgres "
        f"{_fmt(cycle.get('postgres_cpu_per_request_us'), 0)} against {_fmt(consume.get('postgres_cpu_per_request_us'), 0)} us"
    )


def summarize(
    baseline: dict | None, results: list[dict], violations: list[str], sessions: dict | None = None,
    outbound: dict | None = None,
) -> dict:
    """The targets the run can judge: all of them after `make bench` (a scenario missing from a
    full run is a KeyError, as before); after a partial run (`--only`, no pgbench baseline)
    those whose scenarios ran. `sessions`: the metered sessions' figures (bench/holds.py);
    `outbound`: the outbound webhooks' (bench/webhooks_out.py)."""
    by = _by_label(results)
    base = baseline["rps"] if baseline else None
    full = base is not None

    def ran(*labels: str) -> bool:
        return full or all(label in by for label in labels)

    for result in results:
        result["ratio_to_pgbench"] = round(result["rps"] / base, 3) if base else None
    # A refused or failed request is cheaper than a served one: a throughput figure counts
    # only when every request of its scenario succeeded.
    clean = {label: not r.get("errors") and not r.get("dropped") for label, r in by.items()}
    failed = [label for label, ok in clean.items() if not ok]
    targets: dict[str, tuple] = {}
    if base is not None:
        samples = _grpc_consume_samples(by)
        consume_rps = statistics.median(r["rps"] for r in samples)
        targets[f"gRPC Consume >= 0.5 x pgbench (median of {len(samples)} samples)"] = (
            round(consume_rps / base, 3), consume_rps >= 0.5 * base and all(clean[r["label"]] for r in samples))
    if ran("gRPC consume", "REST consume"):
        pairs = _rest_grpc_pairs(by)
        ratio = statistics.median(rest / grpc for grpc, rest in pairs)
        every_clean = all(clean[label] for label in by if label.startswith(("gRPC consume", "REST consume")))
        targets[f"REST Consume >= 0.7 x gRPC Consume (median of {len(pairs)} pairs)"] = (
            round(ratio, 3), ratio >= 0.7 and every_clean)
    if ran("gRPC balance open-loop 50%"):
        balance = by["gRPC balance open-loop 50%"]
        # The value names the CPU steal of its window: the target is judged as before, but a
        # miss with the hypervisor taking a fifth of the cores reads differently from one without.
        steal = balance.get("cpu_steal_percent")
        value = balance["p99_ms"] if steal is None else f"{balance['p99_ms']} (CPU steal {steal}%{_stolen(balance)})"
        targets["GetBalance p99 <= 10 ms at 50% of max"] = (value, balance["p99_ms"] <= 10.0)
    if ran("gRPC batch", "gRPC single_check"):
        batch, single = by["gRPC batch"]["server_cpu_per_request_us"], by["gRPC single_check"]["server_cpu_per_request_us"]
        targets["Batch of 50 costs < 3 single checks (server CPU)"] = (round(batch / single, 2), batch < 3 * single)
    if ran("gRPC consume", SMALL_CONSUME):
        targets["Consume at 1M accounts within 10% of 1k"] = (round(_data_size_ratio(by), 3), _data_size_ratio(by) >= 0.9)
    if WEBHOOKS in by:
        check = by[WEBHOOKS].get("credit_check") or {"ok": False, "problems": "not checked"}
        targets["every webhook PaymentIntent credited exactly once"] = (check["problems"], check["ok"])
    if sessions is not None:
        from bench.holds import sessions_targets

        targets.update(sessions_targets(sessions))
    if outbound is not None:
        from bench.webhooks_out import targets as outbound_targets

        targets.update(outbound_targets(outbound))
    targets["ledger invariants hold after the run"] = (len(violations), not violations)
    targets["every request of every scenario succeeded"] = (", ".join(failed) or "yes", not failed)
    return {name: {"value": value, "met": met} for name, (value, met) in targets.items()}


def webhook_line(result: dict) -> str:
    """The webhook scenario's own figures (after its ledger check)."""
    check = result.get("credit_check") or {}
    verdict = "yes" if check.get("ok") else f"NO ({check.get('problems')} problems: {check.get('samples', [])[:3]})"
    return (
        f"{result['label']}: {_fmt(result.get('rps'), 0)} deliveries/s, {_fmt(result.get('credits_per_s'), 0)} credits/s "
        f"({result.get('credited_payment_intents')} PaymentIntents credited of {result.get('payment_intents')} delivered), "
        f"p50 {_fmt(result.get('p50_ms'))} p99 {_fmt(result.get('p99_ms'))} ms, "
        f"duplicates {_pct(result.get('duplicate_share'))} of deliveries "
        f"({_pct(result.get('verbatim_repeat_share'))} verbatim repeats), answers {result.get('outcomes')}, "
        f"each PaymentIntent credited exactly once: {verdict}"
    )


def _pct(share) -> str:
    return "-" if share is None else f"{share:.0%}"


def _rows(document: dict) -> list[dict]:
    baseline = document.get("baseline")
    return ([baseline | {"label": "pgbench Consume SQL", "ratio_to_pgbench": 1.0}] if baseline else []) + document["results"]


def has_rows(document: dict) -> bool:
    """Whether the run measured any throughput (a table row, a bar to plot)."""
    return bool(_rows(document))


def table(document: dict) -> str:
    rows = _rows(document)
    header = (f"{'scenario':<34} {'req/s':>9} {'x pgbench':>9} {'p50 ms':>8} {'p99 ms':>8} {'p999 ms':>8} "
              f"{'errors':>6} {'client us':>9} {'server us':>9} {'pg us':>7} {'steal %':>7}")
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r['label']:<34} {_fmt(r['rps'], 0):>9} {_fmt(r.get('ratio_to_pgbench'), 2):>9} "
            f"{_fmt(r.get('p50_ms')):>8} {_fmt(r.get('p99_ms')):>8} {_fmt(r.get('p999_ms')):>8} {r.get('errors', 0):>6} "
            f"{_fmt(r.get('client_cpu_per_request_us'), 0):>9} {_fmt(r.get('server_cpu_per_request_us'), 0):>9} "
            f"{_fmt(r.get('postgres_cpu_per_request_us'), 0):>7} {_fmt(r.get('cpu_steal_percent'), 0):>7}"
        )
    for r in rows:
        if r.get("scenario") == "webhooks":
            lines += ["", webhook_line(r)]
    by = _by_label(document["results"])
    if HOLD_CONSUME in by and HOLD_CYCLE in by:
        lines += ["", holds_line(by[HOLD_CONSUME], by[HOLD_CYCLE])]
    if document.get("metered_sessions"):
        from bench.holds import sessions_line

        lines += ["", sessions_line(document["metered_sessions"])]
    if document.get("outbound_webhooks"):
        from bench.webhooks_out import line as outbound_line

        lines += ["", outbound_line(document["outbound_webhooks"])]
    lines.append("")
    lines.append("targets:")
    for name, target in document["summary"].items():
        lines.append(f"  [{'x' if target['met'] else ' '}] {name}: {target['value']}")
    return "\n".join(lines)


def plot(document: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = _rows(document)
    labels = [r["label"] for r in rows]
    figure, (throughput, latency) = plt.subplots(1, 2, figsize=(16, 7))
    throughput.barh(labels, [r["rps"] for r in rows], color="tab:blue")
    throughput.set_xlabel("requests / s")
    throughput.invert_yaxis()
    throughput.set_title("Throughput (closed loop unless open-loop)")
    positions = range(len(rows))
    latency.barh([p - 0.2 for p in positions], [r.get("p50_ms") or 0 for r in rows], height=0.4, label="p50")
    latency.barh([p + 0.2 for p in positions], [r.get("p99_ms") or 0 for r in rows], height=0.4, label="p99")
    latency.set_yticks(list(positions), labels)
    latency.invert_yaxis()
    latency.set_xlabel("ms")
    latency.set_title("Latency")
    latency.legend()
    figure.suptitle(f"billing bench {document['started_at']}")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
