"""`EMBEDDED_PG_STANDBY=1 billing-dev run`: a hot standby of the embedded PostgreSQL, made with
pg_basebackup next to its data directory, and the server reading from it (its pool's connections on
the standby) while calls keep answering. A PostgreSQL of this test's own, as test_run_supervision's."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import grpc
import psycopg
import pytest

from devstack import embedded_postgres
from billing.settings import libpq_url
from billing.v1 import accounts_pb2, billing_service_pb2, billing_service_pb2_grpc
from testkit.processes import VENV_BIN, free_port, stop_process, tail, wait_while_running

START_WITHIN_SECONDS = 120.0  # initdb, the base backup, migrations, Envoy


def _balances_answer(grpc_port: int, user: str) -> bool:
    with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        stub = billing_service_pb2_grpc.BillingServiceStub(channel)
        try:
            stub.CreateAccount(accounts_pb2.CreateAccountRequest(user_id=user), timeout=3)
            for _ in range(20):
                stub.GetBalance(billing_service_pb2.GetBalanceRequest(user_id=user), timeout=3)
        except grpc.RpcError:
            return False
    return True


def _server_reads_on(standby_url: str) -> bool:
    """The server's pool holds connections to the standby's `billing` database."""
    try:
        with psycopg.connect(libpq_url(standby_url), autocommit=True) as standby:
            in_recovery, connected = standby.execute(
                "SELECT pg_is_in_recovery(), count(*) FILTER (WHERE datname = 'billing' AND pid <> pg_backend_pid()) "
                "FROM pg_stat_activity").fetchone()
    except psycopg.OperationalError:
        return False
    return bool(in_recovery) and connected > 0


@pytest.mark.slow
def test_make_run_starts_a_standby_and_the_server_reads_from_it():
    folder = Path(tempfile.mkdtemp(prefix="billing-run-standby-"))
    os.chmod(folder, 0o755)
    data_dir, grpc_port = folder / "postgres", free_port()
    log = folder / "billing-run.log"
    env = {name: value for name, value in os.environ.items()
           if name not in ("DATABASE_URL", "DATABASE_READ_URL") and not name.startswith("STRIPE_")} | {
        "EMBEDDED_PG_DATA_DIR": str(data_dir), "EMBEDDED_PG_PORT": str(free_port()), "EMBEDDED_PG_SHARED_BUFFERS": "128MB",
        "EMBEDDED_PG_STANDBY": "1",
        "BILLING_GRPC_PORT": str(grpc_port), "BILLING_REST_PORT": str(free_port()),
        "BILLING_ADMIN_REST_PORT": str(free_port()),
        "BILLING_STRIPE_STANDIN_PORT": str(free_port()), "BILLING_METRICS_PORT": "0", "BILLING_DEMO_PORT": "0",
        "BILLING_AUTHENTICATION": "off", "BILLING_LOG_LEVEL": "ERROR", "PYTHONUNBUFFERED": "1",
    }
    standby_dir = embedded_postgres.standby_data_dir(data_dir)
    with open(log, "wb") as out:
        run = subprocess.Popen([str(VENV_BIN / "billing-dev"), "run"], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_while_running(lambda: _balances_answer(grpc_port, "standby-user"), START_WITHIN_SECONDS, "serving", run, log)
        standby_url = embedded_postgres.url(int((standby_dir / "postmaster.pid").read_text().splitlines()[3]),
                                            "billing", embedded_postgres.password(data_dir))
        wait_while_running(lambda: _server_reads_on(standby_url), 30, "the server's connections on the standby", run, log)
        assert "reads on the standby" in log.read_text(errors="replace")
    finally:
        stop_process(run, timeout=30)
        for directory in (standby_dir, data_dir):
            subprocess.run([str(VENV_BIN / "python"), "-m", "devstack.embedded_postgres", "stop", "--data-dir",
                            str(directory)], capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)
