"""BILLING_WORKERS: several server processes share one port and stop together on SIGTERM."""

from __future__ import annotations

import grpc
import psutil

from billing.v1 import accounts_pb2, billing_service_pb2, billing_service_pb2_grpc
from tests.e2e.helpers import new_user
from tests.support.processes import start_billing_server, stop_process


def test_two_workers_serve_one_port_and_stop_cleanly_on_sigterm(e2e, tmp_path):
    server = start_billing_server(e2e.database_url, tmp_path, migrate=False, extra_env={"BILLING_WORKERS": "2"})
    try:
        workers = psutil.Process(server.process.pid).children()
        assert len(workers) == 2
        user = new_user()
        for _ in range(8):  # new channels: connections land on either worker
            with grpc.insecure_channel(server.grpc_target) as channel:
                stub = billing_service_pb2_grpc.BillingServiceStub(channel)
                stub.CreateAccount(accounts_pb2.CreateAccountRequest(user_id=user), timeout=10)
                balance = stub.GetBalance(billing_service_pb2.GetBalanceRequest(user_id=user), timeout=10)
                assert balance.totals.total_seconds == 2700
    finally:
        assert stop_process(server.process, timeout=30) == 0
    assert not any(worker.is_running() and worker.status() != psutil.STATUS_ZOMBIE for worker in workers)
