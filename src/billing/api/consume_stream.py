"""ConsumeStream over gRPC: pipelined consumes for internal services (issue 24).

Each message is one Consume (service/consume.py, the unary call's use case) with its own
idempotency key. A reader task takes messages off the stream and starts each one's consume at
once, so a stream's consumes run concurrently and ride the group commit together; the stream
answers them in the order they came (a queue of their tasks), each with what Consume would
answer: its response, or its error as a message (`error_answer`), so a bad message never ends the
stream. At most IN_FLIGHT_MAX messages are unanswered: the reader waits for a slot before it
reads the next one, so gRPC's flow control pushes back on a client that sends faster than the
answers go. A stream with no new message for IDLE_SECONDS stops reading; it still answers what it
read, then ends (OK).

A stream that breaks (the client goes away, the server stops) leaves the consumes it started to
finish by themselves: each is one transaction, so it is charged entirely or not at all, and a
client that resends it with the same idempotency key gets the first answer.
"""

from __future__ import annotations

import asyncio
import logging
from typing import AsyncIterator, Iterable

import grpc

from billing.api import mapping
from billing.api.errors import STATUS_BY_ERROR, insufficient_ai_time_proto
from billing.api.interceptors import outage_kind
from billing.domain.errors import BillingError, InsufficientAiTime, InvalidArgument
from billing.domain.limits import IDEMPOTENCY_KEY_LENGTH_MAX
from billing.service import consume
from billing.service.dependencies import Dependencies
from billing.service.ports import Unavailable, outage_log
from billing.v1 import consumption_pb2 as pb

log = logging.getLogger(__name__)

IN_FLIGHT_MAX = 128  # unanswered messages per stream; the reader waits for an answer past it
IDLE_SECONDS = 300.0  # no new message for this long: the stream answers what it read and ends
UNAVAILABLE_RETRY_AFTER_SECONDS = 1  # as the unary call's UNAVAILABLE says (api/errors.py)

# The consumes of streams that broke while they ran: kept referenced until they finish (the event
# loop holds tasks weakly), so a broken stream never cuts a consume short.
_ORPHANS: set[asyncio.Task] = set()


async def serve_consume_stream(
    deps: Dependencies, requests: AsyncIterator[pb.ConsumeStreamRequest],
    in_flight_max: int = IN_FLIGHT_MAX, idle_seconds: float = IDLE_SECONDS,
) -> AsyncIterator[pb.ConsumeStreamResponse]:
    answers: asyncio.Queue[asyncio.Task | None] = asyncio.Queue()
    slots = asyncio.Semaphore(in_flight_max)
    reader = asyncio.ensure_future(_read(deps, requests, answers, slots, idle_seconds))
    pending: asyncio.Task | None = None
    try:
        while (pending := await answers.get()) is not None:
            # Shielded: the stream's cancellation must not cancel a consume mid-way (see above).
            answer = await asyncio.shield(pending)
            slots.release()
            yield answer
        await reader  # a message that did not decode ends the stream here, after the answers before it
    finally:
        if not reader.done():
            reader.cancel()
        _keep_running([pending] if pending is not None else [])
        _keep_running(answers.get_nowait() for _ in range(answers.qsize()))


async def _read(
    deps: Dependencies, requests: AsyncIterator[pb.ConsumeStreamRequest],
    answers: asyncio.Queue[asyncio.Task | None], slots: asyncio.Semaphore, idle_seconds: float,
) -> None:
    messages = aiter(requests)
    sequence = 0
    try:
        while True:
            await slots.acquire()
            try:
                async with asyncio.timeout(idle_seconds):
                    request = await anext(messages)
            except StopAsyncIteration:
                return
            except TimeoutError:
                log.info("a consume stream sent nothing for %.0f s: it ends once answered", idle_seconds)
                return
            answers.put_nowait(asyncio.ensure_future(answer_one(deps, sequence, request)))
            sequence += 1
    finally:
        answers.put_nowait(None)


def _keep_running(tasks: Iterable[asyncio.Task | None]) -> None:
    for task in tasks:
        if task is not None and not task.done():
            _ORPHANS.add(task)
            task.add_done_callback(_ORPHANS.discard)


async def answer_one(deps: Dependencies, sequence: int, request: pb.ConsumeStreamRequest) -> pb.ConsumeStreamResponse:
    """What Consume answers for the message: its response, or its error as a message."""
    wanted = request.consume
    answer = pb.ConsumeStreamResponse(sequence=sequence, idempotency_key=wanted.idempotency_key[:IDEMPOTENCY_KEY_LENGTH_MAX])
    try:
        if not request.HasField("consume"):
            raise InvalidArgument("each message carries one consume", field="consume")
        result = await consume.consume(
            deps, wanted.user_id, wanted.operation, wanted.seconds, wanted.idempotency_key, wanted.resume_token)
    except Exception as error:
        answer.error.CopyFrom(error_answer(error))
        return answer
    answer.result.CopyFrom(mapping.consume(result))
    return answer


def error_answer(error: Exception) -> pb.ConsumeStreamError:
    """The error the unary Consume would end with (api/errors.py, interceptors.py's _abort_for), as a message."""
    if isinstance(error, BillingError) and type(error) in STATUS_BY_ERROR:
        code, http_status = STATUS_BY_ERROR[type(error)]
        answer = pb.ConsumeStreamError(
            code=code.name, http_status=http_status, reason=error.reason, message=error.message, field=error.field or "")
        if isinstance(error, InsufficientAiTime):
            answer.insufficient_ai_time.CopyFrom(insufficient_ai_time_proto(error))
        retry_after = getattr(error, "retry_after_seconds", None)
        if retry_after is not None:
            answer.retry_after_seconds = retry_after
        return answer
    if isinstance(error, Unavailable):
        kind = outage_kind(error)
        log.warning("%s unavailable in ConsumeStream: %s", kind, str(error).split("\n", 1)[0], extra=outage_log(kind))
        return pb.ConsumeStreamError(
            code=grpc.StatusCode.UNAVAILABLE.name, http_status=503, reason="UNAVAILABLE",
            message="temporarily unavailable; retry with the same idempotency_key",
            retry_after_seconds=UNAVAILABLE_RETRY_AFTER_SECONDS)
    log.error("unexpected error in a ConsumeStream message", exc_info=error)
    return pb.ConsumeStreamError(
        code=grpc.StatusCode.INTERNAL.name, http_status=500, reason="INTERNAL", message="internal error")
