"""ConsumeStream through a `kill -9` of the server mid-stream (issue 24): nothing partial. The client
sends a few thousand consumes pipelined; the server is killed once some hundreds are answered (so
others are in flight: committed with their answers lost, or not begun); a new server starts on the
same database and the client resends everything on a new stream. Each idempotency key is charged
exactly once, each answer the first stream got is replayed as it was, and the ledger's invariants hold.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess

import grpc
import psycopg
import pytest

from billing.adapters.db.invariants import find_violations_in_database
from billing.domain.auth import Scope
from billing.settings import libpq_url
from billing.v1 import accounts_pb2, billing_service_pb2_grpc, consumption_pb2 as pb
from testkit.processes import VENV_BIN, start_billing_server, stop_process
from testkit.signing import create_key, signed_channel

CONSUMES = 3_000
ACCOUNTS = 4
GRANT_SECONDS = 1_000_000
KILL_AFTER_ANSWERS = 400


def _messages(users: list[str], prefix: str) -> list[pb.ConsumeStreamRequest]:
    return [pb.ConsumeStreamRequest(consume=pb.ConsumeRequest(
        user_id=users[n % ACCOUNTS], operation="build", seconds=1 + n % 9, idempotency_key=f"{prefix}-{n}"))
        for n in range(CONSUMES)]


async def _until_killed(target: str, metadata, messages, kill) -> list[pb.ConsumeStreamResponse]:
    """Streams the messages; kills the server once KILL_AFTER_ANSWERS answers came; returns the answers
    that came before the stream broke."""
    answers: list[pb.ConsumeStreamResponse] = []
    async with grpc.aio.insecure_channel(target) as channel:
        call = billing_service_pb2_grpc.BillingServiceStub(channel).ConsumeStream(metadata=metadata, timeout=120)

        async def send() -> None:
            try:
                for request in messages:
                    await call.write(request)
            except (asyncio.InvalidStateError, grpc.aio.AioRpcError, grpc.aio.UsageError):
                pass  # the call ended: the read below says how

        sender = asyncio.ensure_future(send())
        with pytest.raises(grpc.aio.AioRpcError) as broken:
            async for answer in call:
                answers.append(answer)
                if len(answers) == KILL_AFTER_ANSWERS:
                    kill()
        assert broken.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL), broken.value
        sender.cancel()
    return answers


async def _all(target: str, metadata, messages) -> list[pb.ConsumeStreamResponse]:
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


@pytest.mark.slow
def test_a_stream_cut_by_kill_9_and_resent_charges_each_key_once(own_postgres, tmp_path):
    _, database_url = own_postgres
    service_key = create_key(database_url, Scope.SERVICE)  # before the servers start: they load it then
    first = start_billing_server(database_url, tmp_path / "first", migrate=False)
    second = None
    try:
        users = [f"stream-{os.urandom(4).hex()}-{n}" for n in range(ACCOUNTS)]
        with signed_channel(first.grpc_target) as channel:
            stub = billing_service_pb2_grpc.BillingServiceStub(channel)
            for user in users:
                stub.CreateAccount(accounts_pb2.CreateAccountRequest(user_id=user), timeout=10)
                stub.CreateGrant(accounts_pb2.CreateGrantRequest(
                    user_id=user, source="gift", seconds=GRANT_SECONDS, reason="stream faults",
                    idempotency_key=f"grant-{user}"), timeout=10)
        messages = _messages(users, os.urandom(4).hex())

        before = asyncio.run(_until_killed(
            first.grpc_target, service_key.bearer(), messages, lambda: first.process.send_signal(signal.SIGKILL)))
        assert first.process.wait(timeout=10) == -signal.SIGKILL
        assert KILL_AFTER_ANSWERS <= len(before) < CONSUMES
        assert all(a.HasField("result") for a in before)

        second = start_billing_server(database_url, tmp_path / "second", migrate=False)
        after = asyncio.run(_all(second.grpc_target, service_key.bearer(), messages))
        assert [a.sequence for a in after] == list(range(CONSUMES))
        assert all(a.HasField("result") for a in after), [a.error for a in after if a.HasField("error")][:3]
        for earlier in before:  # what the first stream answered is answered again, as it was
            again = after[earlier.sequence].result
            assert again.replayed and (again.consumed_seconds, list(again.taken), again.totals) == (
                earlier.result.consumed_seconds, list(earlier.result.taken), earlier.result.totals)
        replayed = sum(a.result.replayed for a in after)
        print(f"\n{len(before)} answered before the kill; {replayed} of {CONSUMES} replayed after it")
        assert replayed >= len(before)

        with psycopg.connect(libpq_url(database_url)) as connection:
            charged = dict(connection.execute(
                "SELECT metadata->>'idempotency_key', -sum(seconds) FROM ledger_events "
                "WHERE type = 'consumption' AND account_id = ANY(%s) GROUP BY 1", (users,)).fetchall())
        assert charged == {m.consume.idempotency_key: m.consume.seconds for m in messages}
        assert asyncio.run(find_violations_in_database(database_url)) == []
        verify = subprocess.run([str(VENV_BIN / "billing"), "verify"], env=os.environ | {"DATABASE_URL": database_url},
                                capture_output=True, text=True, timeout=60)
        assert verify.returncode == 0, verify.stdout + verify.stderr
    finally:
        if second is not None:
            stop_process(second.process)
        if first.process.poll() is None:
            stop_process(first.process)
