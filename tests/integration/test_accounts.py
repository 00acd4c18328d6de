"""CreateAccount against a real database: idempotent creation, welcome bonus, plans, validation."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from billing.domain.buckets import Source
from billing.domain.errors import AccountNotFound, InvalidArgument
from billing.service.accounts import create_account
from billing.service.balance import get_balance
from billing.service.history import list_events

WELCOME_SECONDS = 30 * 60
FREE_DAILY_SECONDS = 15 * 60
PAID_DAILY_SECONDS = 10 * 60
PRO_SECONDS = 1200 * 60


async def test_new_account_gets_the_welcome_bonus_and_todays_daily_bonus(deps, user_id, assert_ledger_balanced):
    result = await create_account(deps, user_id, "free")

    assert result.created is True
    assert result.user_id == user_id
    assert result.totals.total_seconds == WELCOME_SECONDS + FREE_DAILY_SECONDS
    assert result.totals.paid_seconds == WELCOME_SECONDS
    assert result.totals.bonus_seconds == FREE_DAILY_SECONDS
    page = await list_events(deps, user_id, 0, "")
    welcome = [e for e in page.events if e.metadata.get("source") == "welcome"]
    assert len(welcome) == 1 and welcome[0].seconds == WELCOME_SECONDS and welcome[0].type == "adjustment"
    await assert_ledger_balanced(user_id)


async def test_creating_an_account_twice_grants_the_welcome_bonus_exactly_once(
    deps, user_id, ledger_rows, advance, assert_ledger_balanced
):
    first = await create_account(deps, user_id, "free")
    rows_after_first = await ledger_rows(user_id)
    advance(hours=1)

    second = await create_account(deps, user_id, "free")

    assert second.created is False
    assert second.created_at == first.created_at
    assert second.totals == first.totals
    assert await ledger_rows(user_id) == rows_after_first
    await assert_ledger_balanced(user_id)


async def test_second_create_with_another_plan_keeps_the_first_plan(deps, user_id, ledger_rows, assert_ledger_balanced):
    await create_account(deps, user_id, "free")
    rows = await ledger_rows(user_id)

    again = await create_account(deps, user_id, "pro")

    assert again.created is False
    assert again.plan_key == "free" and again.subscription_status == "inactive"
    assert await ledger_rows(user_id) == rows
    await assert_ledger_balanced(user_id)


@pytest.mark.parametrize("plan_key", ["", "free"])
async def test_default_plan_is_free_and_inactive(deps, user_id, plan_key, assert_ledger_balanced):
    result = await create_account(deps, user_id, plan_key)

    assert result.plan_key == "free"
    assert result.subscription_status == "inactive"
    report = await get_balance(deps, user_id)
    assert report.account.plan_key == "free"
    assert report.account.subscription_status == "inactive"
    assert [b.source for b in report.view.paid] == [Source.WELCOME]
    assert report.bonus.daily_minutes == 15 and report.bonus.monthly_cap_minutes == 300
    await assert_ledger_balanced(user_id)


async def test_paid_plan_gets_its_minutes_as_a_subscription_bucket_expiring_a_month_later(
    deps, user_id, clock, assert_ledger_balanced
):
    clock.set(datetime(2026, 1, 31, 12, 0, tzinfo=timezone.utc))

    result = await create_account(deps, user_id, "pro")

    assert result.plan_key == "pro" and result.subscription_status == "active"
    assert result.totals.paid_seconds == WELCOME_SECONDS + PRO_SECONDS
    assert result.totals.bonus_seconds == PAID_DAILY_SECONDS
    report = await get_balance(deps, user_id)
    subscription = [b for b in report.view.paid if b.source == Source.SUBSCRIPTION]
    assert len(subscription) == 1
    assert subscription[0].remaining_seconds == PRO_SECONDS
    # One month later, clamped to the month's last day (Jan 31 -> Feb 28).
    assert subscription[0].expires_at == datetime(2026, 2, 28, 12, 0, tzinfo=timezone.utc)
    # The subscription expires before the never-expiring welcome bonus, so it is consumed first.
    assert [b.source for b in report.view.paid] == [Source.SUBSCRIPTION, Source.WELCOME]
    page = await list_events(deps, user_id, 0, "")
    credits = [e for e in page.events if e.type == "subscription_credit"]
    assert len(credits) == 1 and credits[0].seconds == PRO_SECONDS
    assert credits[0].metadata["plan_key"] == "pro"
    await assert_ledger_balanced(user_id)


async def test_subscription_bucket_of_a_mid_month_signup_expires_same_day_next_month(deps, user_id, clock):
    clock.set(datetime(2026, 3, 14, 9, 30, tzinfo=timezone.utc))

    await create_account(deps, user_id, "starter")

    report = await get_balance(deps, user_id)
    (subscription,) = [b for b in report.view.paid if b.source == Source.SUBSCRIPTION]
    assert subscription.expires_at == datetime(2026, 4, 14, 9, 30, tzinfo=timezone.utc)
    assert subscription.remaining_seconds == 300 * 60
    assert report.view.totals.next_expiry_at == datetime(2026, 3, 15, tzinfo=timezone.utc)  # the daily bonus


async def test_unknown_plan_key_is_an_invalid_argument_and_creates_nothing(deps, user_id):
    with pytest.raises(InvalidArgument) as raised:
        await create_account(deps, user_id, "platinum")

    assert raised.value.field == "plan_key"
    with pytest.raises(AccountNotFound):
        await get_balance(deps, user_id)


@pytest.mark.parametrize(
    "bad_user_id",
    ["", "u" * 129, "has space", " leading", "trailing ", "-starts-with-dash", "semi;colon", "ümlaut"],
    ids=["empty", "129-chars", "inner-space", "leading-space", "trailing-space", "leading-dash", "semicolon", "non-ascii"],
)
async def test_invalid_user_id_is_rejected(deps, bad_user_id):
    with pytest.raises(InvalidArgument) as raised:
        await create_account(deps, bad_user_id, "free")

    assert raised.value.field == "user_id"


async def test_user_id_of_128_chars_is_accepted(deps, user_id, assert_ledger_balanced):
    long_id = (user_id + "x" * 128)[:128]

    result = await create_account(deps, long_id, "free")

    assert result.created is True and result.user_id == long_id
    await assert_ledger_balanced(long_id)
