"""The live balance with the service behind pgbouncer in transaction mode (BILLING_DB_POOLER=transaction):
LISTEN cannot work through transaction pooling (the session that listens is handed to others between
transactions), so each server listens on DATABASE_DIRECT_URL; a change committed through one replica's
pooled connections reaches a watcher on the other. (The REST stream is Envoy's transcoding of this gRPC
stream: tests/e2e/test_rest_balance_stream.py.) The money under concurrency through the pooler:
tests/e2e/test_concurrency.py and the integration suites (tests/integration/conftest.py THROUGH_POOLER)."""

from __future__ import annotations

import uuid

from billing.v1 import accounts_pb2, billing_service_pb2, billing_service_pb2_grpc, consumption_pb2
from tests.e2e.helpers import new_user
from testkit.signing import default_key, signed_channel

STREAM_TIMEOUT_SECONDS = 10.0


def _next_balance(updates) -> billing_service_pb2.BalanceUpdate:
    for update in updates:
        if not update.heartbeat:
            return update
    raise AssertionError("the stream ended")


def test_a_change_through_one_pooled_replica_reaches_a_watcher_on_the_other(pooled_replicas):
    writer, reader = (server.grpc_target for server in pooled_replicas)
    user = new_user()
    with signed_channel(writer) as writing, signed_channel(reader) as reading:
        billing_service_pb2_grpc.BillingServiceStub(writing).CreateAccount(
            accounts_pb2.CreateAccountRequest(user_id=user), timeout=30)
        updates = billing_service_pb2_grpc.BillingServiceStub(reading).WatchBalance(
            billing_service_pb2.WatchBalanceRequest(user_id=user), timeout=STREAM_TIMEOUT_SECONDS,
            metadata=default_key().bearer())  # signed_channel signs unary calls only
        first = _next_balance(updates)
        billing_service_pb2_grpc.BillingServiceStub(writing).Consume(consumption_pb2.ConsumeRequest(
            user_id=user, operation="build", seconds=60, idempotency_key=uuid.uuid4().hex), timeout=30)
        changed = _next_balance(updates)
        updates.cancel()
    assert changed.version > first.version
    assert changed.balance.totals.total_seconds == first.balance.totals.total_seconds - 60

