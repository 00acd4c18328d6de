"""The benchmark's targets: a throughput figure counts only when its requests succeeded."""

from __future__ import annotations

from bench import report

LABELS = (
    "gRPC consume", "REST consume", "gRPC balance open-loop 50%", "gRPC batch", "gRPC single_check",
    "gRPC Consume @1k accounts",
)


def results(**errors: int) -> list[dict]:
    return [
        {"label": label, "rps": 1000.0, "p99_ms": 5.0, "server_cpu_per_request_us": 500.0,
         "errors": errors.get(label.replace(" ", "_"), 0)}
        for label in LABELS
    ]


def test_targets_are_met_by_a_clean_run():
    summary = report.summarize({"rps": 1800.0}, results(), [])

    assert all(target["met"] for target in summary.values()), summary


def test_a_failing_request_voids_the_throughput_target_it_inflates():
    summary = report.summarize({"rps": 1800.0}, results(gRPC_consume=3), [])

    assert not summary["gRPC Consume >= 0.5 x pgbench"]["met"]
    assert not summary["every request of every scenario succeeded"]["met"]
    assert summary["every request of every scenario succeeded"]["value"] == "gRPC consume"


def test_data_size_is_judged_on_every_round_of_both_datasets():
    rounds = results() + [
        {"label": "gRPC Consume @1k accounts, 2nd round", "rps": 1000.0},
        {"label": "gRPC Consume @1M accounts, 2nd round", "rps": 700.0},
    ]

    target = report.summarize({"rps": 1800.0}, rounds, [])["Consume at 1M accounts within 10% of 1k"]

    assert target == {"value": 0.85, "met": False}  # (1000 + 700) / 2 against (1000 + 1000) / 2
