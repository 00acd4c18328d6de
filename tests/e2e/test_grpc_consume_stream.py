"""ConsumeStream over gRPC against the real server (issue 24): answers in order, each what Consume
would answer (errors as messages, the stream goes on), service keys only, and 2,000 pipelined
consumes over a few accounts whose ledger adds up."""

from __future__ import annotations

import asyncio
import os
import subprocess

import grpc
import pytest

from billing.adapters.db.invariants import find_violations_in_database
from billing.v1 import accounts_pb2, billing_service_pb2, billing_service_pb2_grpc, consumption_pb2 as pb
from tests.e2e.helpers import new_user
from testkit.processes import VENV_BIN
from testkit.signing import signed_channel

METHOD = "/billing.v1.BillingService/ConsumeStream"
START = 1800 + 900  # a new free account: the welcome bonus and today's daily bonus


def consume(user: str, key: str, seconds: int = 10, operation: str = "build") -> pb.ConsumeStreamRequest:
    return pb.ConsumeStreamRequest(consume=pb.ConsumeRequest(
        user_id=user, operation=operation, seconds=seconds, idempotency_key=key))


def create_accounts(e2e, users: list[str], grant_seconds: int = 0) -> None:
    with signed_channel(e2e.grpc_target) as channel:
        stub = billing_service_pb2_grpc.BillingServiceStub(channel)
        for user in users:
            stub.CreateAccount(accounts_pb2.CreateAccountRequest(user_id=user), timeout=10)
            if grant_seconds:
                stub.CreateGrant(accounts_pb2.CreateGrantRequest(
                    user_id=user, source="gift", seconds=grant_seconds, reason="consume stream",
                    idempotency_key=f"grant-{user}"), timeout=10)


def total_seconds(e2e, user: str) -> int:
    with signed_channel(e2e.grpc_target) as channel:
        return billing_service_pb2_grpc.BillingServiceStub(channel).GetBalance(
            billing_service_pb2.GetBalanceRequest(user_id=user), timeout=10).totals.total_seconds


def test_answers_come_in_order_with_errors_as_messages(e2e, session_keys):
    user = new_user()
    create_accounts(e2e, [user])
    prefix = os.urandom(4).hex()
    messages = [
        consume(user, f"{prefix}-1", 100),
        consume(f"nobody-{prefix}", f"{prefix}-2"),  # unknown user
        consume(user, f"{prefix}-3", START * 10),  # more than the balance: the 402's details
        consume(user, f"{prefix}-4", 0),  # an invalid field
        consume(user, f"{prefix}-1", 100),  # a retry within the stream: the first answer
        consume(user, f"{prefix}-1", 7),  # the key again for another request
        consume(user, f"{prefix}-5", 50),
    ]
    with grpc.insecure_channel(e2e.grpc_target) as channel:
        stub = billing_service_pb2_grpc.BillingServiceStub(channel)
        answers = list(stub.ConsumeStream(iter(messages), metadata=session_keys.service.bearer(), timeout=30))
    assert [a.sequence for a in answers] == list(range(len(messages)))
    assert [a.idempotency_key for a in answers] == [m.consume.idempotency_key for m in messages]
    assert [a.WhichOneof("outcome") for a in answers] == ["result", "error", "error", "error", "result", "error", "result"]
    assert answers[0].result.consumed_seconds == 100 and not answers[0].result.replayed
    assert (answers[1].error.code, answers[1].error.http_status, answers[1].error.reason) == (
        "NOT_FOUND", 404, "ACCOUNT_NOT_FOUND")
    short = answers[2].error
    assert (short.code, short.http_status, short.reason) == ("FAILED_PRECONDITION", 402, "INSUFFICIENT_AI_TIME")
    details = short.insufficient_ai_time
    assert details.balance_seconds == START - 100 and details.deficit_seconds == START * 10 - (START - 100)
    assert details.resume_token and details.suggestions and details.catalog_version
    assert (answers[3].error.code, answers[3].error.field) == ("INVALID_ARGUMENT", "seconds")
    replay = pb.ConsumeResponse()
    replay.CopyFrom(answers[0].result)
    replay.replayed = True
    assert answers[4].result == replay
    assert (answers[5].error.code, answers[5].error.field) == ("ALREADY_EXISTS", "idempotency_key")
    assert answers[6].result.totals.total_seconds == START - 150
    assert total_seconds(e2e, user) == START - 150


def test_a_user_key_is_refused_and_a_signed_service_key_streams(e2e, session_keys):
    first = consume(session_keys.user_id, f"user-{os.urandom(4).hex()}")
    with grpc.insecure_channel(e2e.grpc_target) as channel:
        stub = billing_service_pb2_grpc.BillingServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            list(stub.ConsumeStream(
                iter([first]), metadata=session_keys.user.grpc_metadata(METHOD, first.SerializeToString(deterministic=True)),
                timeout=30))
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(grpc.RpcError) as unsigned:
            list(stub.ConsumeStream(iter([first]), timeout=30))
        assert unsigned.value.code() == grpc.StatusCode.UNAUTHENTICATED
        user = new_user()
        create_accounts(e2e, [user])
        signed_first = consume(user, f"svc-{os.urandom(4).hex()}", 5)
        answers = list(stub.ConsumeStream(
            iter([signed_first]),
            metadata=session_keys.service.grpc_metadata(METHOD, signed_first.SerializeToString(deterministic=True)),
            timeout=30))
        assert answers[0].result.consumed_seconds == 5


CONSUMES = 2_000
ACCOUNTS = 5


async def _pipelined(target: str, metadata, messages: list[pb.ConsumeStreamRequest]) -> list[pb.ConsumeStreamResponse]:
    async with grpc.aio.insecure_channel(target) as channel:
        call = billing_service_pb2_grpc.BillingServiceStub(channel).ConsumeStream(metadata=metadata, timeout=120)

        async def send() -> None:
            for request in messages:
                await call.write(request)
            await call.done_writing()

        sender = asyncio.ensure_future(send())
        answers = [answer async for answer in call]
        await sender
        return answers


def test_two_thousand_pipelined_consumes_over_a_few_accounts_add_up(e2e, session_keys):
    users = [new_user() for _ in range(ACCOUNTS)]
    create_accounts(e2e, users, grant_seconds=100_000)
    prefix = os.urandom(4).hex()
    messages = [consume(users[n % ACCOUNTS], f"{prefix}-{n}", 1 + n % 7) for n in range(CONSUMES)]
    answers = asyncio.run(_pipelined(e2e.grpc_target, session_keys.service.bearer(), messages))
    assert [a.sequence for a in answers] == list(range(CONSUMES))
    assert all(a.WhichOneof("outcome") == "result" and not a.result.replayed for a in answers), [
        a.error for a in answers if a.HasField("error")][:3]
    for n, user in enumerate(users):
        taken = sum(1 + m % 7 for m in range(n, CONSUMES, ACCOUNTS))
        assert total_seconds(e2e, user) == START + 100_000 - taken
    assert asyncio.run(find_violations_in_database(e2e.database_url)) == []
    verify = subprocess.run([str(VENV_BIN / "billing"), "verify"], env=os.environ | {"DATABASE_URL": e2e.database_url},
                            capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0, verify.stdout + verify.stderr
