"""Tables, ratios, targets and the plot of a benchmark run."""

from __future__ import annotations

import itertools
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
# Measured back to back from the same Python client (bench/holds.py): create + final commit beside Consume.
HOLD_CONSUME, HOLD_CYCLE = "gRPC consume (Python client)", "gRPC hold cycle (create+commit)"

# Issue 24's throughput targets are judged on interleaved rounds: each round is pgbench's
# one-Consume transactions (the stack idle), gRPC Consume, REST Consume and ConsumeStream, back to
# back on one 1M-account stack. Each ratio is taken inside its round (the same minute of this VM:
# one 8-second sample moved by 15-20% between minutes, a pgbench run up front against samples
# taken minutes later said as much about the VM as about the code); the target's value is the
# median of the rounds' ratios with their spread (min-max) beside it, and the CPU steal of each
# window is listed with it.
ROUNDS = 3
ROUND = ", round "
PGBENCH, GRPC_CONSUME, REST_CONSUME, STREAM_CONSUME = (
    "pgbench Consume SQL", "gRPC consume", "REST consume", "gRPC ConsumeStream")
ROUND_PARTS = (PGBENCH, GRPC_CONSUME, REST_CONSUME, STREAM_CONSUME)
# What each part is called in the rounds' lines and the targets' steal lists.
SHORT = {PGBENCH: "pgbench", GRPC_CONSUME: "gRPC", REST_CONSUME: "REST", STREAM_CONSUME: "ConsumeStream"}
NAMES = {PGBENCH: "pgbench", GRPC_CONSUME: "gRPC Consume", REST_CONSUME: "REST Consume", STREAM_CONSUME: "ConsumeStream"}


def round_label(part: str, number: int) -> str:
    """"gRPC consume, round 2"; the outbound scenario's "gRPC consume, webhook endpoint, round 1" is not one."""
    return f"{part}{ROUND}{number}"


def measured_rounds(by: dict[str, dict]) -> list[dict[str, dict]]:
    """Each round's rows by part, in order (a part the round did not measure is absent)."""
    found: list[dict[str, dict]] = []
    for number in itertools.count(1):
        parts = {part: by[round_label(part, number)] for part in ROUND_PARTS if round_label(part, number) in by}
        if not parts:
            return found
        found.append(parts)
    raise AssertionError("unreachable")


def median_round(results: list[dict], part: str = PGBENCH) -> dict | None:
    """The row of the round whose `part` measured the median figure (the lower one of an even count):
    the document's `baseline` is the median pgbench round."""
    rows = [parts[part] for parts in measured_rounds(_by_label(results)) if part in parts]
    if not rows:
        return None
    ordered = sorted(rows, key=lambda r: r["rps"])
    return ordered[(len(ordered) - 1) // 2]


def round_ratios(by: dict[str, dict], numerator: str, denominator: str) -> list[dict]:
    """numerator/denominator inside each round that measured both, with each window's steal."""
    ratios = []
    for number, parts in enumerate(measured_rounds(by), start=1):
        top, bottom = parts.get(numerator), parts.get(denominator)
        if top and bottom and bottom.get("rps"):
            ratios.append({
                "round": number, "ratio": round(top["rps"] / bottom["rps"], 3),
                "steal": (bottom.get("cpu_steal_percent"), top.get("cpu_steal_percent")),
                "clean": _clean(top) and _clean(bottom),
            })
    return ratios


def median_with_spread(ratios: list[float]) -> str:
    """"0.92 (0.85-1.01)": the median, and the lowest and highest beside it."""
    return f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})"


def _round_target(by: dict[str, dict], numerator: str, denominator: str, at_least: float) -> tuple[str, dict] | None:
    ratios = round_ratios(by, numerator, denominator)
    if not ratios:
        return None
    values = [r["ratio"] for r in ratios]
    median = statistics.median(values)
    name = f"{NAMES[numerator]} >= {at_least} x {NAMES[denominator]} (median of {len(ratios)} rounds, min-max)"
    steal = ", ".join("/".join(_fmt(s) for s in r["steal"]) for r in ratios)
    return name, {
        "value": median_with_spread(values), "met": median >= at_least and all(r["clean"] for r in ratios),
        "median": round(median, 3), "ratios": values,
        "steal": f"CPU steal % per window ({SHORT[denominator]}/{SHORT[numerator]}, by round): {steal}",
    }


def _clean(result: dict) -> bool:
    """A refused or failed request is cheaper than a served one: a throughput figure counts only
    when every request of its scenario succeeded."""
    return not result.get("errors") and not result.get("dropped")


def _grpc_consume_samples(by: dict[str, dict]) -> list[dict]:
    """Every closed-loop gRPC Consume on the 1M-account stack: the rounds' and the 2nd round's.
    Their median is the run's figure: one 8-second sample on this VM has been 15% under its
    siblings (2026-12-03T054742Z: 867 req/s against 888-1,071)."""
    rounds = [parts[GRPC_CONSUME] for parts in measured_rounds(by) if GRPC_CONSUME in parts]
    return rounds + [by[label] for label in (LARGE_CONSUME + SECOND_ROUND,) if label in by]


def _data_size_ratio(by: dict[str, dict]) -> float:
    """Consume/s at 1M accounts over Consume/s at 1k: the medians of every sample of each."""
    small = [by[label] for label in (SMALL_CONSUME, SMALL_CONSUME + SECOND_ROUND) if label in by]
    large = _grpc_consume_samples(by)
    return statistics.median(r["rps"] for r in large) / statistics.median(r["rps"] for r in small)


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


GRPC_TO_PGBENCH, STREAM_TO_PGBENCH, REST_TO_GRPC = 1.0, 2.5, 0.8
BALANCE_P99_MS = 5.0
DATA_SIZE = 0.9
WEBHOOK_DELIVERIES_PER_S = 1000.0


def summarize(
    baseline: dict | None, results: list[dict], violations: list[str], sessions: dict | None = None,
    outbound: dict | None = None, *, full: bool = False,
) -> dict:
    """The targets the run can judge: all of them after `make bench` (`full`: a scenario missing
    is a KeyError); after a partial run (`--only`) those whose scenarios ran. The throughput
    targets against pgbench and REST against gRPC are judged on the rounds (ROUNDS). `baseline`:
    the median pgbench round, the "x pgbench" of rows outside the rounds (a round's rows are
    against their own round's pgbench). `sessions`: the metered sessions' figures
    (bench/holds.py); `outbound`: the outbound webhooks' (bench/webhooks_out.py)."""
    by = _by_label(results)
    rounds = measured_rounds(by)
    if baseline is None:
        baseline = median_round(results)
    base = baseline["rps"] if baseline else None

    def ran(*labels: str) -> bool:
        return full or all(label in by for label in labels)

    own_pgbench = {row["label"]: parts.get(PGBENCH) for parts in rounds for row in parts.values()}
    for result in results:
        reference = own_pgbench[result["label"]] if result["label"] in own_pgbench else baseline
        result["ratio_to_pgbench"] = (
            round(result["rps"] / reference["rps"], 3) if reference and reference.get("rps") else None)
    failed = [label for label, r in by.items() if not _clean(r)]
    targets: dict[str, dict] = {}
    if full or rounds:
        for numerator, denominator, at_least in (
            (GRPC_CONSUME, PGBENCH, GRPC_TO_PGBENCH), (STREAM_CONSUME, PGBENCH, STREAM_TO_PGBENCH),
            (REST_CONSUME, GRPC_CONSUME, REST_TO_GRPC),
        ):
            judged = _round_target(by, numerator, denominator, at_least)
            if judged is None:
                if full:
                    raise KeyError(f"no round measured {numerator} and {denominator}")
                continue
            targets[judged[0]] = judged[1]
    if ran("gRPC balance open-loop 50%"):
        balance = by["gRPC balance open-loop 50%"]
        # The value names the CPU steal of its window: the target is judged as before, but a
        # miss with the hypervisor taking a fifth of the cores reads differently from one without.
        steal = balance.get("cpu_steal_percent")
        value = balance["p99_ms"] if steal is None else f"{balance['p99_ms']} (CPU steal {steal}%{_stolen(balance)})"
        targets[f"GetBalance p99 <= {BALANCE_P99_MS:g} ms at 50% of max"] = {
            "value": value, "met": balance["p99_ms"] <= BALANCE_P99_MS}
    if ran("gRPC batch", "gRPC single_check"):
        batch, single = by["gRPC batch"]["server_cpu_per_request_us"], by["gRPC single_check"]["server_cpu_per_request_us"]
        targets["Batch of 50 costs < 3 single checks (server CPU)"] = {
            "value": round(batch / single, 2), "met": batch < 3 * single}
    if ran(SMALL_CONSUME) and _grpc_consume_samples(by):
        ratio = _data_size_ratio(by)
        targets["Consume at 1M accounts within 10% of 1k"] = {"value": round(ratio, 3), "met": ratio >= DATA_SIZE}
    if ran(WEBHOOKS):
        webhooks = by[WEBHOOKS]
        check = webhooks.get("credit_check") or {"ok": False, "problems": "not checked"}
        targets["every webhook PaymentIntent credited exactly once"] = {"value": check["problems"], "met": check["ok"]}
        steal = webhooks.get("cpu_steal_percent")
        targets[f"webhook deliveries >= {WEBHOOK_DELIVERIES_PER_S:,.0f}/s"] = {
            "value": webhooks["rps"] if steal is None else f"{webhooks['rps']:,.0f} (CPU steal {steal}%)",
            "met": webhooks["rps"] >= WEBHOOK_DELIVERIES_PER_S and _clean(webhooks)}
    if sessions is not None:
        from bench.holds import sessions_targets

        targets.update(_entries(sessions_targets(sessions)))
    if outbound is not None:
        from bench.webhooks_out import targets as outbound_targets

        targets.update(_entries(outbound_targets(outbound)))
    targets["ledger invariants hold after the run"] = {"value": len(violations), "met": not violations}
    targets["every request of every scenario succeeded"] = {"value": ", ".join(failed) or "yes", "met": not failed}
    return targets


def _entries(targets: dict[str, tuple]) -> dict[str, dict]:
    return {name: {"value": value, "met": met} for name, (value, met) in targets.items()}


def rounds_lines(results: list[dict]) -> list[str]:
    """One line a round: each part's figure, its ratio inside the round and its window's steal."""
    rounds = measured_rounds(_by_label(results))
    if not rounds:
        return []
    lines = ["rounds (back to back on one stack; ratios inside each round; CPU steal of each window):"]
    for number, parts in enumerate(rounds, start=1):
        pgbench, grpc = parts.get(PGBENCH), parts.get(GRPC_CONSUME)
        figures = []
        for part, row in parts.items():
            against = {GRPC_CONSUME: pgbench, STREAM_CONSUME: pgbench, REST_CONSUME: grpc}.get(part)
            ratio = (f" {row['rps'] / against['rps']:.2f}x {SHORT[PGBENCH if against is pgbench else GRPC_CONSUME]}"
                     if against and against.get("rps") else "")
            figures.append(f"{SHORT[part]} {_fmt(row['rps'], 0)}/s{ratio} (steal {_fmt(row.get('cpu_steal_percent'))}%)")
        lines.append(f"  round {number}: " + ", ".join(figures))
    return lines


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
    """The results; before the rounds (and in older documents) the single pgbench baseline came first."""
    baseline, results = document.get("baseline"), document["results"]
    if not baseline or any(r.get("protocol") == "sql" for r in results):
        return results
    return [baseline | {"label": PGBENCH, "ratio_to_pgbench": 1.0}] + results


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
            f"{_fmt(r.get('postgres_cpu_per_request_us'), 0):>7} {_fmt(r.get('cpu_steal_percent')):>7}"
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
    rounds = rounds_lines(document["results"])
    if rounds:
        lines += [""] + rounds
    lines.append("")
    lines.append("targets:")
    for name, target in document["summary"].items():
        steal = f"; {target['steal']}" if target.get("steal") else ""
        lines.append(f"  [{'x' if target['met'] else ' '}] {name}: {target['value']}{steal}")
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
