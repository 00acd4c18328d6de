"""Starting and stopping the real billing server (and friends) as child processes."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = REPO_ROOT / ".venv" / "bin"
PYTHON = VENV_BIN / "python"
SERVER_START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> int:
    """SIGTERM, then SIGKILL if it has not exited within timeout; returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)
    return proc.returncode


def tail(path: Path, limit: int = 20_000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "<no output>"
    return text[-limit:] or "<empty>"


def wait_while_running(condition, seconds: float, what: str, run: subprocess.Popen, log: Path) -> None:
    """Polls `condition` until it holds; fails with the log's tail if `run` exits first or `seconds` pass."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert run.poll() is None, f"{run.args[0]} exited ({run.returncode}) before {what}:\n{tail(log)}"
        assert time.monotonic() < deadline, f"{what} within {seconds:.0f}s:\n{tail(log)}"
        time.sleep(0.1)


def start_failed(name: str, proc: subprocess.Popen, why: str, logs: list[Path]) -> None:
    stop_process(proc, timeout=5)
    output = "\n".join(f"----- {log} -----\n{tail(log)}" for log in logs)
    print(f"{name} did not start: {why}\n{output}", file=sys.stderr)
    pytest.fail(f"{name} did not start: {why}\n{output}", pytrace=False)


def answers_200(port: int, path: str) -> bool:
    """One GET on 127.0.0.1:port: True when it answers 200 (a stack still starting answers nothing)."""
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
    try:
        connection.request("GET", path)
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def health_serving(target: str) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
        except grpc.RpcError:
            return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


@dataclass(frozen=True)
class BillingServer:
    process: subprocess.Popen
    grpc_port: int
    grpc_target: str
    stdout_log: Path
    stderr_log: Path
    metrics_port: int = 0  # its Prometheus /metrics (with BILLING_WORKERS=N: the first worker's)


def start_billing_server(
    database_url: str, logs: Path, *, migrate: bool = True, extra_env: dict[str, str] | None = None
) -> BillingServer:
    """`python -m billing.entrypoints.server` on a free port; returns once its health check answers SERVING.

    BILLING_E2E_SERVER_CMD (shell words) replaces the command, e.g. to run against a stub.
    """
    port, metrics_port = free_port(), free_port()
    target = f"127.0.0.1:{port}"
    command = os.environ.get("BILLING_E2E_SERVER_CMD")
    argv = shlex.split(command) if command else [str(PYTHON), "-m", "billing.entrypoints.server"]
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "BILLING_GRPC_PORT": str(port),
        "BILLING_MIGRATE_ON_START": "1" if migrate else "0",
        "PYTHONUNBUFFERED": "1",
        # Servers of one test run side by side: each its own metrics port (not the default 9464).
        "BILLING_METRICS_PORT": str(metrics_port),
        # The tests' webhook receivers listen on loopback (production refuses it: SSRF).
        "BILLING_WEBHOOK_ALLOW_PRIVATE": os.environ.get("BILLING_WEBHOOK_ALLOW_PRIVATE", "1"),
        **(extra_env or {}),
    }
    logs.mkdir(parents=True, exist_ok=True)
    stdout_log, stderr_log = logs / f"server-{port}.out", logs / f"server-{port}.err"
    with open(stdout_log, "wb") as out, open(stderr_log, "wb") as err:
        proc = subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdout=out, stderr=err)
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while not health_serving(target):
        if proc.poll() is not None:
            start_failed("billing server", proc, f"exited with code {proc.returncode}", [stderr_log, stdout_log])
        if time.monotonic() > deadline:
            start_failed(
                "billing server", proc, f"no SERVING health check on {target} within {SERVER_START_TIMEOUT:.0f}s",
                [stderr_log, stdout_log],
            )
        time.sleep(0.2)
    return BillingServer(proc, port, target, stdout_log, stderr_log, int(env["BILLING_METRICS_PORT"]))
