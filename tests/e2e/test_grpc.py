"""The gRPC API as internal services and engineers use it: reflection, grpcurl, rich errors."""

from __future__ import annotations

import json
import subprocess
import uuid

import grpc
from grpc_status import rpc_status

from billing.v1 import accounts_pb2, billing_service_pb2_grpc, consumption_pb2
from tests.e2e.helpers import new_user
from testkit.processes import VENV_BIN
from testkit.signing import default_key, signed_channel

GRPCURL = str(VENV_BIN / "grpcurl")


def grpcurl(*args: str) -> subprocess.CompletedProcess:
    """Authenticated as the session's admin key (a bearer token: grpcurl cannot sign)."""
    [(name, value)] = default_key().bearer()
    command = [GRPCURL, "-plaintext", "-H", f"{name}: {value}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=30)


def test_reflection_lists_the_billing_and_health_services(e2e):
    listed = grpcurl(e2e.grpc_target, "list")
    assert listed.returncode == 0, listed.stderr
    assert {"billing.v1.BillingService", "grpc.health.v1.Health"} <= set(listed.stdout.split())


def test_grpcurl_drives_the_seed_flow(e2e):
    user = new_user()
    target, service = e2e.grpc_target, "billing.v1.BillingService"
    created = grpcurl("-d", json.dumps({"user_id": user}), target, f"{service}/CreateAccount")
    assert created.returncode == 0, created.stderr
    consume = {"user_id": user, "operation": "plan", "seconds": 30, "idempotency_key": "g1"}
    consumed = grpcurl("-d", json.dumps(consume), target, f"{service}/Consume")
    assert consumed.returncode == 0, consumed.stderr
    balance = json.loads(grpcurl("-d", json.dumps({"user_id": user}), target, f"{service}/GetBalance").stdout)
    assert balance["totals"]["total_seconds"] == 2670
    health = grpcurl(target, "grpc.health.v1.Health/Check")
    assert '"SERVING"' in health.stdout


def test_short_consume_over_grpc_is_failed_precondition_with_a_typed_detail(e2e):
    user = new_user()
    with signed_channel(e2e.grpc_target) as channel:
        stub = billing_service_pb2_grpc.BillingServiceStub(channel)
        stub.CreateAccount(accounts_pb2.CreateAccountRequest(user_id=user))
        request = consumption_pb2.ConsumeRequest(
            user_id=user, operation="build", seconds=9000, idempotency_key=uuid.uuid4().hex
        )
        try:
            stub.Consume(request)
            raise AssertionError("consume should have been refused")
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
            status = rpc_status.from_call(error)
    detail = consumption_pb2.InsufficientAiTime()
    assert any(any_detail.Unpack(detail) for any_detail in status.details)
    assert detail.balance_seconds == 2700 and detail.deficit_seconds == 6300
    assert detail.resume_token.startswith("rt_")
