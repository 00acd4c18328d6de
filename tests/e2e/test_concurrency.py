"""Two server replicas, one PostgreSQL, 32 concurrent consumers: no overdraw, no double charge; on the database
itself and through pgbouncer in transaction mode."""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from billing.adapters.db.invariants import find_violations_in_database
from billing.v1 import accounts_pb2, billing_service_pb2, billing_service_pb2_grpc, consumption_pb2
from tests.e2e.helpers import new_user
from testkit.processes import start_billing_server, stop_process
from testkit.signing import signed_channel

CONSUMERS = 32
ATTEMPTS_PER_CONSUMER = 4
SECONDS_PER_CONSUME = 100
STARTING_BALANCE = 2700  # a new free account: 1800 welcome + 900 daily


@pytest.fixture(scope="module", params=["direct", "pgbouncer"])
def two_replicas(request, e2e, tmp_path_factory):
    """On PostgreSQL itself, and both through pgbouncer in transaction mode (BILLING_DB_POOLER=transaction)."""
    if request.param == "pgbouncer":
        yield [server.grpc_target for server in request.getfixturevalue("pooled_replicas")]
        return
    second = start_billing_server(e2e.database_url, tmp_path_factory.mktemp("replica"), migrate=False)
    try:
        yield [e2e.grpc_target, second.grpc_target]
    finally:
        assert stop_process(second.process) == 0, "SIGTERM should stop the server gracefully"


def _consume(target: str, user: str, key: str) -> str:
    with signed_channel(target) as channel:
        stub = billing_service_pb2_grpc.BillingServiceStub(channel)
        request = consumption_pb2.ConsumeRequest(
            user_id=user, operation="build", seconds=SECONDS_PER_CONSUME, idempotency_key=key
        )
        try:
            reply = stub.Consume(request, timeout=30)
            return "replayed" if reply.replayed else "taken"
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error
            return "refused"


def _create(target: str, user: str) -> None:
    with signed_channel(target) as channel:
        billing_service_pb2_grpc.BillingServiceStub(channel).CreateAccount(
            accounts_pb2.CreateAccountRequest(user_id=user), timeout=30
        )


def _balance(target: str, user: str) -> int:
    with signed_channel(target) as channel:
        stub = billing_service_pb2_grpc.BillingServiceStub(channel)
        return stub.GetBalance(billing_service_pb2.GetBalanceRequest(user_id=user), timeout=30).totals.total_seconds


@pytest.mark.slow
def test_concurrent_consumers_on_two_replicas_take_exactly_the_balance(e2e, two_replicas):
    user = new_user()
    _create(two_replicas[0], user)
    jobs = [
        (two_replicas[(consumer + attempt) % 2], user, uuid.uuid4().hex)
        for consumer in range(CONSUMERS) for attempt in range(ATTEMPTS_PER_CONSUMER)
    ]
    with ThreadPoolExecutor(max_workers=CONSUMERS) as pool:
        outcomes = list(pool.map(lambda job: _consume(*job), jobs))
    assert outcomes.count("taken") == STARTING_BALANCE // SECONDS_PER_CONSUME
    assert outcomes.count("refused") == len(jobs) - STARTING_BALANCE // SECONDS_PER_CONSUME
    assert _balance(two_replicas[1], user) == STARTING_BALANCE % SECONDS_PER_CONSUME
    assert asyncio.run(find_violations_in_database(e2e.database_url, user)) == []


@pytest.mark.slow
def test_one_idempotency_key_sent_32_times_to_two_replicas_charges_once(e2e, two_replicas):
    user = new_user()
    _create(two_replicas[0], user)
    key = uuid.uuid4().hex
    jobs = [(two_replicas[index % 2], user, key) for index in range(CONSUMERS)]
    with ThreadPoolExecutor(max_workers=CONSUMERS) as pool:
        outcomes = list(pool.map(lambda job: _consume(*job), jobs))
    assert outcomes.count("taken") == 1 and outcomes.count("replayed") == CONSUMERS - 1
    assert _balance(two_replicas[0], user) == STARTING_BALANCE - SECONDS_PER_CONSUME
    assert asyncio.run(find_violations_in_database(e2e.database_url, user)) == []
