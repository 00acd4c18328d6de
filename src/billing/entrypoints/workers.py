"""Runs several server processes on one port (SO_REUSEPORT): one Python process per core.

Each worker is a complete, independent server (its own event loop and connection pool),
the same as a replica on another machine; the kernel spreads connections between them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from billing.settings import Settings


def run_workers(settings: Settings) -> int:
    # Each worker migrates when asked (under Alembic's advisory lock, as replicas do), once the
    # database answers: the supervisor itself never waits for the database.
    env = os.environ | {"BILLING_WORKERS": "1"}
    server = settings.server
    assert not server.worker_ports or len(server.worker_ports) == server.workers, "one private port per worker"
    private_ports = server.worker_ports or (0,) * server.workers
    # Each worker has its own metrics registry, so its own /metrics port: base, base + 1, ...
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "billing.entrypoints.server"],
            env=env | {
                "BILLING_WORKER_PORT": str(port),
                "BILLING_METRICS_PORT": str(settings.metrics.port + index if settings.metrics.port else 0),
            },
        )
        for index, port in enumerate(private_ports)
    ]

    stop_requested = []

    def forward(signum, _frame):
        stop_requested.append(signum)
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    # A worker that dies takes the others down: the supervisor's own supervisor
    # (systemd, k8s, make run) restarts the whole set.
    while all(worker.poll() is None for worker in workers):
        time.sleep(0.2)
    forward(signal.SIGTERM, None)
    deadline = time.monotonic() + settings.server.shutdown_grace_seconds + 5
    for worker in workers:
        try:
            worker.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
    return max(_exit_code(worker.returncode, stop_requested) for worker in workers)


def _exit_code(returncode: int | None, stop_requested: list[int]) -> int:
    """A worker that we asked to stop and that died of that very signal (it was still
    starting, before its handlers were installed) stopped cleanly."""
    if returncode is not None and returncode < 0 and -returncode in stop_requested:
        return 0
    return abs(returncode or 0)
