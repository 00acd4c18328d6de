"""The read router's decisions without a database (adapters/db/read_routing.py): which source a read
uses, and that a standby's failure or empty answer is never what the caller gets."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from billing.adapters.db.read_routing import ReplayFence, RoutingStorage, StandbyBreaker, lsn_number


class _Wallets:
    def __init__(self, source: "_Source"):
        self._source = source

    async def read(self, account_id: str, now: Any, idempotency_key: Any = None, expired_since: Any = None):
        self._source.reads += 1
        if self._source.failure is not None:
            raise self._source.failure
        return (self._source.wallet, None)

    async def exists(self, account_id: str) -> bool:
        return (await self.read(account_id, None))[0] is not None


class _Unit:
    def __init__(self, source: "_Source"):
        self.wallets = _Wallets(source)
        self.payments = source.name  # any other repository

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


class _Source:
    def __init__(self, name: str, wallet: object = "wallet"):
        self.name, self.wallet = name, wallet
        self.failure: BaseException | None = None
        self.reads = 0

    def reader(self) -> _Unit:
        return _Unit(self)

    def transaction(self) -> _Unit:
        return _Unit(self)

    unlocked = single_write = transaction


class _Fence:
    def __init__(self, caught_up: bool = True):
        self.caught_up = caught_up
        self.waits = 0
        self.wait_seconds = 0.02

    async def wait(self) -> bool:
        self.waits += 1
        return self.caught_up


class _Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _router(fence: _Fence | None = None, clock: _Clock | None = None, standby_wallet: object = "standby wallet"):
    primary, standby = _Source("primary", "primary wallet"), _Source("standby", standby_wallet)
    breaker = StandbyBreaker(open_seconds=5.0, clock=clock or _Clock())
    storage = RoutingStorage(primary, standby, fence or _Fence(), breaker)  # type: ignore[arg-type]
    return storage, primary, standby


async def _read(storage: RoutingStorage) -> object:
    async with storage.reader() as unit:
        wallet, _ = await unit.wallets.read("acct", None)
    return wallet


def test_lsn_numbers_compare_as_positions():
    assert lsn_number("0/3000000") < lsn_number("0/3000001") < lsn_number("1/0") < lsn_number("16/B374D848")


def test_every_kind_of_write_goes_to_the_primary():
    storage, primary, standby = _router()
    for unit in (storage.transaction(), storage.unlocked(), storage.single_write()):
        assert unit.wallets._source is primary


async def test_a_caught_up_standby_serves_the_read():
    storage, primary, standby = _router()
    assert await _read(storage) == "standby wallet"
    assert (storage.standby_reads, storage.primary_reads, primary.reads) == (1, 0, 0)


async def test_a_standby_behind_the_fence_is_not_read():
    storage, primary, standby = _router(_Fence(caught_up=False))
    assert await _read(storage) == "primary wallet"
    assert standby.reads == 0
    assert not storage.breaker.closed  # the next reads do not wait on it


async def test_a_failing_standby_read_is_answered_by_the_primary_and_opens_the_breaker():
    clock = _Clock()
    fence = _Fence()
    storage, primary, standby = _router(fence, clock)
    standby.failure = psycopg.OperationalError("server closed the connection unexpectedly")
    assert await _read(storage) == "primary wallet"
    assert storage.standby_failures == 1
    standby.failure = None
    assert await _read(storage) == "primary wallet"  # open: not tried, no fence wait
    assert fence.waits == 1
    clock.now += 5.0
    assert await _read(storage) == "standby wallet"  # tried again after the rest


async def test_a_standby_timeout_counts_as_a_failure():
    storage, primary, standby = _router()
    standby.failure = TimeoutError()
    assert await _read(storage) == "primary wallet"
    assert not storage.breaker.closed


async def test_an_account_the_standby_does_not_have_is_asked_of_the_primary():
    storage, primary, standby = _router(standby_wallet=None)
    assert await _read(storage) == "primary wallet"
    async with storage.reader() as unit:
        assert await unit.wallets.exists("acct")
    assert storage.standby_reads == 0


async def test_writes_and_other_reads_are_the_primarys():
    storage, primary, standby = _router()
    assert storage.transaction().payments == "primary"
    assert storage.unlocked().payments == "primary"
    async with storage.reader() as unit:
        assert unit.payments == "primary"


@pytest.mark.parametrize("rest", [0.5, 5.0])
def test_the_breaker_rests_for_the_longer_of_two_failures(rest):
    clock = _Clock()
    breaker = StandbyBreaker(open_seconds=5.0, clock=clock)
    breaker.failed("down")
    breaker.failed("behind", rest)
    clock.now += 4.9
    assert not breaker.closed
    clock.now += 0.1
    assert breaker.closed
    assert breaker.openings == 1


async def test_a_fence_cycle_that_fails_answers_false_and_the_next_one_runs():
    breaker = StandbyBreaker(open_seconds=5.0)
    fence = ReplayFence("postgresql://primary", "postgresql://standby", breaker, wait_seconds=1.0, cycle_interval=0)
    outcomes = iter([RuntimeError("boom"), True])

    async def one_cycle() -> bool:
        outcome = next(outcomes)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    fence._one_cycle = one_cycle  # type: ignore[method-assign]
    assert await fence.wait() is False
    assert "RuntimeError: boom" in breaker.reason
    assert await fence.wait() is True
    await fence.close()


class _Cursor:
    def __init__(self, value):
        self._value = value

    async def fetchone(self):
        return (self._value,)


class _Connection:
    """Answers the fence's three statements from its fields; `fails` raises on the next statement."""

    def __init__(self, system: int, lsn: str):
        self.system, self.lsn, self.fails = system, lsn, False

    async def execute(self, query: str):
        if self.fails:
            self.fails = False
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return _Cursor(self.system if "system_identifier" in query else self.lsn)


class _Own:
    """An OwnConnection whose reconnection hands back the same object (as a recycled id() would look)."""

    def __init__(self, connection: _Connection):
        self.connection, self.drops = connection, 0

    async def get(self) -> _Connection:
        return self.connection

    async def drop(self) -> None:
        self.drops += 1


async def test_after_a_failed_cycle_the_fence_sees_the_standby_afresh():
    """A standby that restarts behind where it was seen must not be taken as caught up because the
    primary wrote nothing since: a failed cycle forgets the position and the cluster check."""
    fence = ReplayFence("primary", "standby", StandbyBreaker(open_seconds=0.0), wait_seconds=0.05)
    primary, standby = _Connection(7, "0/100"), _Connection(7, "0/100")
    fence._primary, fence._standby = _Own(primary), _Own(standby)  # type: ignore[assignment]
    assert await fence.warm() is True
    primary.fails = True  # a cycle fails (here the primary's statement; the connections are dropped)
    assert await fence.warm() is False
    standby.lsn = "0/50"  # meanwhile the standby restarted behind the primary's unchanged position
    assert await fence.warm() is False
    standby.lsn = "0/100"
    assert await fence.warm() is True
    await fence.close()
