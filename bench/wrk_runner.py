"""Runs wrk (closed loop, REST through Envoy) with the scripts in bench/wrk/ and parses their result.

    run_wrk("http://127.0.0.1:8080", "balance", accounts=200, offset=0, duration_s=10,
            threads=1, connections=32) -> dict

The scripts print one `WRK_JSON {...}` line from wrk's done() hook; this module parses it and
adds client_cpu_s: the user+sys CPU of the wrk process itself, read with os.wait4() on that
child (exact, unaffected by any other child of the caller).

CLI: python -m bench.wrk_runner --url http://127.0.0.1:8080 --scenario balance --accounts 200 \
        --duration 10 [--threads 1] [--connections 32] [--offset 0] [--warmup 0] [--out r.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

WRK_DIR = Path(__file__).resolve().parent / "wrk"
SCENARIOS = ("consume", "balance", "batch", "single_check")
MARKER = "WRK_JSON "


def parse_wrk_output(text: str) -> dict:
    """The JSON of the last line starting with `WRK_JSON ` in wrk's output; ValueError if none."""
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith(MARKER):
            try:
                return json.loads(line[len(MARKER) :])
            except json.JSONDecodeError as exc:
                raise ValueError(f"bad WRK_JSON line {line!r}: {exc}") from None
    raise ValueError(f"no {MARKER.strip()} line in wrk output:\n{text[-4000:]}")


def wrk_command(
    wrk: str, base_url: str, scenario: str, duration_s: float, threads: int, connections: int, timeout_s: float
) -> list[str]:
    if scenario not in SCENARIOS:
        raise ValueError(f"scenario must be one of {SCENARIOS}, got {scenario!r}")
    if threads < 1 or connections < threads:
        raise ValueError("need threads >= 1 and connections >= threads (wrk gives each thread connections/threads)")
    url = base_url.rstrip("/") + "/"
    return [
        wrk, "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(duration_s))}s",
        "--timeout", f"{max(1, round(timeout_s))}s", "-s", str(WRK_DIR / f"{scenario}.lua"), url,
    ]  # fmt: skip


def _run_once(cmd: list[str], env: dict, deadline_s: float) -> tuple[str, int, float]:
    """Runs cmd; returns (stdout+stderr, exit code, user+sys CPU of that child in seconds)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    killer = threading.Timer(deadline_s, proc.kill)
    killer.start()
    try:
        output = proc.stdout.read()  # EOF when wrk exits
        proc.stdout.close()
        _, status, usage = os.wait4(proc.pid, 0)  # reaps the child and returns its own rusage
    finally:
        killer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)  # tells Popen it has been reaped
    return output, proc.returncode, usage.ru_utime + usage.ru_stime


def run_wrk(
    base_url: str,
    scenario: str,
    accounts: int,
    offset: int,
    duration_s: float,
    threads: int,
    connections: int,
    *,
    warmup_s: float = 0.0,
    timeout_s: float = 10.0,
    run_id: str | None = None,
    wrk: str | None = None,
) -> dict:
    """wrk -t T -c C -d Ds --timeout 10s -s bench/wrk/<scenario>.lua URL, parsed, plus client CPU.

    base_url is Envoy's, e.g. http://127.0.0.1:8080. warmup_s > 0 first runs an unmeasured wrk
    for that long (wrk has no warmup of its own; -d is whole seconds).
    """
    wrk = wrk or shutil.which("wrk") or "/usr/bin/wrk"
    run_id = run_id or "wrk" + os.urandom(5).hex()
    env = dict(os.environ)
    env.update(
        BENCH_ACCOUNTS=str(accounts),
        BENCH_ACCOUNT_OFFSET=str(offset),
        BENCH_RUN_ID=run_id,
        BENCH_WRK_DIR=str(WRK_DIR),
    )
    if warmup_s > 0:
        env_warm = env | {"BENCH_RUN_ID": run_id + "w"}
        cmd = wrk_command(wrk, base_url, scenario, warmup_s, threads, connections, timeout_s)
        _run_once(cmd, env_warm, warmup_s + timeout_s + 30)
    cmd = wrk_command(wrk, base_url, scenario, duration_s, threads, connections, timeout_s)
    output, code, cpu = _run_once(cmd, env, duration_s + timeout_s + 30)
    if code != 0:
        raise RuntimeError(f"wrk exited with {code}: {' '.join(cmd)}\n{output[-4000:]}")
    result = parse_wrk_output(output)
    requests = result.get("requests") or 0
    result.update(
        {
            "tool": "wrk",
            "protocol": "rest",
            "scenario": scenario,
            "mode": "closed",
            "concurrency": connections,
            "threads": threads,
            "connections": connections,
            "accounts": accounts,
            "account_offset": offset,
            "client_cpu_s": round(cpu, 3),
            "client_cpu_per_request_us": round(cpu / requests * 1e6, 1) if requests else None,
            "run_id": run_id,
            "command": " ".join(cmd),
        }
    )
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.wrk_runner", description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True, help="Envoy base URL, e.g. http://127.0.0.1:8080")
    p.add_argument("--scenario", choices=SCENARIOS, required=True)
    p.add_argument("--accounts", type=int, required=True)
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--duration", type=float, required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--warmup", type=float, default=0.0)
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--out")
    a = p.parse_args(argv)
    result = run_wrk(
        a.url, a.scenario, a.accounts, a.offset, a.duration, a.threads, a.connections,
        warmup_s=a.warmup, timeout_s=a.timeout,
    )  # fmt: skip
    text = json.dumps(result)
    if a.out:
        Path(a.out).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
