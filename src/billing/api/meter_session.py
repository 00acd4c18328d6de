"""MeterSession over gRPC: one stream, one session (service/metered_sessions.py).

Each message gets one answer, in order. A stream that ends without `done` (the client went away,
the network, a server shutting down) is handed to the session as broken: it persists what it heard
and waits the grace period for a resume. That runs shielded from the call's cancellation, so a
cancelled stream still settles what it reported.
"""

from __future__ import annotations

import asyncio
import logging
from typing import AsyncIterator

from billing.api.errors import insufficient_ai_time_proto
from billing.api.interceptors import outage_kind
from billing.domain.errors import InvalidArgument
from billing.service.dependencies import Dependencies
from billing.service.metered_sessions import MeterSession, SessionState
from billing.service.ports import Unavailable, outage_log
from billing.v1 import metered_sessions_pb2 as pb

log = logging.getLogger(__name__)


async def serve_session(
    deps: Dependencies, requests: AsyncIterator[pb.MeterSessionRequest],
) -> AsyncIterator[pb.MeterSessionResponse]:
    session = MeterSession(deps)
    settled = False
    try:
        async for request in requests:
            state = await _step(session, request)
            yield response(state)
            if state.settled:
                settled = True
                return
    finally:
        if not settled:
            await _shielded_break(session)


async def _step(session: MeterSession, request: pb.MeterSessionRequest) -> SessionState:
    step = request.WhichOneof("step")
    if step == "open":
        opening = request.open
        if session.is_open:
            raise InvalidArgument("the session is already open: only the first message opens it", field="open")
        return await session.open(
            opening.user_id, opening.session_id, opening.operation, opening.block_seconds, opening.max_seconds)
    if step == "report":
        return await session.report(request.report.elapsed_seconds)
    if step == "done":
        return await session.done(request.done.elapsed_seconds)
    raise InvalidArgument("each message is one of open, report or done", field="step")


async def _shielded_break(session: MeterSession) -> None:
    task = asyncio.ensure_future(session.broken())
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        # The call was cancelled again while persisting: the task carries on by itself.
        task.add_done_callback(_log_failure)
        raise
    except Exception as error:
        _log_unpersisted(error)


def _log_failure(task: asyncio.Future) -> None:
    if not task.cancelled() and task.exception() is not None:
        _log_unpersisted(task.exception())


def _log_unpersisted(error: BaseException | None) -> None:
    """The hold stays open at its last persisted elapsed and expires by itself (the documented bound).
    A database outage breaks every session that persists meanwhile: those lines are outage lines (one
    per interval, no traceback: api/logs.py), not one traceback per session."""
    if isinstance(error, Unavailable):
        kind = outage_kind(error)
        log.warning("a broken metered session could not persist its last report: %s unavailable", kind,
                    extra=outage_log(kind))
        return
    log.warning("a broken metered session could not persist its last report", exc_info=error)


def response(state: SessionState) -> pb.MeterSessionResponse:
    answer = pb.MeterSessionResponse(
        session_id=state.session_id, committed_seconds=state.committed_seconds, held_seconds=state.held_seconds,
        remaining_seconds=state.remaining_seconds, max_reached=state.max_reached, settled=state.settled,
    )
    if state.exhausted is not None:
        answer.exhausted.CopyFrom(insufficient_ai_time_proto(state.exhausted))
    return answer
