"""Holds on the in-memory storage: reserve, extend, commit, release, expire (service/holds.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from billing.domain.errors import (
    HoldConflict, HoldExceeded, HoldNotFound, HoldSettled, InsufficientAiTime, InvalidArgument, TooManyHolds,
)
from billing.domain.holds import OPEN_HOLDS_MAX
from billing.service.accounts import create_account
from billing.service.balance import get_balance
from billing.service.consume import consume
from billing.service.holds import commit_hold, extend_hold, list_open_holds, place_hold, release_hold
from tests.support.fake_storage import FakeDatabase
from tests.unit.memory_fixtures import FREE_DAILY, START_SECONDS as START, USER
from tests.unit.memory_fixtures import account, clock, database, deps  # noqa: F401 - fixtures


def conserved(database: FakeDatabase) -> None:
    assert database.ledger_matches_buckets(USER)
    open_reserved = sum(h.reserved_seconds for (a, _), h in database.holds.items() if a == USER)
    assert open_reserved == sum(b.held_seconds for b in database.buckets[USER].values())


async def test_a_hold_reserves_from_the_balance_and_a_final_commit_charges_only_what_was_used(deps, database, account):
    placed = await place_hold(deps, USER, "h-1", "build", 1000)
    assert placed.hold.state == "open" and placed.hold.held_seconds == 1000
    assert placed.totals.total_seconds == START - 1000 and placed.totals.held_seconds == 1000
    assert placed.hold.expires_at == deps.clock.now() + timedelta(seconds=900)
    conserved(database)

    partial = await commit_hold(deps, USER, "h-1", 300, final=False)
    assert partial.hold.committed_seconds == 300 and partial.totals.held_seconds == 700
    again = await commit_hold(deps, USER, "h-1", 300, final=False)  # a retry takes nothing more
    assert again.totals == partial.totals
    done = await commit_hold(deps, USER, "h-1", 420, final=True)
    assert done.hold.state == "settled" and done.hold.committed_seconds == 420
    assert done.totals.total_seconds == START - 420 and done.totals.held_seconds == 0
    repeated = await commit_hold(deps, USER, "h-1", 420, final=True)
    assert repeated.hold == done.hold and repeated.totals == done.totals
    consumptions = [e for e in database.ledger[USER] if e.type == "consumption"]
    assert sum(e.seconds for e in consumptions) == -420
    assert all(e.metadata["hold_id"] == "h-1" and e.operation == "build" for e in consumptions)
    conserved(database)


async def test_the_same_hold_id_answers_the_same_hold_and_other_values_conflict(deps, account):
    first = await place_hold(deps, USER, "h-1", "build", 100)
    again = await place_hold(deps, USER, "h-1", "build", 100)
    assert again.hold == first.hold and again.replayed
    with pytest.raises(HoldConflict):
        await place_hold(deps, USER, "h-1", "build", 101)
    with pytest.raises(HoldConflict):
        await place_hold(deps, USER, "h-1", "plan", 100)
    with pytest.raises(HoldConflict):
        await place_hold(deps, USER, "h-1", "build", 100, ttl_seconds=60)


async def test_a_short_balance_holds_nothing_and_answers_like_consume(deps, database, account):
    with pytest.raises(InsufficientAiTime) as refused:
        await place_hold(deps, USER, "h-1", "build", START + 1)
    assert refused.value.deficit_seconds == 1 and refused.value.resume_token
    assert not database.holds
    assert (await get_balance(deps, USER)).view.totals.total_seconds == START


async def test_errors_unknown_settled_exceeded_backwards(deps, account):
    with pytest.raises(HoldNotFound):
        await commit_hold(deps, USER, "nope", 1, final=False)
    await place_hold(deps, USER, "h-1", "build", 100)
    with pytest.raises(HoldExceeded):
        await commit_hold(deps, USER, "h-1", 101, final=False)
    await commit_hold(deps, USER, "h-1", 50, final=False)
    with pytest.raises(InvalidArgument) as backwards:
        await commit_hold(deps, USER, "h-1", 49, final=False)
    assert backwards.value.field == "used_seconds"
    await release_hold(deps, USER, "h-1")
    with pytest.raises(HoldSettled):
        await commit_hold(deps, USER, "h-1", 60, final=True)
    with pytest.raises(HoldSettled):
        await extend_hold(deps, USER, "h-1", 10)
    assert (await release_hold(deps, USER, "h-1")).hold.committed_seconds == 50  # releasing again: as it is


async def test_another_users_hold_is_not_found(deps, account):
    await create_account(deps, "bob", "free")
    await place_hold(deps, USER, "h-1", "build", 100)
    with pytest.raises(HoldNotFound):
        await commit_hold(deps, "bob", "h-1", 10, final=True)


async def test_extend_holds_more_and_moves_the_expiry_all_or_nothing(deps, clock, database, account):
    await place_hold(deps, USER, "h-1", "build", 100, ttl_seconds=60)
    extended = await extend_hold(deps, USER, "h-1", 200, ttl_seconds=600)
    assert extended.hold.held_seconds == 300
    assert extended.hold.expires_at == clock.now() + timedelta(seconds=600)
    with pytest.raises(InsufficientAiTime):
        await extend_hold(deps, USER, "h-1", START)
    assert (await list_open_holds(deps, USER)).holds[0].held_seconds == 300
    keyed = await extend_hold(deps, USER, "h-1", 10, idempotency_key="x-1")
    replay = await extend_hold(deps, USER, "h-1", 10, idempotency_key="x-1")
    assert replay.hold.held_seconds == keyed.hold.held_seconds == 310 and replay.replayed
    conserved(database)


async def test_an_expired_hold_settles_by_itself_at_its_committed_seconds(deps, clock, database, account):
    await place_hold(deps, USER, "h-1", "build", 500, ttl_seconds=60)
    await commit_hold(deps, USER, "h-1", 100, final=False)
    clock.set(clock.now() + timedelta(seconds=60))
    balance = await get_balance(deps, USER)  # the next read settles it
    assert balance.view.totals.held_seconds == 0 and balance.view.totals.total_seconds == START - 100
    assert database.holds[(USER, "h-1")].state == "expired"
    with pytest.raises(HoldSettled):
        await commit_hold(deps, USER, "h-1", 200, final=True)
    assert database.accounts[USER].holds.open_count == 0
    conserved(database)


async def test_seconds_held_from_a_bucket_that_expires_meanwhile_can_be_committed_and_the_rest_expires(
        deps, clock, database, account):
    # 900 s of today's daily bonus (expires at midnight) are taken first.
    clock.set(datetime(2026, 3, 14, 23, 59, tzinfo=timezone.utc))
    await get_balance(deps, USER)
    await place_hold(deps, USER, "h-1", "build", 900, ttl_seconds=3600)
    clock.set(clock.now() + timedelta(minutes=2))  # past midnight: the daily bucket expired, the hold is open
    done = await commit_hold(deps, USER, "h-1", 300, final=True)
    assert done.hold.committed_seconds == 300
    hold = database.holds[(USER, "h-1")]
    assert hold.expired_seconds == 600
    conserved(database)


async def test_at_most_open_holds_max_per_account(deps, account, database):
    for n in range(OPEN_HOLDS_MAX):
        await place_hold(deps, USER, f"h-{n}", "build", 1)
    with pytest.raises(TooManyHolds):
        await place_hold(deps, USER, "one-too-many", "build", 1)
    await release_hold(deps, USER, "h-0")
    await place_hold(deps, USER, "one-more", "build", 1)
    assert len((await list_open_holds(deps, USER)).holds) == OPEN_HOLDS_MAX


async def test_consume_cannot_take_held_seconds(deps, account):
    await place_hold(deps, USER, "h-1", "build", START - 10)
    with pytest.raises(InsufficientAiTime):
        await consume(deps, USER, "build", 11, "op-1")
    await consume(deps, USER, "build", 10, "op-2")
    done = await commit_hold(deps, USER, "h-1", START - 10, final=True)
    assert done.totals.total_seconds == 0


async def test_twenty_holds_of_75_on_500_grant_exactly_six(deps, database):
    await create_account(deps, USER, "free")
    balance = (await get_balance(deps, USER)).view.totals.total_seconds
    await consume(deps, USER, "build", balance - 500, "to-500")
    granted, refused = 0, 0
    for n in range(20):
        try:
            await place_hold(deps, USER, f"s-{n}", "build", 75)
            granted += 1
        except InsufficientAiTime:
            refused += 1
    assert (granted, refused) == (6, 14)
    listed = await list_open_holds(deps, USER)
    assert listed.totals.held_seconds == 450 and listed.totals.total_seconds == 50
    for hold in listed.holds:
        await release_hold(deps, USER, hold.hold_id)
    assert (await get_balance(deps, USER)).view.totals.total_seconds == 500


# ---- found in review (issue 21)


async def test_extending_a_hold_cannot_carry_a_buckets_seconds_past_its_expiry(deps, clock, database, account):
    """Holding today's bonus and extending the hold every day would bank daily bonuses forever."""
    await place_hold(deps, USER, "bank", "build", FREE_DAILY, ttl_seconds=86_400)  # today's bonus, all of it
    clock.set(clock.now() + timedelta(hours=20))  # the daily bucket expired at midnight; the hold is open
    extended = await extend_hold(deps, USER, "bank", 100, ttl_seconds=86_400)
    assert extended.hold.held_seconds == 100  # yesterday's 900 expired with their bucket
    assert database.holds[(USER, "bank")].expired_seconds == FREE_DAILY
    with pytest.raises(HoldExceeded):
        await commit_hold(deps, USER, "bank", 101, final=True)
    conserved(database)


async def test_seconds_held_from_an_expired_bucket_can_be_committed_until_the_hold_is_extended(
        deps, clock, database, account):
    clock.set(datetime(2026, 3, 14, 23, 50, tzinfo=timezone.utc))
    await get_balance(deps, USER)
    await place_hold(deps, USER, "h-1", "build", 900, ttl_seconds=3600)
    clock.set(clock.now() + timedelta(minutes=20))  # past midnight
    assert (await commit_hold(deps, USER, "h-1", 600, final=False)).hold.committed_seconds == 600
    extended = await extend_hold(deps, USER, "h-1", 0, ttl_seconds=600)
    assert extended.hold.held_seconds == 600 and database.holds[(USER, "h-1")].expired_seconds == 300
    conserved(database)


async def test_the_same_create_with_its_resume_token_replays_the_hold(deps, account):
    with pytest.raises(InsufficientAiTime) as refused:
        await place_hold(deps, USER, "h-big", "build", START + 100)
    token = refused.value.resume_token
    from billing.service.grants import create_grant
    await create_grant(deps, USER, "gift", 200, "top up", "g-1")
    first = await place_hold(deps, USER, "h-big", "build", START + 100, resume_token=token)
    again = await place_hold(deps, USER, "h-big", "build", START + 100, resume_token=token)
    assert again.hold == first.hold and again.replayed


async def test_extend_keys_of_two_holds_never_answer_each_other(deps, account):
    await place_hold(deps, USER, "job", "build", 100)
    await place_hold(deps, USER, "job:1", "build", 100)
    await extend_hold(deps, USER, "job:1", 50, idempotency_key="k")
    extended = await extend_hold(deps, USER, "job", 50, idempotency_key="1:k")
    assert extended.hold.hold_id == "job" and extended.hold.held_seconds == 150 and not extended.replayed
    await consume(deps, USER, "build", 1, "hold-extend:job:k")  # a consume key cannot take an extend's place
    assert (await extend_hold(deps, USER, "job", 10, idempotency_key="k")).hold.held_seconds == 160
