"""Issue 21's Stigg test on two server replicas: 20 concurrent holds of 75 s on an account with 500 s
available grant exactly 6 and refuse 14 (INSUFFICIENT_AI_TIME), 450 held; settling the six with a
final commit of all 75 s leaves 50. Half the holds go through Envoy (REST) to one replica, half over
gRPC to the other, released together; a few accounts in turn, to give a race a few chances."""

from __future__ import annotations

import asyncio
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import grpc
import psycopg
from grpc_status import rpc_status

from billing.adapters.db.invariants import find_violations_in_database
from billing.settings import libpq_url
from billing.v1 import billing_service_pb2, billing_service_pb2_grpc, consumption_pb2, holds_pb2
from tests.e2e.helpers import call, create_account, new_user
from tests.e2e.test_rest_consume import consume
from testkit.signing import signed_channel

ACCOUNTS = 5
HOLDS = 20
HOLD_SECONDS = 75
AVAILABLE = 500
NEW_ACCOUNT_SECONDS = 2700  # a free account: today's daily bonus and the welcome seconds
GRANTED = AVAILABLE // HOLD_SECONDS  # 6
CALL_TIMEOUT_SECONDS = 30


def _account_with(http, seconds: int) -> str:
    user = new_user()
    create_account(http, user)
    status, _, taken = consume(http, user, NEW_ACCOUNT_SECONDS - seconds)
    assert status == 200 and taken["totals"]["total_seconds"] == seconds, taken
    return user


def _rest_hold(http, user: str, hold_id: str) -> str:
    payload = {"user_id": user, "hold_id": hold_id, "operation": "build", "seconds": HOLD_SECONDS}
    status, _, reply = call(http, "POST", "/v1/billing/holds", payload)
    if status == 200:
        assert reply["hold"]["held_seconds"] == HOLD_SECONDS and reply["hold"]["state"] == "open", reply
        return "held"
    assert (status, reply["error"]) == (402, "INSUFFICIENT_AI_TIME"), reply
    return "refused"


def _grpc_hold(stub, user: str, hold_id: str) -> str:
    try:
        reply = stub.CreateHold(holds_pb2.CreateHoldRequest(
            user_id=user, hold_id=hold_id, operation="build", seconds=HOLD_SECONDS), timeout=CALL_TIMEOUT_SECONDS)
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, (error.code(), error.details())
        detail = consumption_pb2.InsufficientAiTime()
        assert any(packed.Unpack(detail) for packed in rpc_status.from_call(error).details), error.details()
        assert detail.deficit_seconds > 0
        return "refused"
    assert reply.hold.held_seconds == HOLD_SECONDS and reply.hold.state == "open", reply
    return "held"


def _grpc_commit_all(stub, user: str, hold_id: str) -> holds_pb2.HoldResponse:
    return stub.CommitHold(holds_pb2.CommitHoldRequest(
        user_id=user, hold_id=hold_id, used_seconds=HOLD_SECONDS, final=True), timeout=CALL_TIMEOUT_SECONDS)


def test_twenty_concurrent_holds_of_75_s_on_500_s_grant_exactly_six_across_replicas(http, e2e, second_replica):
    users = [_account_with(http, AVAILABLE) for _ in range(ACCOUNTS)]
    with signed_channel(second_replica.grpc_target) as channel, ThreadPoolExecutor(max_workers=HOLDS) as pool:
        stub = billing_service_pb2_grpc.BillingServiceStub(channel)
        for user in users:
            hold_ids = [f"stigg-{n}-{uuid.uuid4().hex[:8]}" for n in range(HOLDS)]
            start = threading.Barrier(HOLDS)

            def place(n: int) -> str:
                start.wait(timeout=CALL_TIMEOUT_SECONDS)  # all 20 sent together
                if n % 2 == 0:
                    return _rest_hold(http, user, hold_ids[n])  # through Envoy, to the first replica
                return _grpc_hold(stub, user, hold_ids[n])  # to the second replica

            outcomes = list(pool.map(place, range(HOLDS)))
            assert (outcomes.count("held"), outcomes.count("refused")) == (GRANTED, HOLDS - GRANTED), outcomes
            totals = stub.GetBalance(billing_service_pb2.GetBalanceRequest(user_id=user)).totals
            assert (totals.held_seconds, totals.total_seconds) == (GRANTED * HOLD_SECONDS, AVAILABLE - GRANTED * HOLD_SECONDS)

            held = [hold_ids[n] for n, outcome in enumerate(outcomes) if outcome == "held"]
            settled = list(pool.map(lambda hold_id: _grpc_commit_all(stub, user, hold_id), held))
            assert all(reply.hold.state == "settled" and reply.hold.committed_seconds == HOLD_SECONDS
                       for reply in settled), settled
            status, _, balance = call(http, "GET", f"/v1/billing/balance/{user}")
            assert status == 200, balance
            left = AVAILABLE - GRANTED * HOLD_SECONDS
            assert (balance["totals"]["total_seconds"], balance["totals"]["held_seconds"]) == (left, 0), balance
            status, _, listed = call(http, "GET", f"/v1/billing/holds?user_id={user}")
            assert status == 200 and listed.get("holds", []) == [], listed

    with psycopg.connect(libpq_url(e2e.database_url)) as connection:
        taken = connection.execute(
            "SELECT account_id, metadata->>'hold_id', -sum(seconds) FROM ledger_events "
            "WHERE type = 'consumption' AND metadata ? 'hold_id' AND account_id = ANY(%s) GROUP BY 1, 2",
            (users,)).fetchall()
        holds = connection.execute(
            "SELECT state, count(*), sum(committed_seconds) FROM holds WHERE account_id = ANY(%s) GROUP BY 1",
            (users,)).fetchall()
    assert len(taken) == ACCOUNTS * GRANTED and all(seconds == HOLD_SECONDS for _, _, seconds in taken), taken
    assert holds == [("settled", ACCOUNTS * GRANTED, ACCOUNTS * GRANTED * HOLD_SECONDS)]  # the refused left no row
    for user in users:
        assert asyncio.run(find_violations_in_database(e2e.database_url, user)) == []
