"""Read-your-writes on two real server processes reading a hot standby (DATABASE_READ_URL): each
Consume answered by one server is seen by a GetBalance sent at once to the other, and killing the
standby (-9) mid-load fails no call. A primary and standby of the test's own, in a temporary
directory, from the embedded binaries."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import psycopg
import pytest

from billing.adapters.db.migrate import upgrade_to_head
from billing.settings import libpq_url
from billing.v1 import accounts_pb2, billing_service_pb2, billing_service_pb2_grpc, consumption_pb2
from devstack import embedded_postgres
from testkit.processes import start_billing_server, stop_process

LOOPS = 8
PAIRS_PER_LOOP = 250  # 2,000 write-then-read pairs in all
KILL_AFTER_PAIRS = 800
CALL_TIMEOUT_SECONDS = 10


def _database(server_url: str, name: str) -> str:
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def _routed_reads(metrics_port: int, source: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as answer:
        for line in answer.read().decode().splitlines():
            if line.startswith(f'billing_db_routed_reads_total{{source="{source}"}}'):
                return float(line.split()[-1])
    return 0.0


@pytest.mark.slow
def test_two_servers_on_a_standby_never_answer_a_stale_balance_and_survive_its_death(tmp_path):
    root = Path(tempfile.mkdtemp(prefix="billing-e2e-replica-"))
    os.chmod(root, 0o755)
    primary_dir, standby_dir = root / "primary", root / "standby"
    servers = []
    try:
        server = embedded_postgres.start(primary_dir, port=embedded_postgres._free_port(), shared_buffers="128MB")
        with psycopg.connect(libpq_url(server), autocommit=True) as admin:
            admin.execute('CREATE DATABASE "billing"')
        primary_url = _database(server, "billing")
        upgrade_to_head(primary_url)
        standby_url = _database(embedded_postgres.start_standby(primary_dir, standby_dir, shared_buffers="128MB"), "billing")
        replica_env = {"DATABASE_READ_URL": standby_url, "BILLING_AUTHENTICATION": "off", "BILLING_DB_POOL_SIZE": "6",
                       "BILLING_WEBHOOK_SENDER": "0",
                       "BILLING_READ_REPLICA_WAIT_MS": "200"}  # a busy test host: the standby still serves some
        servers = [start_billing_server(primary_url, tmp_path / f"server-{n}", migrate=False, extra_env=replica_env)
                   for n in (1, 2)]
        channels = [grpc.insecure_channel(server.grpc_target) for server in servers]
        stubs = [billing_service_pb2_grpc.BillingServiceStub(channel) for channel in channels]
        done, killed, stale = [0], threading.Event(), []
        lock = threading.Lock()

        def write_then_read(loop: int) -> None:
            user = f"e2e-rr-{uuid.uuid4().hex[:10]}"
            stubs[0].CreateAccount(accounts_pb2.CreateAccountRequest(user_id=user), timeout=CALL_TIMEOUT_SECONDS)
            for i in range(PAIRS_PER_LOOP):
                writer, reader = (stubs[0], stubs[1]) if (i + loop) % 2 else (stubs[1], stubs[0])
                written = writer.Consume(consumption_pb2.ConsumeRequest(
                    user_id=user, operation="build", seconds=1, idempotency_key=f"k{i}"), timeout=CALL_TIMEOUT_SECONDS)
                read = reader.GetBalance(billing_service_pb2.GetBalanceRequest(user_id=user), timeout=CALL_TIMEOUT_SECONDS)
                if read.totals.total_seconds != written.totals.total_seconds:
                    stale.append((user, i, written.totals.total_seconds, read.totals.total_seconds))
                with lock:
                    done[0] += 1
                    if done[0] == KILL_AFTER_PAIRS:
                        pid = embedded_postgres.postmaster_pid(standby_dir)
                        assert pid is not None
                        os.kill(pid, 9)
                        killed.set()

        with ThreadPoolExecutor(max_workers=LOOPS) as pool:
            for finished in [pool.submit(write_then_read, loop) for loop in range(LOOPS)]:
                finished.result()  # any failed call raises here
        assert killed.is_set()
        assert stale == []
        assert sum(_routed_reads(server.metrics_port, "standby") for server in servers) > 0
        for channel in channels:
            channel.close()
    finally:
        for server in servers:
            stop_process(server.process)
        embedded_postgres.stop(standby_dir)
        embedded_postgres.stop(primary_dir)
        shutil.rmtree(root, ignore_errors=True)
