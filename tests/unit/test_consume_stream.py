"""ConsumeStream's servicer on the in-memory storage: answers in order, errors per message, the
in-flight bound, the idle end, a malformed message ending the stream after the answers before it."""

from __future__ import annotations

import asyncio

import pytest

from billing.api.consume_stream import _ORPHANS, error_answer, serve_consume_stream
from billing.domain.errors import InvalidArgument, RequestInProgress
from billing.service import consume as consume_module
from billing.service.balance import get_balance
from billing.service.ports import Unavailable
from billing.v1 import consumption_pb2 as pb
from tests.unit.memory_fixtures import START_SECONDS as START, USER
from tests.unit.memory_fixtures import account, clock, database, deps  # noqa: F401 - fixtures


def message(key: str, seconds: int = 10, user: str = USER, operation: str = "build") -> pb.ConsumeStreamRequest:
    return pb.ConsumeStreamRequest(consume=pb.ConsumeRequest(
        user_id=user, operation=operation, seconds=seconds, idempotency_key=key))


async def from_list(messages):
    for item in messages:
        yield item


async def answers_to(deps, messages, **limits):
    return [answer async for answer in serve_consume_stream(deps, from_list(messages), **limits)]


async def test_answers_come_in_order_with_errors_as_messages(deps, account, database):
    messages = [
        message("k-1"), message("k-2", user="nobody"), message("k-3", seconds=0), message("k-1"),
        message("k-4", seconds=START * 10), pb.ConsumeStreamRequest(), message("k-5", operation="dance"),
        message("k-6", seconds=20),
    ]
    answers = await answers_to(deps, messages)
    assert [a.sequence for a in answers] == list(range(len(messages)))
    assert [a.idempotency_key for a in answers] == ["k-1", "k-2", "k-3", "k-1", "k-4", "", "k-5", "k-6"]
    assert [a.WhichOneof("outcome") for a in answers] == [
        "result", "error", "error", "result", "error", "error", "error", "result"]
    assert answers[1].error.code == "NOT_FOUND" and answers[1].error.http_status == 404
    assert (answers[2].error.code, answers[2].error.field) == ("INVALID_ARGUMENT", "seconds")
    assert answers[3].result.replayed and answers[3].result.consumed_seconds == 10
    short = answers[4].error
    assert (short.code, short.http_status, short.reason) == ("FAILED_PRECONDITION", 402, "INSUFFICIENT_AI_TIME")
    assert short.insufficient_ai_time.resume_token and short.insufficient_ai_time.deficit_seconds > 0
    assert answers[5].error.field == "consume" and answers[6].error.field == "operation"
    totals = (await get_balance(deps, USER)).view.totals
    assert totals.total_seconds == START - 30
    assert database.ledger_matches_buckets(USER)


async def test_no_more_than_the_bound_is_in_flight(deps, account, monkeypatch):
    started, release = [], asyncio.Event()

    async def slow_consume(deps, user, operation, seconds, key, resume_token):
        started.append(key)
        await release.wait()
        raise InvalidArgument("stopped", field="seconds")

    monkeypatch.setattr("billing.service.consume.consume", slow_consume)
    stream = serve_consume_stream(deps, from_list([message(f"k-{n}") for n in range(10)]), in_flight_max=3)
    first = asyncio.ensure_future(anext(stream))
    for _ in range(20):
        await asyncio.sleep(0)
    assert started == ["k-0", "k-1", "k-2"]  # the reader waits for an answer before the fourth
    release.set()
    rest = [await first] + [answer async for answer in stream]
    assert [a.sequence for a in rest] == list(range(10)) and len(started) == 10


async def test_a_stream_that_sends_nothing_for_the_idle_time_answers_what_it_read_and_ends(deps, account):
    async def one_then_silence():
        yield message("k-1")
        await asyncio.Event().wait()

    answers = [a async for a in serve_consume_stream(deps, one_then_silence(), idle_seconds=0.05)]
    assert [a.result.idempotency_key for a in answers] == ["k-1"]


async def test_a_message_that_does_not_decode_ends_the_stream_after_the_answers_before_it(deps, account):
    async def then_malformed():
        yield message("k-1")
        raise InvalidArgument("the request is not a valid billing.v1.ConsumeStreamRequest message")

    stream = serve_consume_stream(deps, then_malformed())
    assert (await anext(stream)).result.consumed_seconds == 10
    with pytest.raises(InvalidArgument):
        await anext(stream)


def test_errors_carry_what_the_unary_status_carries():
    busy = error_answer(RequestInProgress("busy"))
    assert (busy.code, busy.http_status, busy.retry_after_seconds, busy.field) == ("ABORTED", 409, 2, "idempotency_key")
    down = error_answer(Unavailable("pool timeout", kind="database"))
    assert (down.code, down.http_status, down.retry_after_seconds) == ("UNAVAILABLE", 503, 1)
    assert error_answer(RuntimeError("bug")).code == "INTERNAL"


async def test_a_stream_cancelled_mid_way_leaves_its_consumes_to_finish(deps, account, monkeypatch):
    release, finished = asyncio.Event(), []
    real_consume = consume_module.consume

    async def gated_consume(deps, user, operation, seconds, key, resume_token):
        await release.wait()
        result = await real_consume(deps, user, operation, seconds, key, resume_token)
        finished.append(key)
        return result

    monkeypatch.setattr("billing.service.consume.consume", gated_consume)
    sent = asyncio.Event()

    async def two_then_wait():
        yield message("k-1")
        yield message("k-2")
        sent.set()
        await asyncio.Event().wait()

    async def read_all():
        return [a async for a in serve_consume_stream(deps, two_then_wait())]

    stream = asyncio.ensure_future(read_all())
    await sent.wait()
    stream.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stream
    release.set()
    await asyncio.gather(*_ORPHANS)  # kept referenced until they finish
    assert sorted(finished) == ["k-1", "k-2"]
    assert (await get_balance(deps, USER)).view.totals.total_seconds == START - 20
