"""`billing-dev run` supervises the embedded PostgreSQL it started: `kill -9` of the postmaster and
the database is back on the same data directory and port, and the server answers again, with no
`billing migrate`. A PostgreSQL of this test's own (EMBEDDED_PG_DATA_DIR, EMBEDDED_PG_PORT): the
suite's shared one must not be killed."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import grpc
import pytest

from devstack import embedded_postgres
from billing.v1 import accounts_pb2, billing_service_pb2, billing_service_pb2_grpc
from testkit.processes import VENV_BIN, free_port, stop_process, tail, wait_while_running

START_WITHIN_SECONDS = 120.0  # initdb, migrations, Envoy
BACK_WITHIN_SECONDS = 60.0


def _balance_answers(grpc_port: int, user: str) -> bool:
    """CreateAccount (idempotent) and GetBalance: both read and write the database."""
    with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        stub = billing_service_pb2_grpc.BillingServiceStub(channel)
        try:
            stub.CreateAccount(accounts_pb2.CreateAccountRequest(user_id=user), timeout=3)
            stub.GetBalance(billing_service_pb2.GetBalanceRequest(user_id=user), timeout=3)
        except grpc.RpcError:
            return False
    return True


def _postmaster_alive(data_dir: Path, not_pid: int) -> bool:
    pid = embedded_postgres.postmaster_pid(data_dir)
    if pid is None or pid == not_pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_a_killed_postmaster_is_restarted_on_its_port_and_the_server_answers_again():
    # Not under pytest's tmp_path: the server's account (when root) must traverse its parents.
    folder = Path(tempfile.mkdtemp(prefix="billing-run-postgres-"))
    data_dir, pg_port, grpc_port = folder / "postgres", free_port(), free_port()
    log = folder / "billing-run.log"
    env = {name: value for name, value in os.environ.items()
           if name != "DATABASE_URL" and not name.startswith("STRIPE_")} | {
        "EMBEDDED_PG_DATA_DIR": str(data_dir), "EMBEDDED_PG_PORT": str(pg_port), "EMBEDDED_PG_SHARED_BUFFERS": "128MB",
        "BILLING_GRPC_PORT": str(grpc_port), "BILLING_REST_PORT": str(free_port()),
        "BILLING_ADMIN_REST_PORT": str(free_port()),
        "BILLING_STRIPE_STANDIN_PORT": str(free_port()), "BILLING_METRICS_PORT": "0", "BILLING_DEMO_PORT": "0",
        "BILLING_AUTHENTICATION": "off", "BILLING_LOG_LEVEL": "ERROR", "PYTHONUNBUFFERED": "1",
    }
    with open(log, "wb") as out:
        run = subprocess.Popen([str(VENV_BIN / "billing-dev"), "run"], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_while_running(lambda: _balance_answers(grpc_port, "before"), START_WITHIN_SECONDS, "serving", run, log)
        killed = embedded_postgres.postmaster_pid(data_dir)
        assert killed is not None
        os.kill(killed, signal.SIGKILL)

        wait_while_running(lambda: _postmaster_alive(data_dir, not_pid=killed), BACK_WITHIN_SECONDS, "a new postmaster", run, log)
        assert embedded_postgres.postmaster_pid(data_dir) != killed
        assert (data_dir / "postmaster.pid").read_text().splitlines()[3] == str(pg_port), "on its own port"
        wait_while_running(lambda: _balance_answers(grpc_port, "after"), BACK_WITHIN_SECONDS, "serving again", run, log)
        assert "restarting embedded PostgreSQL" in log.read_text(errors="replace")
    finally:
        stop_process(run, timeout=30)
        subprocess.run([str(VENV_BIN / "python"), "-m", "devstack.embedded_postgres", "stop", "--data-dir",
                        str(data_dir)], capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)
