"""BILLING_WORKERS: several server processes share one port and stop together on SIGTERM."""

from __future__ import annotations

import time

import grpc
import psutil

from billing.v1 import accounts_pb2, billing_service_pb2, billing_service_pb2_grpc, consumption_pb2
from tests.e2e.helpers import new_user
from testkit.processes import start_billing_server, stop_process
from testkit.signing import signed_channel


def test_two_workers_serve_one_port_and_stop_cleanly_on_sigterm(e2e, tmp_path):
    server = start_billing_server(e2e.database_url, tmp_path, migrate=False, extra_env={"BILLING_WORKERS": "2"})
    try:
        workers = psutil.Process(server.process.pid).children()
        assert len(workers) == 2
        user = new_user()
        for _ in range(8):  # new channels: connections land on either worker
            with signed_channel(server.grpc_target) as channel:
                stub = billing_service_pb2_grpc.BillingServiceStub(channel)
                # A worker still starting (health is the first one's) answers UNAVAILABLE: retry, as clients do.
                _retrying(lambda: stub.CreateAccount(accounts_pb2.CreateAccountRequest(user_id=user), timeout=10))
                balance = _retrying(
                    lambda: stub.GetBalance(billing_service_pb2.GetBalanceRequest(user_id=user), timeout=10)
                )
                assert balance.totals.total_seconds == 2700
    finally:
        assert stop_process(server.process, timeout=30) == 0
    assert not any(worker.is_running() and worker.status() != psutil.STATUS_ZOMBIE for worker in workers)


def test_a_replay_after_a_restart_returns_the_first_answer(e2e, tmp_path):
    user = new_user()
    request = consumption_pb2.ConsumeRequest(user_id=user, operation="export", seconds=42, idempotency_key="restart-1")
    first_server = start_billing_server(e2e.database_url, tmp_path / "first", migrate=False)
    try:
        with signed_channel(first_server.grpc_target) as channel:
            stub = billing_service_pb2_grpc.BillingServiceStub(channel)
            stub.CreateAccount(accounts_pb2.CreateAccountRequest(user_id=user), timeout=10)
            first = stub.Consume(request, timeout=10)
    finally:
        assert stop_process(first_server.process) == 0
    second_server = start_billing_server(e2e.database_url, tmp_path / "second", migrate=False)
    try:
        with signed_channel(second_server.grpc_target) as channel:
            stub = billing_service_pb2_grpc.BillingServiceStub(channel)
            again = stub.Consume(request, timeout=10)
            balance = stub.GetBalance(billing_service_pb2.GetBalanceRequest(user_id=user), timeout=10)
    finally:
        stop_process(second_server.process)
    assert again.replayed and not first.replayed
    assert again.taken == first.taken and again.totals == first.totals
    assert balance.totals.total_seconds == 2700 - 42


def _retrying(call, attempts: int = 20):
    for attempt in range(attempts):
        try:
            return call()
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.UNAVAILABLE or attempt == attempts - 1:
                raise
            time.sleep(0.25)

