"""`python -m bench.compare_revisions REV`: the server at REV against the working tree, interleaved.

Figures of `make bench` move 30-50% between identical runs on a small shared VM, so "within
noise of before" cannot be judged against a number measured on another day. This runs both
servers on the same machine, database and load generator, alternating (A B B A ...), and
prints each run and the medians. Only the server process changes: REV is checked out as a
detached git worktree under .data/revisions/ and put first on the server's PYTHONPATH; the
load generator, Envoy and the dataset are this tree's. REV must read the current schema
(every column it knows must still exist), which holds for revisions after migration 0003.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from bench import run as bench
from bench.stack import running_stack

ROOT = Path(__file__).resolve().parents[1]
CHECKOUTS = ROOT / ".data" / "revisions"
SCENARIOS = ("consume", "balance")
WORKING_TREE = "working tree"


def checkout(revision: str) -> Path:
    commit = subprocess.run(
        ["git", "rev-parse", "--verify", f"{revision}^{{commit}}"], cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout.strip()
    path = CHECKOUTS / commit[:12]
    if not path.exists():
        CHECKOUTS.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "worktree", "add", "--detach", str(path), commit], cwd=ROOT, check=True, capture_output=True)
    return path


@contextmanager
def server_code(source: Path | None):
    """The server processes started inside import billing (and gen) from `source`."""
    before = os.environ.get("PYTHONPATH")
    if source is not None:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(source / "src"), str(source), str(ROOT)])
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = before


def measure_once(label: str, source: Path | None, url: str, accounts: int, seconds: float, logs: Path) -> dict:
    figures = {}
    with server_code(source), running_stack(url, 1, logs) as (target, _base, pids):
        for scenario in SCENARIOS:
            result = bench.measure(
                f"{label}: gRPC {scenario}", pids,
                lambda s=scenario: bench.grpc_load(target, s, accounts, seconds, concurrency=16),
                warmup=lambda s=scenario: bench.grpc_load(target, s, accounts, bench.WARMUP_S, concurrency=16),
                database_url=url,
            )
            figures[scenario] = {"rps": result["rps"], "server_cpu_us": result["server_cpu_per_request_us"]}
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compare_revisions", description=__doc__.splitlines()[0])
    parser.add_argument("revision", help="the 'before' revision, e.g. a commit or tag")
    parser.add_argument("--rounds", type=int, default=2, help="pairs of runs (each pair in alternating order)")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--accounts", type=int, default=bench.LARGE, choices=(bench.LARGE, bench.SMALL))
    args = parser.parse_args(argv)
    url = bench.dataset_url(bench.server_url(), args.accounts)
    sides = {args.revision: checkout(args.revision), WORKING_TREE: None}
    runs: dict[str, list[dict]] = {name: [] for name in sides}
    logs = ROOT / ".data" / "bench-logs" / "compare"
    for round_number in range(args.rounds):
        order = list(sides) if round_number % 2 == 0 else list(reversed(sides))
        for name in order:
            runs[name].append(
                measure_once(name, sides[name], url, args.accounts, args.seconds, logs / f"{round_number}-{len(runs[name])}")
            )
    print("\nmedians over", args.rounds, "runs each:")
    for name, results in runs.items():
        line = "  ".join(
            f"{s} {statistics.median(r[s]['rps'] for r in results):7,.0f} req/s"
            f" ({statistics.median(r[s]['server_cpu_us'] for r in results):5,.0f} us server CPU)"
            for s in SCENARIOS
        )
        print(f"  {name:>14}: {line}")
    print(json.dumps(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
