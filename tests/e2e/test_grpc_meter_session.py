"""MeterSession over gRPC against the real server: signed on its first message, a block held
ahead, answers in order, errors on the stream, a broken stream resumed by its session_id."""

from __future__ import annotations

import json
import subprocess

import grpc
import pytest

from billing.v1 import accounts_pb2, billing_service_pb2, billing_service_pb2_grpc, metered_sessions_pb2 as pb
from tests.e2e.helpers import new_user
from tests.e2e.test_grpc import GRPCURL
from testkit.signing import signed_channel

METHOD = "/billing.v1.BillingService/MeterSession"
START = 1800 + 900


def opening(user: str, session_id: str, block: int = 60, max_seconds: int = 0) -> pb.MeterSessionRequest:
    return pb.MeterSessionRequest(open=pb.MeterSessionOpen(
        user_id=user, session_id=session_id, operation="build", block_seconds=block, max_seconds=max_seconds))


def report(elapsed: int) -> pb.MeterSessionRequest:
    return pb.MeterSessionRequest(report=pb.MeterSessionReport(elapsed_seconds=elapsed))


def done(elapsed: int) -> pb.MeterSessionRequest:
    return pb.MeterSessionRequest(done=pb.MeterSessionDone(elapsed_seconds=elapsed))


def stub_for(e2e):
    channel = grpc.insecure_channel(e2e.grpc_target)
    return channel, billing_service_pb2_grpc.BillingServiceStub(channel)


def signed(key, first: pb.MeterSessionRequest):
    return key.grpc_metadata(METHOD, first.SerializeToString(deterministic=True))


@pytest.fixture
def user(e2e):
    user = new_user()
    with signed_channel(e2e.grpc_target) as channel:
        billing_service_pb2_grpc.BillingServiceStub(channel).CreateAccount(accounts_pb2.CreateAccountRequest(user_id=user))
    return user


def balance_totals(e2e, user):
    with signed_channel(e2e.grpc_target) as channel:
        return billing_service_pb2_grpc.BillingServiceStub(channel).GetBalance(
            billing_service_pb2.GetBalanceRequest(user_id=user)).totals


def test_a_session_is_billed_to_the_second(e2e, session_keys, user):
    first = opening(user, "s-1")
    messages = [first, *(report(n) for n in range(1, 95)), done(95)]
    channel, stub = stub_for(e2e)
    with channel:
        answers = list(stub.MeterSession(iter(messages), metadata=signed(session_keys.service, first)))
    assert len(answers) == len(messages)
    assert (answers[0].held_seconds, answers[0].remaining_seconds) == (60, 60)
    assert all(a.remaining_seconds > 0 for a in answers[1:-1])
    assert answers[-1].settled and answers[-1].committed_seconds == 95
    totals = balance_totals(e2e, user)
    assert totals.total_seconds == START - 95 and totals.held_seconds == 0


def test_a_bearer_service_key_opens_a_session_and_a_user_key_cannot(e2e, session_keys, user):
    channel, stub = stub_for(e2e)
    with channel:
        answers = list(stub.MeterSession(iter([opening(user, "s-b"), done(3)]), metadata=session_keys.service.bearer()))
        assert answers[-1].committed_seconds == 3
        first = opening(session_keys.user_id, "s-u")
        with pytest.raises(grpc.RpcError) as refused:
            list(stub.MeterSession(iter([first]), metadata=signed(session_keys.user, first)))
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(grpc.RpcError) as unsigned:
            list(stub.MeterSession(iter([opening(user, "s-x")])))
        assert unsigned.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_the_signature_covers_the_first_message(e2e, session_keys, user):
    signed_for = opening(user, "s-1")
    sent = opening(user, "s-1", block=3600)
    channel, stub = stub_for(e2e)
    with channel, pytest.raises(grpc.RpcError) as refused:
        list(stub.MeterSession(iter([sent]), metadata=signed(session_keys.service, signed_for)))
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_errors_end_the_stream_with_a_status(e2e, session_keys, user):
    channel, stub = stub_for(e2e)
    key = session_keys.service.bearer()
    with channel:
        with pytest.raises(grpc.RpcError) as backwards:
            list(stub.MeterSession(iter([opening(user, "s-e"), report(10), report(9)]), metadata=key))
        assert backwards.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError) as unopened:
            list(stub.MeterSession(iter([report(1)]), metadata=key))
        assert unopened.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError) as block:
            list(stub.MeterSession(iter([opening(user, "s-f", block=1)]), metadata=key))
        assert block.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError) as short:
            list(stub.MeterSession(iter([opening(user, "s-g", block=3600)]), metadata=key))
        assert short.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_a_broken_stream_keeps_what_it_reported_and_resumes(e2e, session_keys, user):
    key = session_keys.service.bearer()
    channel, stub = stub_for(e2e)
    with channel:
        call = stub.MeterSession(iter([opening(user, "s-r"), report(5), report(12)]), metadata=key)
        answers = list(call)  # the client stops sending without `done`: the stream ends broken
        assert answers[-1].remaining_seconds == 48
        resumed = list(stub.MeterSession(iter([opening(user, "s-r"), report(20), done(21)]), metadata=key))
    assert resumed[0].committed_seconds == 12
    assert resumed[-1].settled and resumed[-1].committed_seconds == 21
    assert balance_totals(e2e, user).total_seconds == START - 21


def test_an_exhausted_session_says_so_with_the_402_details(e2e, session_keys, user):
    key = session_keys.service.bearer()
    channel, stub = stub_for(e2e)
    with channel:
        answers = list(stub.MeterSession(iter([opening(user, "s-x", block=2000), report(1500), done(1600)]),
                                         metadata=key))
    assert answers[1].HasField("exhausted") and answers[1].exhausted.deficit_seconds > 0
    assert answers[1].exhausted.resume_token
    assert answers[-1].committed_seconds == 1600


def test_grpcurl_runs_a_session(e2e, session_keys, user):
    [(name, value)] = session_keys.service.bearer()
    messages = "\n".join(json.dumps(m) for m in (
        {"open": {"user_id": user, "session_id": "s-cli", "operation": "build"}},
        {"report": {"elapsed_seconds": 30}}, {"done": {"elapsed_seconds": 42}}))
    ran = subprocess.run(
        [GRPCURL, "-plaintext", "-H", f"{name}: {value}", "-d", "@", e2e.grpc_target,
         "billing.v1.BillingService/MeterSession"], input=messages, capture_output=True, text=True, timeout=30)
    assert ran.returncode == 0, ran.stderr
    assert '"settled": true' in ran.stdout and '"committed_seconds": 42' in ran.stdout


def test_hostile_streams_end_with_client_errors_never_internal(e2e, session_keys, user):
    """Random and malformed messages after a valid open (a trusted caller's bugs), and garbage as
    the first message: every stream ends with a client error or OK, nothing UNKNOWN or INTERNAL."""
    import random

    rng = random.Random(21)
    key = session_keys.service.bearer()
    channel = grpc.insecure_channel(e2e.grpc_target)
    raw = channel.stream_stream(METHOD, request_serializer=lambda b: b, response_deserializer=lambda b: b)
    values = [0, 1, -1, 59, 2**31 - 1, -(2**31)]
    strings = ["", "x" * 200, "s\x00", "é", "session id", user]
    codes = []

    def hostile(n: int) -> list[bytes]:
        messages = [opening(user, f"fz-{n}", block=rng.choice([0, 5, 60])).SerializeToString()]
        for _ in range(rng.randint(0, 6)):
            kind = rng.randrange(5)
            if kind == 0:
                messages.append(report(rng.choice(values)).SerializeToString())
            elif kind == 1:
                messages.append(done(rng.choice(values)).SerializeToString())
            elif kind == 2:
                messages.append(opening(rng.choice(strings), rng.choice(strings), rng.choice(values),
                                        rng.choice(values)).SerializeToString())
            elif kind == 3:
                messages.append(bytes(rng.randrange(256) for _ in range(rng.randint(0, 40))))
            else:
                messages.append(pb.MeterSessionRequest().SerializeToString())
        if rng.random() < 0.2:
            messages[0] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 30)))
        return messages

    with channel:
        for n in range(150):
            try:
                list(raw(iter(hostile(n)), metadata=key, timeout=20))
                codes.append(grpc.StatusCode.OK)
            except grpc.RpcError as error:
                codes.append(error.code())
    assert grpc.StatusCode.UNKNOWN not in codes and grpc.StatusCode.INTERNAL not in codes, codes
    assert grpc.StatusCode.INVALID_ARGUMENT in codes


def test_the_readme_worker_example_bills_what_it_ran(e2e, session_keys, user, monkeypatch):
    from examples.meter_session import run

    monkeypatch.setenv("BILLING_KEY_ID", session_keys.service.key_id)
    monkeypatch.setenv("BILLING_KEY_SECRET", session_keys.service.secret)
    final = run(e2e.grpc_target, user, "readme-job", work_seconds=25, tick_seconds=0)
    assert final.settled and final.committed_seconds == 25
    assert balance_totals(e2e, user).total_seconds == START - 25
