"""Is the database reachable? One cheap background probe per process, not a query per request.

A connection of its own (outside the pool, so a saturated pool never looks like an outage)
runs `SELECT 1` every PROBE_INTERVAL_SECONDS, each bounded by PROBE_TIMEOUT_SECONDS. The
verdict changes only after FLIP_AFTER consecutive probes disagree with it (hysteresis), and
while they disagree the probe runs every DOUBT_INTERVAL_SECONDS, so an outage or a recovery
is confirmed within about a second. The first probe decides at once (there is no verdict yet).

Readers: `available` (a plain attribute, what the units of work check before they touch the
pool: while the database is down, requests fail at once instead of waiting for connections),
and `on_change` (the server turns gRPC health SERVING / NOT_SERVING with it). After an
outage the pool is asked to fill up again at once (its own reconnection backs off).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable, Protocol

import psycopg
from psycopg_pool import AsyncConnectionPool

from billing.adapters.db.own_connection import OwnConnection

log = logging.getLogger(__name__)

PROBE_INTERVAL_SECONDS = 1.0
DOUBT_INTERVAL_SECONDS = 0.25
PROBE_TIMEOUT_SECONDS = 1.0
FLIP_AFTER = 2

OnChange = Callable[[bool], Awaitable[None]]


class DatabaseAvailability:
    def __init__(
        self,
        conninfo: str,
        connect_kwargs: dict | None = None,
        pool: AsyncConnectionPool | None = None,
        interval: float = PROBE_INTERVAL_SECONDS,
        doubt_interval: float = DOUBT_INTERVAL_SECONDS,
        timeout: float = PROBE_TIMEOUT_SECONDS,
        flip_after: int = FLIP_AFTER,
    ):
        self._connection = OwnConnection(conninfo, connect_kwargs)
        self._pool = pool
        self._interval, self._doubt_interval, self._timeout = interval, doubt_interval, timeout
        self._flip_after = flip_after
        self._disagreeing = 0
        self._listeners: list[OnChange] = []
        self._task: asyncio.Task | None = None
        self._refill: asyncio.Task | None = None
        self.available = False  # no verdict yet: nothing is served before the first probe
        self.decided = asyncio.Event()  # set by the first verdict
        self.probes = 0

    def on_change(self, listener: OnChange) -> None:
        self._listeners.append(listener)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="database-probe")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._connection.drop()

    async def _run(self) -> None:
        while True:
            await self.observe(await self.probe())
            await asyncio.sleep(self._doubt_interval if self._disagreeing else self._interval)

    async def probe(self) -> bool:
        """One `SELECT 1` on the probe's connection (reconnecting first if needed), bounded in time."""
        self.probes += 1
        try:
            async with asyncio.timeout(self._timeout):
                await (await self._connection.get()).execute("SELECT 1")
            return True
        except (psycopg.Error, OSError, TimeoutError) as failure:
            log.debug("database probe failed: %s", failure)
            await self._connection.drop()
            return False

    async def observe(self, reachable: bool) -> None:
        if not self.decided.is_set():
            self.decided.set()
            await self._flip(reachable)
            return
        if reachable == self.available:
            self._disagreeing = 0
            return
        self._disagreeing += 1
        if self._disagreeing >= self._flip_after:
            await self._flip(reachable)

    async def _flip(self, reachable: bool) -> None:
        self._disagreeing = 0
        changed = reachable != self.available
        self.available = reachable
        if reachable:
            log.info("database reachable")
            if changed and self._pool is not None:
                # The pool's own reconnection backs off (and gives up after a few seconds):
                # fill it now that the database answers.
                self._refill = asyncio.get_running_loop().create_task(self._pool.check())
        else:
            log.warning("database unreachable: requests fail at once (503) until it answers again")
        for listener in self._listeners:
            await listener(reachable)

class Availability(Protocol):
    available: bool


class _AlwaysAvailable:
    """Storage without a probe (tests and tools that compose PostgresStorage by hand)."""

    available = True


ALWAYS_AVAILABLE: Availability = _AlwaysAvailable()
