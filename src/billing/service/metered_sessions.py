"""Metered sessions: AI work billed to the second over one stream, on a hold that moves with it.

A session is a hold (`session:<session_id>`) kept one block ahead of the work. The client reports
its cumulative elapsed seconds as it goes; the session answers each report from memory and
writes only when it must (persists): every PERSIST_EVERY_SECONDS of reported work, and whenever
less than half a block is left held, when the same change commits what was reported and holds the
next block. So 2,000 sessions reporting every second cost ~200 writes a second, not 2,000.

Each write also moves the hold's expiry to "the held time left, plus RESUME_GRACE_SECONDS", and a
report also writes when that expiry is less than half the grace away: the hold outlives a living
stream that reports at least every 15 s, even one whose elapsed does not move, and a session whose
server died settles by itself (at the last persisted elapsed) soon after its held time would have
run out. A stream silent for longer than its held time left plus the grace loses its hold: it
settles at the last persisted elapsed, and the next report is HOLD_SETTLED. When the stream breaks
(client gone, network) the server persists the last elapsed it heard and leaves the hold open for
the grace period: the same session_id resumes it on another stream; otherwise it expires, settled
at that elapsed. Charged: a crashed client, up to its last report; a crashed server, up to the
last persisted one (at most PERSIST_EVERY_SECONDS less, in the user's favour).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from billing.domain.errors import InsufficientAiTime, InvalidArgument
from billing.domain.holds import ttl_within_limits
from billing.domain.limits import IDEMPOTENCY_KEY_LENGTH_MAX, require_seconds, require_token
from billing.domain.wallet import BALANCE_SECONDS_MAX
from billing.service.dependencies import Dependencies
from billing.service.ports import Unavailable
from billing.service.holds import HoldResult, advance_hold, commit_hold, extend_hold, place_hold

log = logging.getLogger(__name__)

PERSIST_EVERY_SECONDS = 10
RESUME_GRACE_SECONDS = 30
BLOCK_SECONDS_DEFAULT = 60
BLOCK_SECONDS_MIN = 5
BLOCK_SECONDS_MAX = 3600
SESSION_ID_LENGTH_MAX = IDEMPOTENCY_KEY_LENGTH_MAX - len("session:")


@dataclass(frozen=True)
class SessionState:
    """What a session answers: committed (persisted) and held seconds, and what is left of the
    held time past the last report. `exhausted`: the next block could not be held (the work must
    stop when `remaining_seconds` runs out), with the 402's details; `settled`: done."""

    session_id: str
    committed_seconds: int
    held_seconds: int
    remaining_seconds: int
    exhausted: InsufficientAiTime | None = None
    max_reached: bool = False
    settled: bool = False


class MeterSession:
    """One session on one stream: open (or resume), report, done, or broken. Not shared between
    streams; its I/O is the hold use cases'."""

    def __init__(self, deps: Dependencies):
        self._deps = deps
        self._user_id = ""
        self._session_id = ""
        self._hold_id = ""
        self._block = BLOCK_SECONDS_DEFAULT
        self._max: int | None = None
        self._elapsed = 0  # the last report
        self._committed = 0  # persisted
        self._held = 0
        self._expires_at = datetime.min.replace(tzinfo=timezone.utc)
        self._exhausted: InsufficientAiTime | None = None
        self._open = False

    @property
    def is_open(self) -> bool:
        return self._open

    async def open(
        self, user_id: str, session_id: str, operation: str, block_seconds: int = 0, max_seconds: int = 0,
    ) -> SessionState:
        require_token(session_id, field="session_id", max_length=SESSION_ID_LENGTH_MAX, required=True)
        if block_seconds:
            require_seconds(block_seconds, field="block_seconds", minimum=BLOCK_SECONDS_MIN, maximum=BLOCK_SECONDS_MAX)
        if max_seconds:
            require_seconds(max_seconds, field="max_seconds", minimum=1, maximum=BALANCE_SECONDS_MAX)
        self._user_id, self._session_id, self._hold_id = user_id, session_id, f"session:{session_id}"
        self._block = block_seconds or BLOCK_SECONDS_DEFAULT
        self._max = max_seconds or None
        first = min(self._block, self._max or self._block)
        # A hold of the same id and values is this session's: resumed (its expiry moved on again).
        result = await place_hold(self._deps, user_id, self._hold_id, operation, first, self._ttl(first))
        if result.hold.state != "open":
            # Ended (by `done`, or expired): answered as settled with what was charged, so a client
            # whose `done` answer was lost can open again to learn it; the stream ends there.
            self._apply(result)
            self._elapsed = self._committed
            return self._state(settled=True)
        if result.replayed:
            held_left = result.hold.held_seconds - result.hold.committed_seconds
            result = await extend_hold(self._deps, user_id, self._hold_id, 0, self._ttl(held_left))
        self._apply(result)
        self._elapsed = self._committed
        self._open = True
        return self._state()

    async def report(self, elapsed_seconds: int) -> SessionState:
        self._require_open()
        self._elapsed = self._require_elapsed(elapsed_seconds)
        can_grow = self._max is None or self._held < self._max
        needs_block = can_grow and (self._held - self._elapsed) * 2 < self._block
        # Every 10 s of work, or when the hold would expire within half the grace period (work
        # that reports no progress for a while must not lose its hold while the stream lives).
        persist_due = (self._elapsed - self._committed >= PERSIST_EVERY_SECONDS
                       or self._deps.clock.now() >= self._expires_at - timedelta(seconds=RESUME_GRACE_SECONDS / 2))
        # Exhausted: the next block is tried again only with a persist (a top-up may have landed).
        try:
            if needs_block and (self._exhausted is None or persist_due):
                await self._persist(self._next_block())
            elif persist_due:
                await self._persist(0)
        except Unavailable:
            # The database is out for a moment: the session goes on within what it holds, and the
            # next report persists again (still due). Only the time held bounds the work meanwhile.
            log.info("a metered session could not persist; it retries with the next report", exc_info=True)
        return self._state()

    async def done(self, elapsed_seconds: int) -> SessionState:
        self._require_open()
        self._elapsed = self._require_elapsed(elapsed_seconds)
        result = await commit_hold(self._deps, self._user_id, self._hold_id, self._elapsed, final=True)
        self._apply(result)
        self._open = False
        return self._state(settled=True)

    async def broken(self) -> None:
        """The stream ended without `done`: what was heard is persisted and the hold waits the
        grace period for a resume, then expires, settled at that."""
        if not self._open:
            return
        self._open = False
        advanced = await advance_hold(
            self._deps, self._user_id, self._hold_id, self._elapsed, 0, RESUME_GRACE_SECONDS, keep_held_time=False)
        self._apply(advanced.result)

    async def _persist(self, more: int) -> None:
        advanced = await advance_hold(self._deps, self._user_id, self._hold_id, self._elapsed, more, RESUME_GRACE_SECONDS)
        self._apply(advanced.result)
        if more:
            self._exhausted = advanced.short

    def _next_block(self) -> int:
        return self._block if self._max is None else min(self._block, self._max - self._held)

    def _apply(self, result: HoldResult) -> None:
        self._committed = result.hold.committed_seconds
        self._held = result.hold.held_seconds
        self._expires_at = result.hold.expires_at

    def _ttl(self, held_left: int) -> int:
        return ttl_within_limits(held_left + RESUME_GRACE_SECONDS)

    def _require_open(self) -> None:
        if not self._open:
            raise InvalidArgument("the session is not open: its first message opens it", field="open")

    def _require_elapsed(self, elapsed_seconds: int) -> int:
        require_seconds(elapsed_seconds, field="elapsed_seconds", minimum=self._elapsed, maximum=BALANCE_SECONDS_MAX)
        # Work past the held time was not authorised (it had to stop there): it is not charged.
        return min(elapsed_seconds, self._held)

    def _state(self, settled: bool = False) -> SessionState:
        return SessionState(
            session_id=self._session_id, committed_seconds=self._committed, held_seconds=self._held,
            remaining_seconds=0 if settled else max(0, self._held - self._elapsed), exhausted=self._exhausted,
            max_reached=self._max is not None and self._held >= self._max, settled=settled,
        )

