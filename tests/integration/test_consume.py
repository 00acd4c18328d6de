"""Consume against a real database: order, idempotency, insufficiency, validation, concurrency."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pytest

from billing.domain.buckets import Source
from billing.domain.clock_math import next_utc_midnight
from billing.domain.errors import (
    AccountNotFound, IdempotencyKeyReused, InsufficientAiTime, InvalidArgument, Suggestion,
)
from billing.service.accounts import create_account
from billing.service.balance import get_balance
from billing.service.consume import consume
from billing.service.grants import create_grant

WELCOME = 1800
FREE_DAILY = 900
START_BALANCE = WELCOME + FREE_DAILY  # a new free account: welcome bonus + today's daily bonus


async def balance_seconds(deps, user_id) -> int:
    return (await get_balance(deps, user_id)).view.totals.total_seconds


# --- order ------------------------------------------------------------------------------------


async def test_consume_takes_the_daily_bonus_before_paid_time(deps, user_id, account, assert_ledger_balanced):
    result = await consume(deps, user_id, "build", 1000, "k1")

    assert result.replayed is False
    assert result.consumed_seconds == 1000
    assert [(t.source, t.seconds) for t in result.taken] == [("daily", FREE_DAILY), ("welcome", 100)]
    assert result.totals.total_seconds == START_BALANCE - 1000
    assert result.totals.bonus_seconds == 0
    assert result.totals.paid_seconds == WELCOME - 100
    await assert_ledger_balanced(user_id)


async def test_paid_buckets_are_taken_by_earliest_expiry_then_smallest_remainder(
    deps, user_id, account, clock, seed_bucket, assert_ledger_balanced
):
    now = clock.now()
    late = await seed_bucket(user_id, Source.PACKAGE, 500, now + timedelta(days=80))
    early_big = await seed_bucket(user_id, Source.PACKAGE, 400, now + timedelta(days=10))
    early_small = await seed_bucket(user_id, Source.ROLLOVER, 300, now + timedelta(days=10))

    result = await consume(deps, user_id, "build", FREE_DAILY + 300 + 400 + 500 + 50, "k-order")

    assert [(t.source, t.seconds, t.expires_at) for t in result.taken] == [
        ("daily", FREE_DAILY, next_utc_midnight(now)),
        ("rollover", 300, early_small.expires_at),
        ("package", 400, early_big.expires_at),
        ("package", 500, late.expires_at),
        ("welcome", 50, None),
    ]
    report = await get_balance(deps, user_id)
    assert [(b.source, b.remaining_seconds) for b in report.view.paid] == [(Source.WELCOME, WELCOME - 50)]
    await assert_ledger_balanced(user_id)


# --- idempotency ------------------------------------------------------------------------------


async def test_replay_with_the_same_key_returns_the_first_answer_and_takes_nothing_more(
    deps, user_id, account, ledger_rows, advance, assert_ledger_balanced
):
    first = await consume(deps, user_id, "plan", 120, "same-key")
    rows = await ledger_rows(user_id)
    balance = await balance_seconds(deps, user_id)
    advance(minutes=5)

    again = await consume(deps, user_id, "plan", 120, "same-key")

    assert again.replayed is True
    assert dataclasses.replace(again, replayed=False) == first
    assert await ledger_rows(user_id) == rows
    assert await balance_seconds(deps, user_id) == balance
    await assert_ledger_balanced(user_id)


@pytest.mark.parametrize(
    "operation, seconds", [("plan", 121), ("export", 120)], ids=["other-seconds", "other-operation"]
)
async def test_same_key_for_a_different_request_is_rejected_and_takes_nothing(
    deps, user_id, account, ledger_rows, operation, seconds, assert_ledger_balanced
):
    await consume(deps, user_id, "plan", 120, "reused")
    rows = await ledger_rows(user_id)

    with pytest.raises(IdempotencyKeyReused) as raised:
        await consume(deps, user_id, operation, seconds, "reused")

    assert raised.value.field == "idempotency_key"
    assert await ledger_rows(user_id) == rows
    await assert_ledger_balanced(user_id)


async def test_idempotency_keys_are_scoped_per_user(deps, user_id, account, assert_ledger_balanced):
    other = f"{user_id}-other"
    await create_account(deps, other, "free")

    mine = await consume(deps, user_id, "build", 100, "shared-key")
    theirs = await consume(deps, other, "build", 200, "shared-key")

    assert mine.replayed is False and theirs.replayed is False
    assert theirs.consumed_seconds == 200
    assert await balance_seconds(deps, other) == START_BALANCE - 200
    await assert_ledger_balanced(user_id)
    await assert_ledger_balanced(other)


# --- insufficient time ------------------------------------------------------------------------


async def test_insufficient_time_raises_with_breakdown_suggestions_and_token_and_takes_nothing(
    deps, user_id, account, ledger_rows, assert_ledger_balanced
):
    rows = await ledger_rows(user_id)

    with pytest.raises(InsufficientAiTime) as raised:
        await consume(deps, user_id, "build", START_BALANCE + 1000, "too-much")

    error = raised.value
    assert error.balance_seconds == START_BALANCE
    assert error.bonus_daily_seconds == FREE_DAILY
    assert error.paid_seconds == WELCOME
    assert error.deficit_seconds == 1000
    # 1000 s short: the smallest package covering it is mini (60 min); free users are offered starter.
    assert error.suggestions == (
        Suggestion(type="package", key="mini", minutes=60),
        Suggestion(type="upgrade", plan="starter"),
    )
    assert error.catalog_version == deps.catalog.version
    assert error.resume_token and error.resume_token.startswith("rt_")
    assert error.reason == "INSUFFICIENT_AI_TIME"
    assert await ledger_rows(user_id) == rows
    assert await balance_seconds(deps, user_id) == START_BALANCE
    await assert_ledger_balanced(user_id)


async def test_suggested_package_is_the_smallest_that_covers_the_deficit(deps, user_id, account):
    # Two hours short: mini (60 min) is too small, booster (300 min) covers it.
    with pytest.raises(InsufficientAiTime) as raised:
        await consume(deps, user_id, "export", START_BALANCE + 7200, "big")

    assert raised.value.suggestions == (
        Suggestion(type="package", key="booster", minutes=300),
        Suggestion(type="upgrade", plan="starter"),
    )


async def test_pro_user_short_of_time_is_offered_business(deps, user_id, assert_ledger_balanced):
    created = await create_account(deps, user_id, "pro")
    total = created.totals.total_seconds
    assert total == 1800 + 1200 * 60 + 600
    await consume(deps, user_id, "build", 72_000, "a")
    await consume(deps, user_id, "build", total - 72_000 - 30, "b")

    with pytest.raises(InsufficientAiTime) as raised:
        await consume(deps, user_id, "build", 90, "c")

    assert raised.value.deficit_seconds == 60
    assert raised.value.suggestions == (
        Suggestion(type="package", key="mini", minutes=60),
        Suggestion(type="upgrade", plan="business"),
    )
    await assert_ledger_balanced(user_id)


async def test_failed_consume_is_not_stored_under_its_key_so_it_succeeds_after_a_top_up(
    deps, user_id, account, assert_ledger_balanced
):
    with pytest.raises(InsufficientAiTime):
        await consume(deps, user_id, "build", START_BALANCE + 600, "retry-me")
    await create_grant(deps, user_id, "gift", 600, "", "gift-1")

    result = await consume(deps, user_id, "build", START_BALANCE + 600, "retry-me")

    assert result.replayed is False
    assert result.totals.total_seconds == 0
    assert await balance_seconds(deps, user_id) == 0
    await assert_ledger_balanced(user_id)


# --- validation -------------------------------------------------------------------------------


async def test_consume_for_an_unknown_user_is_account_not_found(deps, user_id):
    with pytest.raises(AccountNotFound):
        await consume(deps, user_id, "build", 60, "k")


@pytest.mark.parametrize("seconds", [0, -1, 86_401])
async def test_seconds_out_of_range_are_rejected(deps, user_id, account, seconds, ledger_rows):
    rows = await ledger_rows(user_id)

    with pytest.raises(InvalidArgument) as raised:
        await consume(deps, user_id, "build", seconds, "k")

    assert raised.value.field == "seconds"
    assert await ledger_rows(user_id) == rows


async def test_a_whole_day_of_seconds_is_accepted_as_a_request(deps, user_id, account):
    # 86 400 is within bounds; this free account simply cannot pay for it.
    with pytest.raises(InsufficientAiTime) as raised:
        await consume(deps, user_id, "build", 86_400, "k")
    assert raised.value.deficit_seconds == 86_400 - START_BALANCE


@pytest.mark.parametrize("operation", ["", "deploy", "BUILD"])
async def test_unknown_operation_is_rejected(deps, user_id, account, operation):
    with pytest.raises(InvalidArgument) as raised:
        await consume(deps, user_id, operation, 60, "k")

    assert raised.value.field == "operation"


@pytest.mark.parametrize("key", ["", "has space", "k" * 129], ids=["empty", "space", "129-chars"])
async def test_bad_idempotency_key_is_rejected(deps, user_id, account, key):
    with pytest.raises(InvalidArgument) as raised:
        await consume(deps, user_id, "build", 60, key)

    assert raised.value.field == "idempotency_key"


# --- concurrency in one process ---------------------------------------------------------------


async def test_concurrent_consumes_never_overdraw(deps, user_id, account, ledger_rows, assert_ledger_balanced):
    # 2 700 s of balance, 32 requests of 100 s: exactly 27 fit.
    results = await asyncio.gather(
        *(consume(deps, user_id, "build", 100, f"par-{i}") for i in range(32)), return_exceptions=True
    )

    succeeded = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(r, InsufficientAiTime) for r in refused), refused
    assert sum(r.consumed_seconds for r in succeeded) == START_BALANCE
    assert len(succeeded) == 27 and len(refused) == 5
    assert all(r.deficit_seconds == 100 and r.balance_seconds == 0 for r in refused)
    assert await balance_seconds(deps, user_id) == 0
    await assert_ledger_balanced(user_id)


async def test_concurrent_consumes_of_uneven_sizes_take_exactly_what_the_balance_allows(
    deps, user_id, account, assert_ledger_balanced
):
    sizes = [37 + 13 * i for i in range(32)]  # 37 .. 440 s, 7 632 s requested in all
    results = await asyncio.gather(
        *(consume(deps, user_id, "plan", s, f"uneven-{i}") for i, s in enumerate(sizes)), return_exceptions=True
    )

    succeeded = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(r, InsufficientAiTime) for r in refused), refused
    taken = sum(r.consumed_seconds for r in succeeded)
    assert taken <= START_BALANCE
    remaining = await balance_seconds(deps, user_id)
    assert remaining == START_BALANCE - taken
    # Every refusal was right when it was decided, and the balance never went up.
    assert all(r.deficit_seconds > 0 and r.balance_seconds >= remaining for r in refused)
    await assert_ledger_balanced(user_id)


async def test_concurrent_consumes_with_the_same_key_take_exactly_once(
    deps, user_id, account, ledger_rows, assert_ledger_balanced
):
    rows = await ledger_rows(user_id)

    results = await asyncio.gather(*(consume(deps, user_id, "export", 500, "one-key") for _ in range(32)))

    assert sum(1 for r in results if not r.replayed) == 1
    assert sum(1 for r in results if r.replayed) == 31
    first = next(r for r in results if not r.replayed)
    assert all(dataclasses.replace(r, replayed=False) == first for r in results)
    assert await balance_seconds(deps, user_id) == START_BALANCE - 500
    assert await ledger_rows(user_id) == rows + 1  # one debit from the daily bonus
    await assert_ledger_balanced(user_id)

