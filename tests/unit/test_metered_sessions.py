"""Metered sessions on the in-memory storage: a hold kept a block ahead, written only when due."""

from __future__ import annotations

from datetime import timedelta

import pytest

from billing.domain.errors import InsufficientAiTime, InvalidArgument
from billing.service.balance import get_balance
from billing.service.consume import consume
from billing.service.metered_sessions import PERSIST_EVERY_SECONDS, RESUME_GRACE_SECONDS, MeterSession
from tests.unit.memory_fixtures import START_SECONDS as START, USER
from tests.unit.memory_fixtures import account, clock, database, deps  # noqa: F401 - fixtures


def tick(clock, seconds=1):
    clock.set(clock.now() + timedelta(seconds=seconds))


async def test_a_session_holds_a_block_ahead_and_settles_exactly_what_was_used(deps, clock, database, account):
    session = MeterSession(deps)
    opened = await session.open(USER, "s-1", "build", block_seconds=60)
    assert (opened.held_seconds, opened.committed_seconds, opened.remaining_seconds) == (60, 0, 60)
    commits_before = database.commits
    writes = 0
    for elapsed in range(1, 150):
        tick(clock)
        state = await session.report(elapsed)
        assert state.remaining_seconds > 0 and state.held_seconds - elapsed == state.remaining_seconds
        assert elapsed - state.committed_seconds < PERSIST_EVERY_SECONDS
    writes = database.commits - commits_before
    assert writes <= 149 // PERSIST_EVERY_SECONDS + 149 // 30 + 2  # every 10 s, and a block now and then
    done = await session.done(149)
    assert done.settled and done.committed_seconds == 149
    balance = (await get_balance(deps, USER)).view.totals
    assert balance.total_seconds == START - 149 and balance.held_seconds == 0
    assert database.ledger_matches_buckets(USER)


async def test_a_session_that_cannot_hold_the_next_block_says_exhausted_and_stops_at_the_held_time(
        deps, clock, account):
    await consume(deps, USER, "build", START - 90, "leave-90")
    session = MeterSession(deps)
    await session.open(USER, "s-1", "build", block_seconds=60)
    states = [await session.report(elapsed) for elapsed in range(1, 61)]
    exhausted = [s for s in states if s.exhausted is not None]
    assert exhausted and exhausted[0].exhausted.deficit_seconds == 30 and exhausted[0].exhausted.resume_token
    last = await session.report(200)  # past the held time: not charged
    assert last.remaining_seconds == 0 and last.held_seconds == 60
    done = await session.done(200)
    assert done.committed_seconds == 60


async def test_max_seconds_caps_what_is_held(deps, account):
    session = MeterSession(deps)
    await session.open(USER, "s-1", "build", block_seconds=60, max_seconds=90)
    for elapsed in range(1, 100):
        state = await session.report(elapsed)
    assert state.held_seconds == 90 and state.max_reached and state.remaining_seconds == 0
    assert (await session.done(99)).committed_seconds == 90


async def test_a_broken_stream_persists_what_was_heard_and_resumes_within_the_grace(deps, clock, database, account):
    session = MeterSession(deps)
    await session.open(USER, "s-1", "build", block_seconds=60)
    for elapsed in range(1, 24):
        await session.report(elapsed)
    await session.broken()
    assert database.holds[(USER, "session:s-1")].committed_seconds == 23
    tick(clock, RESUME_GRACE_SECONDS - 1)
    resumed = MeterSession(deps)
    state = await resumed.open(USER, "s-1", "build", block_seconds=60)
    assert state.committed_seconds == 23
    await resumed.report(40)
    assert (await resumed.done(41)).committed_seconds == 41


async def test_a_broken_stream_not_resumed_settles_at_what_was_heard(deps, clock, database, account):
    session = MeterSession(deps)
    await session.open(USER, "s-1", "build", block_seconds=60)
    await session.report(7)
    await session.broken()
    tick(clock, RESUME_GRACE_SECONDS)
    balance = (await get_balance(deps, USER)).view.totals
    assert balance.total_seconds == START - 7 and balance.held_seconds == 0
    ended = await MeterSession(deps).open(USER, "s-1", "build", block_seconds=60)
    assert ended.settled and ended.committed_seconds == 7 and ended.remaining_seconds == 0


async def test_a_dead_server_loses_at_most_the_persist_interval(deps, clock, database, account):
    session = MeterSession(deps)
    await session.open(USER, "s-1", "build", block_seconds=60)
    for elapsed in range(1, 58):
        await session.report(elapsed)
    # The server dies here (nothing more is written): the hold expires by itself.
    tick(clock, 3600)
    charged = START - (await get_balance(deps, USER)).view.totals.total_seconds
    assert 57 - PERSIST_EVERY_SECONDS < charged <= 57


async def test_reports_must_not_go_backwards_and_a_session_must_open_first(deps, account):
    with pytest.raises(InvalidArgument):
        await MeterSession(deps).report(1)
    session = MeterSession(deps)
    await session.open(USER, "s-1", "build")
    await session.report(10)
    with pytest.raises(InvalidArgument):
        await session.report(9)


async def test_a_session_on_a_short_balance_is_refused_like_a_hold(deps, account):
    await consume(deps, USER, "build", START - 10, "leave-10")
    with pytest.raises(InsufficientAiTime):
        await MeterSession(deps).open(USER, "s-1", "build", block_seconds=60)


async def test_a_living_session_whose_elapsed_stands_still_keeps_its_hold(deps, clock, database, account):
    """Review of issue 21: a worker waiting on a tool reports the same elapsed for minutes."""
    session = MeterSession(deps)
    await session.open(USER, "s-1", "build", block_seconds=60)
    for _ in range(1, 10):
        tick(clock)
        await session.report(9)
    for _ in range(300):  # five minutes at the same elapsed, a report every second
        tick(clock)
        state = await session.report(9)
    assert database.holds[(USER, "session:s-1")].is_open
    assert (await get_balance(deps, USER)).view.totals.held_seconds == state.held_seconds - state.committed_seconds
    assert (await session.done(10)).committed_seconds == 10


async def test_an_exhausted_session_after_a_dead_server_settles_within_its_held_time_and_grace(
        deps, clock, database, account):
    await consume(deps, USER, "build", START - 70, "leave-70")
    session = MeterSession(deps)
    await session.open(USER, "s-1", "build", block_seconds=60)
    for elapsed in range(1, 41):
        tick(clock)
        state = await session.report(elapsed)
    assert state.exhausted is not None
    hold = database.holds[(USER, "session:s-1")]
    # The refused block is not counted in its expiry: held time left (what it holds) plus the grace.
    assert hold.expires_at <= clock.now() + timedelta(seconds=hold.held_seconds - 40 + RESUME_GRACE_SECONDS)


async def test_a_persist_that_finds_the_database_out_is_retried_by_the_next_report(deps, clock, database, account,
                                                                                   monkeypatch):
    from billing.service import metered_sessions
    from billing.service.ports import Unavailable

    session = MeterSession(deps)
    await session.open(USER, "s-1", "build", block_seconds=60)
    real = metered_sessions.advance_hold
    outage = [True]

    async def flaky(*args, **kwargs):
        if outage:
            outage.clear()
            raise Unavailable("the database is unreachable", kind="database")
        return await real(*args, **kwargs)

    monkeypatch.setattr(metered_sessions, "advance_hold", flaky)
    state = await session.report(PERSIST_EVERY_SECONDS)  # due, and the database is out: answered anyway
    assert state.committed_seconds == 0 and state.remaining_seconds == 60 - PERSIST_EVERY_SECONDS
    state = await session.report(PERSIST_EVERY_SECONDS + 1)  # due still: persisted now
    assert state.committed_seconds == PERSIST_EVERY_SECONDS + 1


async def test_opening_a_finished_session_again_answers_what_it_was_charged(deps, account):
    """A client whose `done` answer was lost opens again (the same values) and learns it."""
    session = MeterSession(deps)
    await session.open(USER, "s-1", "build", block_seconds=60)
    await session.report(33)
    await session.done(34)
    again = await MeterSession(deps).open(USER, "s-1", "build", block_seconds=60)
    assert again.settled and again.committed_seconds == 34
