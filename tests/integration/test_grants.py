"""CreateGrant against a real database: gifts, signed adjustments, idempotency, validation."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pytest

from billing.domain.buckets import Source
from billing.domain.errors import (
    AccountNotFound, BalanceTooLow, IdempotencyKeyReused, InsufficientAiTime, InvalidArgument,
)
from billing.service.balance import get_balance
from billing.service.consume import consume
from billing.service.history import list_events
from billing.service.grants import create_grant

WELCOME = 1800
FREE_DAILY = 900
START_BALANCE = WELCOME + FREE_DAILY


async def test_gift_adds_a_never_expiring_bucket(deps, user_id, account, advance, assert_ledger_balanced):
    result = await create_grant(deps, user_id, "gift", 600, "", "gift-1")

    assert result.replayed is False and result.source == "gift" and result.seconds == 600
    assert result.totals.total_seconds == START_BALANCE + 600
    assert result.totals.paid_seconds == WELCOME + 600
    report = await get_balance(deps, user_id)
    gifts = [b for b in report.view.paid if b.source == Source.GIFT]
    assert [(b.remaining_seconds, b.expires_at) for b in gifts] == [(600, None)]
    (event,) = (await list_events(deps, user_id, 1, "")).events
    assert (event.type, event.seconds, event.reason) == ("adjustment", 600, "Gift from support")
    assert event.metadata["grant_source"] == "gift" and event.metadata["idempotency_key"] == "gift-1"

    advance(days=3650)
    later = await get_balance(deps, user_id)
    assert later.view.totals.paid_seconds == WELCOME + 600
    await assert_ledger_balanced(user_id)


async def test_positive_adjustment_lands_in_a_gift_bucket(deps, user_id, account, assert_ledger_balanced):
    await create_grant(deps, user_id, "adjustment", 250, "refund for a failed build", "adj+")

    report = await get_balance(deps, user_id)
    assert [(b.source, b.remaining_seconds) for b in report.view.paid] == [(Source.GIFT, 250), (Source.WELCOME, WELCOME)]
    (event,) = (await list_events(deps, user_id, 1, "")).events
    assert (event.type, event.seconds, event.reason) == ("adjustment", 250, "refund for a failed build")
    await assert_ledger_balanced(user_id)


async def test_negative_adjustment_takes_paid_time_by_expiry_and_never_the_daily_bonus(
    deps, user_id, account, clock, seed_bucket, ledger_rows, assert_ledger_balanced
):
    await seed_bucket(user_id, Source.PACKAGE, 300, clock.now() + timedelta(days=30))
    rows = await ledger_rows(user_id)

    result = await create_grant(deps, user_id, "adjustment", -1000, "chargeback", "adj-")

    assert result.seconds == -1000
    assert result.totals.bonus_seconds == FREE_DAILY
    assert result.totals.paid_seconds == WELCOME + 300 - 1000
    report = await get_balance(deps, user_id)
    assert [(b.source, b.remaining_seconds) for b in report.view.paid] == [(Source.WELCOME, WELCOME - 700)]
    assert [b.remaining_seconds for b in report.view.daily] == [FREE_DAILY]
    assert report.bonus.used_this_month_minutes == 0
    events = (await list_events(deps, user_id, 2, "")).events
    assert [(e.type, e.seconds, e.metadata["source"]) for e in events] == [
        ("adjustment", -700, "welcome"),
        ("adjustment", -300, "package"),
    ]
    assert await ledger_rows(user_id) == rows + 2
    await assert_ledger_balanced(user_id)


async def test_adjustment_below_zero_is_balance_too_low_and_changes_nothing(
    deps, user_id, account, ledger_rows, assert_ledger_balanced
):
    rows = await ledger_rows(user_id)

    # The whole balance (2 700 s) would cover it, but the daily bonus is not for taking back.
    with pytest.raises(BalanceTooLow) as raised:
        await create_grant(deps, user_id, "adjustment", -(WELCOME + 1), "", "too-far")

    assert raised.value.field == "seconds"
    assert await ledger_rows(user_id) == rows
    report = await get_balance(deps, user_id)
    assert report.view.totals.total_seconds == START_BALANCE
    # The refused request was not stored: the key is free for a corrected one.
    corrected = await create_grant(deps, user_id, "adjustment", -WELCOME, "", "too-far")
    assert corrected.replayed is False and corrected.totals.paid_seconds == 0
    await assert_ledger_balanced(user_id)


async def test_grant_replay_returns_the_first_answer_and_grants_nothing_more(
    deps, user_id, account, advance, ledger_rows, assert_ledger_balanced
):
    first = await create_grant(deps, user_id, "gift", 600, "sorry", "once")
    rows = await ledger_rows(user_id)
    advance(minutes=10)

    again = await create_grant(deps, user_id, "gift", 600, "sorry", "once")

    assert again.replayed is True
    assert dataclasses.replace(again, replayed=False) == first
    assert await ledger_rows(user_id) == rows
    assert (await get_balance(deps, user_id)).view.totals.total_seconds == START_BALANCE + 600
    await assert_ledger_balanced(user_id)


@pytest.mark.parametrize(
    "source, seconds, reason",
    [("gift", 601, "sorry"), ("gift", 600, "other reason"), ("adjustment", 600, "sorry")],
    ids=["other-seconds", "other-reason", "other-source"],
)
async def test_grant_key_reused_for_a_different_request_is_rejected(
    deps, user_id, account, ledger_rows, source, seconds, reason
):
    await create_grant(deps, user_id, "gift", 600, "sorry", "once")
    rows = await ledger_rows(user_id)

    with pytest.raises(IdempotencyKeyReused):
        await create_grant(deps, user_id, source, seconds, reason, "once")

    assert await ledger_rows(user_id) == rows


async def test_grant_and_consume_share_the_key_space_of_a_user(deps, user_id, account):
    await create_grant(deps, user_id, "gift", 600, "", "shared")

    with pytest.raises(IdempotencyKeyReused):
        await consume(deps, user_id, "build", 600, "shared")


@pytest.mark.parametrize("source", ["gift", "welcome"])
@pytest.mark.parametrize("seconds", [-1, 0])
async def test_credits_must_be_positive(deps, user_id, account, source, seconds):
    with pytest.raises(InvalidArgument) as raised:
        await create_grant(deps, user_id, source, seconds, "", "k")

    assert raised.value.field == "seconds"


async def test_zero_adjustment_is_rejected(deps, user_id, account):
    with pytest.raises(InvalidArgument) as raised:
        await create_grant(deps, user_id, "adjustment", 0, "", "k")

    assert raised.value.field == "seconds"


@pytest.mark.parametrize("source", ["", "package", "subscription", "daily"])
async def test_unknown_grant_source_is_rejected(deps, user_id, account, source):
    with pytest.raises(InvalidArgument) as raised:
        await create_grant(deps, user_id, source, 60, "", "k")

    assert raised.value.field == "source"


async def test_overlong_reason_is_rejected(deps, user_id, account):
    with pytest.raises(InvalidArgument) as raised:
        await create_grant(deps, user_id, "gift", 60, "r" * 501, "k")

    assert raised.value.field == "reason"


async def test_grant_to_an_unknown_user_is_account_not_found(deps, user_id):
    with pytest.raises(AccountNotFound):
        await create_grant(deps, user_id, "gift", 60, "", "k")


async def test_grants_cannot_lift_the_balance_past_its_ceiling(deps, user_id, account, ledger_rows, assert_ledger_balanced):
    for i in range(3):
        await create_grant(deps, user_id, "gift", 315_360_000, "", f"big-{i}")
    rows = await ledger_rows(user_id)

    with pytest.raises(InvalidArgument) as raised:
        await create_grant(deps, user_id, "gift", 315_360_000, "", "big-3")

    assert raised.value.field == "seconds"
    assert await ledger_rows(user_id) == rows
    await assert_ledger_balanced(user_id)


async def test_concurrent_grants_and_consumes_keep_the_ledger_balanced(
    deps, user_id, account, assert_ledger_balanced
):
    calls = []
    for i in range(16):
        calls.append(create_grant(deps, user_id, "gift", 100, "", f"gift-{i}"))
        calls.append(consume(deps, user_id, "build", 300, f"use-{i}"))

    results = await asyncio.gather(*calls, return_exceptions=True)

    errors = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(e, InsufficientAiTime) for e in errors), errors
    consumed = sum(r.consumed_seconds for r in results if hasattr(r, "consumed_seconds"))
    granted = sum(r.seconds for r in results if hasattr(r, "source"))
    assert granted == 1600
    assert (await get_balance(deps, user_id)).view.totals.total_seconds == START_BALANCE + granted - consumed
    await assert_ledger_balanced(user_id)
