"""Holds on PostgreSQL: reservations written with the hold row, consumes that cannot take held
seconds (batched or not), concurrent holds on one balance, expiry by read and by `billing tick`."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from billing.domain.errors import InsufficientAiTime
from billing.service.balance import get_balance
from billing.service.consume import consume
from billing.service.holds import commit_hold, extend_hold, list_open_holds, place_hold, release_hold
from billing.service.idle_upkeep import upkeep_idle_accounts

START = 1800 + 900


async def test_a_hold_round_trip_keeps_the_ledger_and_the_reservations_in_step(
        deps, user_id, account, assert_ledger_balanced):
    placed = await place_hold(deps, user_id, "h-1", "build", 1000)
    assert placed.totals.total_seconds == START - 1000 and placed.totals.held_seconds == 1000
    await assert_ledger_balanced(user_id)
    balance = await get_balance(deps, user_id)
    assert balance.view.totals.held_seconds == 1000 and balance.view.totals.total_seconds == START - 1000
    await extend_hold(deps, user_id, "h-1", 100, ttl_seconds=3600)
    await commit_hold(deps, user_id, "h-1", 600, final=False)
    await assert_ledger_balanced(user_id)
    done = await commit_hold(deps, user_id, "h-1", 700, final=True)
    assert done.hold.state == "settled" and done.totals.total_seconds == START - 700 and done.totals.held_seconds == 0
    assert (await place_hold(deps, user_id, "h-1", "build", 1000)).hold == done.hold  # the same request: the same hold
    await assert_ledger_balanced(user_id)


async def test_concurrent_consumes_never_take_held_seconds(deps, user_id, account, assert_ledger_balanced):
    async def consume_one(n: int) -> bool:
        try:
            await consume(deps, user_id, "build", 100, f"c-{n}")
            return True
        except InsufficientAiTime:
            return False

    async def hold_one(n: int) -> bool:
        try:
            await place_hold(deps, user_id, f"h-{n}", "build", 100)
            return True
        except InsufficientAiTime:
            return False

    outcomes = await asyncio.gather(*(f(n) for n in range(20) for f in (consume_one, hold_one)))
    assert sum(outcomes) == START // 100  # 27 of 40 fit, whichever way they interleave
    totals = (await get_balance(deps, user_id)).view.totals
    held = (await list_open_holds(deps, user_id)).totals.held_seconds
    assert totals.total_seconds == 0 and totals.held_seconds == held
    await assert_ledger_balanced(user_id)


async def test_twenty_concurrent_holds_of_75_on_500_grant_exactly_six(deps, user_id, account, assert_ledger_balanced):
    await consume(deps, user_id, "build", START - 500, "to-500")

    async def hold_one(n: int) -> bool:
        try:
            await place_hold(deps, user_id, f"s-{n}", "build", 75)
            return True
        except InsufficientAiTime:
            return False

    granted = await asyncio.gather(*(hold_one(n) for n in range(20)))
    assert sum(granted) == 6
    listed = await list_open_holds(deps, user_id)
    assert listed.totals.held_seconds == 450 and len(listed.holds) == 6
    for hold in listed.holds:
        await release_hold(deps, user_id, hold.hold_id)
    assert (await get_balance(deps, user_id)).view.totals.total_seconds == 500
    await assert_ledger_balanced(user_id)


async def test_billing_tick_settles_holds_past_their_expiry(deps, user_id, account, advance, assert_ledger_balanced):
    await place_hold(deps, user_id, "h-1", "build", 500, ttl_seconds=60)
    await commit_hold(deps, user_id, "h-1", 120, final=False)
    advance(seconds=61)
    assert await upkeep_idle_accounts(deps) >= 1
    listed = await list_open_holds(deps, user_id)
    assert listed.holds == () and listed.totals.held_seconds == 0
    assert listed.totals.total_seconds == START - 120
    await assert_ledger_balanced(user_id)


async def test_a_hold_on_a_bucket_that_expires_meanwhile_commits_and_the_rest_expires(
        deps, user_id, clock, advance, assert_ledger_balanced):
    from datetime import datetime, timezone

    from billing.service.accounts import create_account
    clock.set(datetime(2026, 3, 14, 23, 58, tzinfo=timezone.utc))
    await create_account(deps, user_id, "free")
    await place_hold(deps, user_id, "h-1", "build", 900, ttl_seconds=3600)  # today's daily bonus, all of it
    advance(minutes=5)  # the daily bucket expired at midnight; the hold still holds it
    balance = await get_balance(deps, user_id)
    assert balance.view.totals.held_seconds == 900
    done = await commit_hold(deps, user_id, "h-1", 300, final=True)
    assert done.totals.held_seconds == 0
    await assert_ledger_balanced(user_id)


@pytest.mark.parametrize("final", [True, False])
async def test_retried_commits_take_nothing_more(deps, user_id, account, final, assert_ledger_balanced):
    await place_hold(deps, user_id, "h-1", "build", 300)
    first = await commit_hold(deps, user_id, "h-1", 200, final=final)
    again = await commit_hold(deps, user_id, "h-1", 200, final=final)
    assert again.totals == first.totals and again.hold == first.hold
    await assert_ledger_balanced(user_id)
