"""Reads on a hot standby that are never older than the caller's own writes (read-your-writes).

The rule (docs/decisions.md, "Read replica"): a read may use the standby only once the standby has
replayed every commit that returned *before the read began*, whichever server replica made it. A
client that got a write's answer from one replica and reads through another therefore sees its write,
with nothing to carry between calls (the contract's JSON answers hold no account version to pass
back). How it is known, without a round trip on the primary per read:

- ReplayFence: reads that wait share one *cycle*: note the moment, read the primary's WAL write
  position (`pg_current_wal_lsn()`: a transaction that committed with synchronous_commit on, the
  service's setting, returned only after its commit record was flushed, so at or below it), then
  poll the standby's `pg_last_wal_replay_lsn()` until it reaches that position.
  Every read that began before the cycle's moment is then safe on the standby. One cycle serves
  every read that arrived while the previous one ran (as group commit does for writes): one primary
  statement per cycle, not per read; under load at most one cycle per CYCLE_INTERVAL_MIN_SECONDS,
  idle none.
- A read that the fence does not clear within BILLING_READ_REPLICA_WAIT_MS reads the primary.
- StandbyBreaker: a standby that errs or does not answer in time (dead, restarting, far behind) is
  left alone for BREAKER_OPEN_SECONDS: reads go straight to the primary, paying no wait. Every
  standby failure in a read is retried on the primary, so a standby never fails a read.

RoutingStorage wraps the primary's PostgresStorage (bootstrap wires it only with DATABASE_READ_URL):
transactions and unlocked units are the primary's, untouched; `reader()` units send the account-keyed
reads (wallets.read / exists, history.events_page / consumption_by_day: GetBalance, batch check,
usage, ListEvents and the live balance's re-reads) to the standby when the fence allows, and every
other read to the primary. A standby read that finds no account asks the primary (it may be new).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from types import TracebackType
from typing import Any, Awaitable, Callable, TypeVar

import psycopg
from psycopg_pool import PoolTimeout

from billing.adapters.db.coalescer import BatcherStopped
from billing.adapters.db.own_connection import OwnConnection
from billing.adapters.db.unit_of_work import PostgresStorage, PostgresUnitOfWork
from billing.service.ports import Unavailable

log = logging.getLogger(__name__)

# A standby that failed is not tried again for this long (then one read tries it).
BREAKER_OPEN_SECONDS = 5.0
# A standby that did not catch up in time (alive, behind under load): reads stop waiting on it for this long.
LAGGING_REST_SECONDS = 0.5
# A read on the standby that takes longer is abandoned and made on the primary.
STANDBY_READ_TIMEOUT_SECONDS = 0.5
# A fence cycle that takes longer (a standby that stopped answering) is given up and its connections dropped.
CYCLE_TIMEOUT_SECONDS = 1.0
# Between two looks at the standby's replay position within one cycle.
REPLAY_POLL_SECONDS = 0.0005
# Cycles start at most this often: under a high read rate each serves more reads, and the primary runs
# at most 1 / this fence statements a second per process whatever the rate (a read waits up to this more).
CYCLE_INTERVAL_MIN_SECONDS = 0.005
# Connections of the fence: a dead standby must fail fast (libpq's minimum connect timeout is 2 s).
FENCE_CONNECT_OPTIONS = {"connect_timeout": 2, "options": "-c statement_timeout=1000"}
# What a standby does when it cannot answer: all of them send the read to the primary.
STANDBY_FAILURES = (psycopg.Error, PoolTimeout, BatcherStopped, Unavailable, TimeoutError, OSError)
OBSERVED_LAGS_KEPT = 10_000

T = TypeVar("T")


def lsn_number(lsn: str) -> int:
    """'16/B374D848' -> a comparable integer (the two hex halves of a 64-bit WAL position)."""
    high, _, low = lsn.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


class StandbyBreaker:
    """Open (the standby is not tried) for open_seconds after a failure; closed otherwise."""

    def __init__(self, open_seconds: float = BREAKER_OPEN_SECONDS, clock: Callable[[], float] = time.monotonic):
        self._open_seconds = open_seconds
        self._clock = clock
        self._open_until = 0.0
        self.openings = 0
        self.reason = ""  # why it last opened (tests, logs)

    @property
    def closed(self) -> bool:
        return self._clock() >= self._open_until

    def failed(self, why: object, rest_seconds: float | None = None) -> None:
        rest = self._open_seconds if rest_seconds is None else rest_seconds
        self.reason = str(why)
        if self.closed:  # one line per opening, not one per read that met it
            self.openings += 1
            log.log(logging.WARNING if rest >= self._open_seconds else logging.INFO,
                    "read replica: %s; reads go to the primary for %.1f s", why, rest)
        self._open_until = max(self._open_until, self._clock() + rest)


class ReplayFence:
    """wait(): True once the standby has replayed every commit that returned before the call."""

    def __init__(
        self, primary_conninfo: str, standby_conninfo: str, breaker: StandbyBreaker, wait_seconds: float,
        connect_kwargs: dict[str, Any] | None = None, cycle_interval: float = CYCLE_INTERVAL_MIN_SECONDS,
    ):
        options = connect_kwargs or FENCE_CONNECT_OPTIONS
        self._cycle_interval = cycle_interval
        self._cycle_started = 0.0  # kept across the cycles' task, which ends when no read waits
        self._primary = OwnConnection(primary_conninfo, options)
        self._standby = OwnConnection(standby_conninfo, options)
        self._breaker = breaker
        self.wait_seconds = wait_seconds
        # The connections found to be of one cluster (held, so that a new connection is never taken for them).
        self._verified: tuple[psycopg.AsyncConnection, psycopg.AsyncConnection] | None = None
        self._replayed = 0  # the standby's replay position last seen on the verified connection
        self._next: asyncio.Future[bool] | None = None  # the cycle the reads arriving now wait for
        self._cycles: asyncio.Task | None = None
        self._closed = False
        self.cycles = 0
        # How long after a cycle's moment the standby had replayed the primary's position then:
        # commit-to-visible as this process observes it (the bench reads it); polled_lags: only the
        # cycles that found WAL the standby had not been seen past (a write since the last cycle).
        self.observed_lags: deque[float] = deque(maxlen=OBSERVED_LAGS_KEPT)
        self.polled_lags: deque[float] = deque(maxlen=OBSERVED_LAGS_KEPT)

    def start(self) -> None:
        """Opens the fence's connections and checks the standby at once (a cycle nobody waits for), so that
        the first reads do not pay for the connections (~25 ms: longer than they wait, so they would
        find the standby resting)."""
        self._join_next_cycle()

    async def warm(self) -> bool:
        """Waits for a cycle as long as one may take (tests, the bench): True when the standby is current."""
        return await asyncio.shield(self._join_next_cycle())

    def _join_next_cycle(self) -> asyncio.Future[bool]:
        loop = asyncio.get_running_loop()
        cycle = self._next
        if cycle is None:
            cycle = self._next = loop.create_future()
        if self._cycles is None or self._cycles.done():
            self._cycles = loop.create_task(self._run_cycles(), name="replay-fence")
        return cycle

    async def wait(self) -> bool:
        if self._closed:
            return False
        cycle = self._join_next_cycle()
        try:
            async with asyncio.timeout(self.wait_seconds):
                return await asyncio.shield(cycle)
        except TimeoutError:
            return False

    async def _run_cycles(self) -> None:
        while self._next is not None and not self._closed:
            pause = self._cycle_started + self._cycle_interval - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)  # the reads arriving meanwhile join this cycle
            self._cycle_started = time.monotonic()
            cycle, self._next = self._next, None  # every read waiting on it began before this line
            try:
                async with asyncio.timeout(CYCLE_TIMEOUT_SECONDS):
                    caught_up = await self._one_cycle()
            except asyncio.CancelledError:
                cycle.set_result(False)
                raise
            except Exception as failure:  # noqa: BLE001 - whatever it was, the reads go to the primary
                self._breaker.failed(f"the standby's replay position is unknown ({type(failure).__name__}: {failure})")
                await self._primary.drop()
                await self._standby.drop()
                self._verified, self._replayed = None, 0  # the next connections are checked and seen afresh
                caught_up = False
            cycle.set_result(caught_up)

    async def _one_cycle(self) -> bool:
        began = time.monotonic()
        primary = await self._primary.get()
        standby = await self._standby.get()
        # The connections themselves, not their id()s: a new connection may reuse a dropped one's id.
        verified = self._verified is not None and self._verified[0] is primary and self._verified[1] is standby
        if not verified and not await self._one_cluster(primary, standby):
            return False
        row = await (await primary.execute("SELECT pg_current_wal_lsn()::text")).fetchone()
        assert row is not None
        target = lsn_number(row[0])
        self.cycles += 1
        if target <= self._replayed:
            # No WAL since the standby was last seen past it (reads alone): one statement per cycle.
            self.observed_lags.append(time.monotonic() - began)
            return True
        while True:
            row = await (await standby.execute("SELECT pg_last_wal_replay_lsn()::text")).fetchone()
            if row is None or row[0] is None:
                # Not in recovery: a promoted standby, or a primary named as one. Never compared.
                self._breaker.failed("DATABASE_READ_URL is not a standby (pg_last_wal_replay_lsn() is null)")
                return False
            self._replayed = lsn_number(row[0])
            if self._replayed >= target:
                self.observed_lags.append(time.monotonic() - began)
                self.polled_lags.append(self.observed_lags[-1])
                return True
            if time.monotonic() - began > self.wait_seconds:
                return False  # the reads waiting have given up: the next cycle starts from a newer moment
            await asyncio.sleep(REPLAY_POLL_SECONDS)

    async def _one_cluster(self, primary: psycopg.AsyncConnection, standby: psycopg.AsyncConnection) -> bool:
        """WAL positions compare only within one cluster: a standby of another primary (a misnamed
        DATABASE_READ_URL, a local standby left from a deleted primary) could be "ahead" and wrong."""
        identifiers = []
        for connection in (primary, standby):
            row = await (await connection.execute("SELECT system_identifier FROM pg_control_system()")).fetchone()
            identifiers.append(row[0] if row else None)
        if identifiers[0] != identifiers[1]:
            self._breaker.failed("DATABASE_READ_URL is not a copy of DATABASE_URL (their system identifiers differ)")
            return False
        self._verified = (primary, standby)
        self._replayed = 0  # a standby reconnected to may be another instance (restarted): seen afresh
        return True

    async def close(self) -> None:
        self._closed = True
        if self._cycles is not None:
            self._cycles.cancel()
            await asyncio.gather(self._cycles, return_exceptions=True)
        if self._next is not None and not self._next.done():
            self._next.set_result(False)
        await self._primary.drop()
        await self._standby.drop()


class RoutingStorage:
    """The service's storage with a standby for reads: see the module's docstring."""

    def __init__(
        self, primary: PostgresStorage, standby: PostgresStorage, fence: ReplayFence, breaker: StandbyBreaker,
        read_timeout: float = STANDBY_READ_TIMEOUT_SECONDS,
    ):
        self.primary = primary
        self.standby = standby
        self.fence = fence
        self.breaker = breaker
        self.read_timeout = read_timeout
        # Where the account-keyed reads went (tests, the bench).
        self.standby_reads = 0
        self.primary_reads = 0
        self.standby_failures = 0

    @property
    def pool(self) -> Any:
        return self.primary.pool

    def counts(self) -> dict[str, int]:
        """For the metrics endpoint (adapters/metrics.py)."""
        return {"standby_reads": self.standby_reads, "primary_reads": self.primary_reads,
                "standby_failures": self.standby_failures, "resting": int(not self.breaker.closed)}

    def transaction(self) -> PostgresUnitOfWork:
        return self.primary.transaction()

    def unlocked(self) -> PostgresUnitOfWork:
        return self.primary.unlocked()

    def single_write(self) -> PostgresUnitOfWork:
        return self.primary.single_write()

    def reader(self) -> "RoutedReader":
        return RoutedReader(self)

    async def standby_is_current(self) -> bool:
        """O(1) when the breaker is open; else the fence's wait (shared with every read arriving meanwhile)."""
        if not self.breaker.closed:
            return False
        if await self.fence.wait():
            return True
        if self.breaker.closed:
            # Not cleared in time: a standby this far behind is given a rest, so reads stop waiting on it.
            self.breaker.failed(f"the standby did not replay the primary's position within "
                                f"{self.fence.wait_seconds * 1000:.0f} ms", LAGGING_REST_SECONDS)
        return False

    def standby_failed(self, failure: BaseException) -> None:
        self.standby_failures += 1
        self.breaker.failed(f"a read failed on the standby ({type(failure).__name__}: {failure})")


class RoutedReader:
    """A reading unit of work: its account-keyed reads on the standby when current, all else on the primary.
    The standby is chosen (or not) at the unit's first such read and kept for the rest of it, so its reads
    of one account agree with each other (the standby only moves forward); a standby failure moves the
    unit to the primary, which is newer still."""

    def __init__(self, storage: RoutingStorage):
        self._storage = storage
        self._primary_unit = storage.primary.reader()
        self._standby_unit: PostgresUnitOfWork | None = None
        self._chosen = False
        self.wallets = _RoutedWallets(self)
        self.history = _RoutedHistory(self)

    def __getattr__(self, name: str) -> Any:  # every other repository: the primary's
        return getattr(self._primary_unit, name)

    async def __aenter__(self) -> "RoutedReader":
        await self._primary_unit.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self._leave_standby()
        await self._primary_unit.__aexit__(exc_type, exc, traceback)

    async def _leave_standby(self) -> None:
        unit, self._standby_unit = self._standby_unit, None
        if unit is not None:
            try:
                await unit.__aexit__(None, None, None)
            except STANDBY_FAILURES:
                pass  # its connection was broken; the pool replaces it

    async def read(self, on: Callable[[PostgresUnitOfWork], Awaitable[T]], found: Callable[[T], bool]) -> T:
        """on(unit): the read; found(result): False when the standby's answer must be checked on the
        primary (no such account: it may have been created since)."""
        storage = self._storage
        if not self._chosen:
            self._chosen = True
            if await storage.standby_is_current():
                unit = storage.standby.reader()
                try:
                    await unit.__aenter__()
                    self._standby_unit = unit
                except STANDBY_FAILURES as failure:
                    storage.standby_failed(failure)
        standby = self._standby_unit
        if standby is not None:
            try:
                async with asyncio.timeout(storage.read_timeout):
                    result = await on(standby)
            except STANDBY_FAILURES as failure:
                storage.standby_failed(failure)
                await self._leave_standby()
            else:
                if found(result):
                    storage.standby_reads += 1
                    return result
        storage.primary_reads += 1
        return await on(self._primary_unit)


def _always(_: object) -> bool:
    return True


class _RoutedWallets:
    def __init__(self, reader: RoutedReader):
        self._reader = reader

    async def read(self, account_id: str, now: Any, idempotency_key: str | None = None, expired_since: Any = None):
        return await self._reader.read(
            lambda unit: unit.wallets.read(account_id, now, idempotency_key, expired_since),
            lambda loaded: loaded[0] is not None)

    async def exists(self, account_id: str) -> bool:
        return await self._reader.read(lambda unit: unit.wallets.exists(account_id), bool)

    async def load_for_change(self, *args: Any, **kwargs: Any):
        return await self.read(*args, **kwargs)  # a reader's "for change" is a read (as PostgresWallets does)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reader._primary_unit.wallets, name)


class _RoutedHistory:
    def __init__(self, reader: RoutedReader):
        self._reader = reader

    async def events_page(self, *args: Any, **kwargs: Any):
        return await self._reader.read(lambda unit: unit.history.events_page(*args, **kwargs), _always)

    async def consumption_by_day(self, *args: Any, **kwargs: Any):
        return await self._reader.read(lambda unit: unit.history.consumption_by_day(*args, **kwargs), _always)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reader._primary_unit.history, name)
