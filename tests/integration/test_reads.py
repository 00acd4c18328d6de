"""Read paths against a real database: usage analytics, event history paging, batch preflight."""

from __future__ import annotations

import base64
from datetime import date, datetime, timezone

import pytest

from billing.domain.buckets import Source
from billing.domain.errors import AccountNotFound, InsufficientAiTime, InvalidArgument, Suggestion
from billing.domain.wallet import EventType
from billing.service.accounts import create_account
from billing.service.batch_check import check_sufficient_batch
from billing.service.consume import consume
from billing.service.history import encode_page_token, list_events
from billing.service.grants import create_grant
from billing.service.usage import get_usage
from billing.service.wallet_change import WalletChange, change_wallet

UTC = timezone.utc
WELCOME = 1800
FREE_DAILY = 900
START_BALANCE = WELCOME + FREE_DAILY


async def credit_many(deps, user_id: str, count: int) -> None:
    """`count` one-second gift credits in one transaction: a long ledger, quickly."""

    def credit(wallet, now):
        for i in range(count):
            wallet.credit(Source.GIFT, 1, expires_at=None, now=now, event_type=EventType.ADJUSTMENT, reason=f"g{i}")

    await change_wallet(deps, WalletChange(user_id, credit, repeatable=True))


# --- usage ------------------------------------------------------------------------------------


async def usage_history(deps, user_id, clock):
    """Consumption on Feb 28 (last month), Mar 1 00:00, Mar 3, Mar 5 and Mar 14 (today)."""
    clock.set(datetime(2026, 2, 27, 12, 0, tzinfo=UTC))
    await create_account(deps, user_id, "free")
    await create_grant(deps, user_id, "gift", 20_000, "", "gift")
    steps = [
        (datetime(2026, 2, 28, 23, 59, 59, 999_999, tzinfo=UTC), "build", 70),
        (datetime(2026, 3, 1, 0, 0, tzinfo=UTC), "build", 11),
        (datetime(2026, 3, 3, 8, 0, tzinfo=UTC), "build", 100),
        (datetime(2026, 3, 3, 9, 0, tzinfo=UTC), "plan", 50),
        (datetime(2026, 3, 5, 23, 0, tzinfo=UTC), "export", 1200),  # spans the daily bonus and the gift
        (datetime(2026, 3, 14, 7, 0, tzinfo=UTC), "build", 30),
        (datetime(2026, 3, 14, 8, 0, tzinfo=UTC), "metadata_generation", 5),
    ]
    for i, (at, operation, seconds) in enumerate(steps):
        clock.set(at)
        await consume(deps, user_id, operation, seconds, f"u-{i}")
    await create_grant(deps, user_id, "adjustment", -500, "", "adjust")  # not consumption
    with pytest.raises(InsufficientAiTime):
        await consume(deps, user_id, "build", 86_400, "refused")  # refused: not consumption
    clock.set(datetime(2026, 3, 14, 12, 0, tzinfo=UTC))


async def test_monthly_usage_has_one_zero_filled_entry_per_day_from_the_first_to_today(
    deps, user_id, clock, assert_ledger_balanced
):
    await usage_history(deps, user_id, clock)

    usage = await get_usage(deps, user_id, "month")

    assert [day for day, _ in usage.daily_trend] == [date(2026, 3, d) for d in range(1, 15)]
    trend = dict(usage.daily_trend)
    assert trend[date(2026, 3, 1)] == 11
    assert trend[date(2026, 3, 3)] == 150
    assert trend[date(2026, 3, 5)] == 1200
    assert trend[date(2026, 3, 14)] == 35
    assert sum(trend.values()) == 11 + 150 + 1200 + 35
    assert all(seconds == 0 for day, seconds in usage.daily_trend if day.day not in (1, 3, 5, 14))
    assert usage.by_operation == {"build": 141, "plan": 50, "export": 1200, "metadata_generation": 5}
    assert usage.total_seconds == 1396
    await assert_ledger_balanced(user_id)


async def test_empty_period_defaults_to_the_month(deps, user_id, clock):
    await usage_history(deps, user_id, clock)

    assert await get_usage(deps, user_id, "") == await get_usage(deps, user_id, "month")


async def test_daily_usage_has_a_single_entry_for_today(deps, user_id, clock):
    await usage_history(deps, user_id, clock)

    usage = await get_usage(deps, user_id, "day")

    assert usage.daily_trend == [(date(2026, 3, 14), 35)]
    assert usage.by_operation == {"build": 30, "metadata_generation": 5}
    assert usage.total_seconds == 35


async def test_usage_on_the_first_of_the_month_covers_one_day(deps, user_id, clock):
    clock.set(datetime(2026, 4, 1, 0, 0, tzinfo=UTC))
    await create_account(deps, user_id, "free")

    usage = await get_usage(deps, user_id, "month")

    assert usage.daily_trend == [(date(2026, 4, 1), 0)]
    assert usage.by_operation == {} and usage.total_seconds == 0


@pytest.mark.parametrize("period", ["week", "DAY", "year"])
async def test_unknown_usage_period_is_rejected(deps, user_id, account, period):
    with pytest.raises(InvalidArgument) as raised:
        await get_usage(deps, user_id, period)

    assert raised.value.field == "period"


async def test_usage_of_an_unknown_user_is_account_not_found(deps, user_id):
    with pytest.raises(AccountNotFound):
        await get_usage(deps, user_id, "month")


# --- events -----------------------------------------------------------------------------------


async def test_events_are_newest_first_with_signed_seconds(deps, user_id, account, advance, assert_ledger_balanced):
    advance(minutes=1)
    await consume(deps, user_id, "build", 1000, "c1")  # daily 900 + welcome 100
    advance(minutes=1)
    await create_grant(deps, user_id, "gift", 300, "thanks", "g1")

    page = await list_events(deps, user_id, 0, "")

    assert [(e.type, e.seconds, e.metadata["source"]) for e in page.events] == [
        ("adjustment", 300, "gift"),
        ("consumption", -100, "welcome"),
        ("consumption", -900, "daily"),
        ("daily_bonus", FREE_DAILY, "daily"),
        ("adjustment", WELCOME, "welcome"),
    ]
    assert [e.event_seq for e in page.events] == [5, 4, 3, 2, 1]
    assert page.events[0].reason == "thanks"
    assert page.events[1].reason == "AI operation: build"
    assert page.events[1].metadata["idempotency_key"] == "c1"
    assert page.events[0].occurred_at > page.events[1].occurred_at > page.events[3].occurred_at
    assert page.next_page_token == ""
    await assert_ledger_balanced(user_id)


async def test_events_default_to_pages_of_50_and_are_capped_at_200(deps, user_id, account, assert_ledger_balanced):
    await credit_many(deps, user_id, 248)  # 250 events in all

    default = await list_events(deps, user_id, 0, "")
    capped = await list_events(deps, user_id, 1000, "")
    exact = await list_events(deps, user_id, 200, "")

    assert len(default.events) == 50 and default.next_page_token
    assert len(capped.events) == 200 and capped.next_page_token
    assert [e.event_seq for e in capped.events] == [e.event_seq for e in exact.events] == list(range(250, 50, -1))
    rest = await list_events(deps, user_id, 1000, capped.next_page_token)
    assert [e.event_seq for e in rest.events] == list(range(50, 0, -1))
    assert rest.next_page_token == ""
    await assert_ledger_balanced(user_id)


@pytest.mark.parametrize("limit", [1, 7, 10, 31])
async def test_paging_walks_the_whole_history_without_duplicates_or_gaps(deps, user_id, account, limit):
    await credit_many(deps, user_id, 68)  # 70 events: 1, 7 and 10 divide it, 31 does not
    seen: list[int] = []
    token = ""
    for _ in range(100):
        page = await list_events(deps, user_id, limit, token)
        assert 0 < len(page.events) <= limit
        seen.extend(e.event_seq for e in page.events)
        token = page.next_page_token
        if not token:
            break

    assert seen == list(range(70, 0, -1))
    assert token == ""


async def test_paging_is_stable_while_new_events_arrive(deps, user_id, account, advance):
    await credit_many(deps, user_id, 18)  # 20 events
    first = await list_events(deps, user_id, 8, "")
    advance(minutes=1)
    await consume(deps, user_id, "build", 60, "meanwhile")  # event 21, newer than the cursor

    second = await list_events(deps, user_id, 8, first.next_page_token)
    third = await list_events(deps, user_id, 8, second.next_page_token)

    assert [e.event_seq for e in first.events + second.events + third.events] == list(range(20, 0, -1))
    assert third.next_page_token == ""


async def test_negative_limit_is_rejected(deps, user_id, account):
    with pytest.raises(InvalidArgument) as raised:
        await list_events(deps, user_id, -1, "")

    assert raised.value.field == "limit"


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "token",
    [
        "not-a-token",
        "%%%",
        b64("after:5"),
        b64("before:"),
        b64("before:-3"),
        b64("before:abc"),
        b64("before:²"),  # a Unicode digit that int() rejects
        b64("before:٣"),  # an Arabic-Indic digit that int() accepts
        b64("before:99999999999999999999"),  # beyond a bigint
        b64("before:" + "1" * 60),  # too long
    ],
)
async def test_forged_page_token_is_rejected(deps, user_id, account, token):
    with pytest.raises(InvalidArgument) as raised:
        await list_events(deps, user_id, 10, token)

    assert raised.value.field == "page_token"


async def test_page_token_past_the_first_event_gives_an_empty_last_page(deps, user_id, account):
    page = await list_events(deps, user_id, 10, encode_page_token(1))

    assert page.events == [] and page.next_page_token == ""


async def test_events_of_an_unknown_user_is_account_not_found(deps, user_id):
    with pytest.raises(AccountNotFound):
        await list_events(deps, user_id, 10, "")


# --- batch check ------------------------------------------------------------------------------


async def test_batch_check_is_cumulative_in_the_listed_order(deps, user_id, account):
    results = await check_sufficient_batch(
        deps, user_id, [("build", 1000), ("plan", 1700), ("export", 300), ("metadata_generation", 60)]
    )

    assert [(r.operation, r.ok, r.deficit_seconds) for r in results] == [
        ("build", True, 0),
        ("plan", True, 0),  # 2 700 of 2 700: exactly covered
        ("export", False, 300),
        ("metadata_generation", False, 360),
    ]
    assert results[0].suggestions == () and results[1].suggestions == ()
    assert results[2].suggestions == (
        Suggestion(type="package", key="mini", minutes=60),
        Suggestion(type="upgrade", plan="starter"),
    )


async def test_batch_check_writes_nothing_apart_from_the_first_daily_bonus_of_a_day(
    deps, user_id, account, advance, ledger_rows, assert_ledger_balanced
):
    rows = await ledger_rows(user_id)

    await check_sufficient_batch(deps, user_id, [("build", 60)] * 100)
    await check_sufficient_batch(deps, user_id, [("build", 1000)] * 5)  # partly short
    assert await ledger_rows(user_id) == rows

    advance(days=1)
    results = await check_sufficient_batch(deps, user_id, [("build", START_BALANCE), ("plan", 1)])
    # Yesterday's unused bonus is gone and today's arrived with this read: the balance is 2 700 again.
    assert [(r.ok, r.deficit_seconds) for r in results] == [(True, 0), (False, 1)]
    assert await ledger_rows(user_id) == rows + 1
    await check_sufficient_batch(deps, user_id, [("plan", 1)])
    assert await ledger_rows(user_id) == rows + 1
    await assert_ledger_balanced(user_id)


async def test_batch_check_with_more_than_100_operations_is_rejected(deps, user_id, account):
    with pytest.raises(InvalidArgument) as raised:
        await check_sufficient_batch(deps, user_id, [("build", 1)] * 101)

    assert raised.value.field == "operations"


async def test_batch_check_without_operations_is_rejected(deps, user_id, account):
    with pytest.raises(InvalidArgument) as raised:
        await check_sufficient_batch(deps, user_id, [])

    assert raised.value.field == "operations"


async def test_batch_check_names_the_unknown_operation_by_index(deps, user_id, account):
    with pytest.raises(InvalidArgument) as raised:
        await check_sufficient_batch(deps, user_id, [("build", 60), ("deploy", 60)])

    assert raised.value.field == "operations[1].operation"


@pytest.mark.parametrize("estimate", [-1, 86_401])
async def test_batch_check_names_the_estimate_out_of_range_by_index(deps, user_id, account, estimate):
    with pytest.raises(InvalidArgument) as raised:
        await check_sufficient_batch(deps, user_id, [("build", 60), ("plan", 60), ("export", estimate)])

    assert raised.value.field == "operations[2].estimate_seconds"


async def test_batch_check_of_an_unknown_user_is_account_not_found(deps, user_id):
    with pytest.raises(AccountNotFound):
        await check_sufficient_batch(deps, user_id, [("build", 60)])
