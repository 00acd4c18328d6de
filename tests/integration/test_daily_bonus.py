"""The daily bonus against a real database: lazy grant, expiry at UTC midnight, monthly cap."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from billing.domain.buckets import Source
from billing.domain.errors import InsufficientAiTime
from billing.service.accounts import create_account
from billing.service.balance import get_balance
from billing.service.consume import consume
from billing.service.history import list_events

UTC = timezone.utc
WELCOME = 1800
FREE_DAILY = 900


async def daily_bonus_events(deps, user_id):
    """The history as ListEvents shows it (a read: it grants the day's bonus when due)."""
    page = await list_events(deps, user_id, 200, "")
    return [e for e in page.events if e.type == "daily_bonus"]


async def test_daily_bonus_is_granted_lazily_on_the_first_read_of_a_utc_day(
    deps, user_id, account, clock, ledger_rows, assert_ledger_balanced
):
    assert len(await daily_bonus_events(deps, user_id)) == 1  # yesterday's, granted at signup
    clock.set(datetime(2026, 3, 15, 8, 0, tzinfo=UTC))
    rows_before_read = await ledger_rows(user_id)

    report = await get_balance(deps, user_id)

    assert [(b.source, b.remaining_seconds, b.expires_at) for b in report.view.daily] == [
        (Source.DAILY, FREE_DAILY, datetime(2026, 3, 16, tzinfo=UTC))
    ]
    assert report.view.totals.bonus_seconds == FREE_DAILY
    assert await ledger_rows(user_id) == rows_before_read + 1
    events = await daily_bonus_events(deps, user_id)
    assert len(events) == 2
    assert events[0].seconds == FREE_DAILY and events[0].occurred_at == clock.now()
    await assert_ledger_balanced(user_id)


async def test_later_reads_of_the_same_day_grant_nothing_more(
    deps, user_id, account, advance, ledger_rows, assert_ledger_balanced
):
    rows = await ledger_rows(user_id)

    for _ in range(3):
        advance(hours=4)  # 09:30 -> 21:30, still the same UTC day
        report = await get_balance(deps, user_id)
        assert report.view.totals.bonus_seconds == FREE_DAILY

    assert await ledger_rows(user_id) == rows
    await assert_ledger_balanced(user_id)


async def test_days_without_any_read_are_not_granted_afterwards(deps, user_id, account, advance):
    advance(days=5)

    report = await get_balance(deps, user_id)

    assert report.view.totals.bonus_seconds == FREE_DAILY
    assert len(report.view.daily) == 1
    assert len(await daily_bonus_events(deps, user_id)) == 2


async def test_daily_bonus_expires_at_the_next_utc_midnight_and_a_new_one_arrives(
    deps, user_id, account, clock, bucket_rows, assert_ledger_balanced
):
    clock.set(datetime(2026, 3, 14, 23, 59, 59, 999_999, tzinfo=UTC))
    await consume(deps, user_id, "build", 100, "late-night")
    late = await get_balance(deps, user_id)
    assert late.view.totals.bonus_seconds == FREE_DAILY - 100

    clock.set(datetime(2026, 3, 15, tzinfo=UTC))  # midnight exactly: yesterday's bucket is gone
    report = await get_balance(deps, user_id)

    assert [(b.remaining_seconds, b.expires_at) for b in report.view.daily] == [
        (FREE_DAILY, datetime(2026, 3, 16, tzinfo=UTC))
    ]
    assert report.view.totals.total_seconds == WELCOME + FREE_DAILY
    result = await consume(deps, user_id, "build", FREE_DAILY + 50, "midnight")
    assert [(t.source, t.seconds, t.expires_at) for t in result.taken] == [
        ("daily", FREE_DAILY, datetime(2026, 3, 16, tzinfo=UTC)),
        ("welcome", 50, None),
    ]
    # The expired bucket keeps its remainder in storage; it is simply worth nothing now.
    dailies = [row for row in await bucket_rows(user_id) if row.source == "daily"]
    assert [row.remaining_seconds for row in dailies] == [FREE_DAILY - 100, 0]
    await assert_ledger_balanced(user_id)


async def test_a_plan_without_a_daily_bonus_never_gets_one(deps, user_id, clock, ledger_rows, assert_ledger_balanced):
    clock.set(datetime(2026, 3, 14, 23, 0, tzinfo=UTC))
    await create_account(deps, user_id, "business")
    rows = await ledger_rows(user_id)
    clock.set(datetime(2026, 3, 15, tzinfo=UTC))

    report = await get_balance(deps, user_id)

    assert report.view.daily == ()
    assert report.bonus.daily_minutes == 0 and report.bonus.monthly_cap_minutes == 0
    assert await daily_bonus_events(deps, user_id) == []
    assert await ledger_rows(user_id) == rows
    await assert_ledger_balanced(user_id)


async def test_the_monthly_cap_stops_the_free_bonus_after_300_consumed_minutes(
    deps, user_id, clock, assert_ledger_balanced
):
    clock.set(datetime(2026, 3, 1, 10, 0, tzinfo=UTC))
    await create_account(deps, user_id, "free")

    for day in range(1, 21):
        clock.set(datetime(2026, 3, day, 10, 0, tzinfo=UTC))
        result = await consume(deps, user_id, "build", FREE_DAILY, f"day-{day}")
        assert [(t.source, t.seconds) for t in result.taken] == [("daily", FREE_DAILY)], day

    clock.set(datetime(2026, 3, 21, 10, 0, tzinfo=UTC))
    report = await get_balance(deps, user_id)
    assert report.view.daily == ()
    assert report.view.totals.total_seconds == WELCOME
    assert report.bonus.used_this_month_minutes == 300
    assert report.bonus.monthly_cap_minutes == 300
    assert report.bonus.daily_minutes == 15
    assert len(await daily_bonus_events(deps, user_id)) == 20
    result = await consume(deps, user_id, "build", 60, "day-21")
    assert [(t.source, t.seconds) for t in result.taken] == [("welcome", 60)]

    clock.set(datetime(2026, 3, 31, 23, 0, tzinfo=UTC))
    assert (await get_balance(deps, user_id)).view.daily == ()

    clock.set(datetime(2026, 4, 1, 0, 0, tzinfo=UTC))  # a new month resets the cap
    april = await get_balance(deps, user_id)
    assert [b.remaining_seconds for b in april.view.daily] == [FREE_DAILY]
    assert april.bonus.used_this_month_minutes == 0
    await consume(deps, user_id, "build", 120, "april-1")
    assert (await get_balance(deps, user_id)).bonus.used_this_month_minutes == 2
    assert len(await daily_bonus_events(deps, user_id)) == 21
    await assert_ledger_balanced(user_id)


async def test_the_last_daily_bonus_before_the_cap_is_only_what_the_cap_leaves(
    deps, user_id, clock, assert_ledger_balanced
):
    clock.set(datetime(2026, 3, 1, 10, 0, tzinfo=UTC))
    await create_account(deps, user_id, "free")
    await consume(deps, user_id, "plan", 600, "day-1")  # 300 s of day 1's bonus expire unused
    for day in range(2, 21):
        clock.set(datetime(2026, 3, day, 10, 0, tzinfo=UTC))
        await consume(deps, user_id, "plan", FREE_DAILY, f"day-{day}")

    clock.set(datetime(2026, 3, 21, 10, 0, tzinfo=UTC))
    report = await get_balance(deps, user_id)

    assert report.bonus.used_this_month_minutes == (600 + 19 * FREE_DAILY) // 60  # 295
    assert [b.remaining_seconds for b in report.view.daily] == [300]
    await consume(deps, user_id, "plan", 300, "day-21")
    clock.set(datetime(2026, 3, 22, 10, 0, tzinfo=UTC))
    capped = await get_balance(deps, user_id)
    assert capped.view.daily == () and capped.bonus.used_this_month_minutes == 300
    await assert_ledger_balanced(user_id)


async def test_unused_bonus_does_not_count_towards_the_cap(deps, user_id, clock):
    clock.set(datetime(2026, 3, 1, 10, 0, tzinfo=UTC))
    await create_account(deps, user_id, "free")
    for day in range(2, 26):
        clock.set(datetime(2026, 3, day, 10, 0, tzinfo=UTC))
        report = await get_balance(deps, user_id)
        assert report.view.totals.bonus_seconds == FREE_DAILY
    assert report.bonus.used_this_month_minutes == 0


async def test_expired_package_buckets_are_neither_shown_nor_consumed(
    deps, user_id, account, clock, advance, seed_bucket, assert_ledger_balanced
):
    expiry = clock.now() + timedelta(days=1)
    await seed_bucket(user_id, Source.PACKAGE, 3600, expiry)
    before = await get_balance(deps, user_id)
    assert [b.source for b in before.view.paid] == [Source.PACKAGE, Source.WELCOME]
    assert before.view.totals.next_expiry_at == datetime(2026, 3, 15, tzinfo=UTC)  # the daily bonus first

    clock.set(expiry)  # a bucket expiring at T is no longer usable at T
    report = await get_balance(deps, user_id)

    assert [b.source for b in report.view.paid] == [Source.WELCOME]
    assert report.view.totals.paid_seconds == WELCOME
    assert report.view.totals.next_expiry_at == datetime(2026, 3, 16, tzinfo=UTC)
    with pytest.raises(InsufficientAiTime) as raised:
        await consume(deps, user_id, "build", WELCOME + FREE_DAILY + 1, "needs-the-package")
    assert raised.value.paid_seconds == WELCOME
    result = await consume(deps, user_id, "build", WELCOME + FREE_DAILY, "everything-left")
    assert {t.source for t in result.taken} == {"daily", "welcome"}
    await assert_ledger_balanced(user_id)
