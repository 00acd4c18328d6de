"""Resume tokens against a real database: single use, one hour, bound to user and operation."""

from __future__ import annotations

import dataclasses

import pytest

from billing.domain.errors import InsufficientAiTime, ResumeTokenInvalid, ResumeTokenUsed
from billing.service.accounts import create_account
from billing.service.consume import consume
from billing.service.grants import create_grant
from tests.integration.test_consume import START_BALANCE, balance_seconds


async def short_by_600(deps, user_id) -> str:
    with pytest.raises(InsufficientAiTime) as raised:
        await consume(deps, user_id, "build", START_BALANCE + 600, "first-try")
    return raised.value.resume_token


async def test_resume_token_after_a_top_up_succeeds_once(deps, user_id, account, assert_ledger_balanced):
    token = await short_by_600(deps, user_id)
    await create_grant(deps, user_id, "gift", 3600, "", "top-up")

    result = await consume(deps, user_id, "build", START_BALANCE + 600, "second-try", resume_token=token)

    assert result.consumed_seconds == START_BALANCE + 600
    assert result.totals.total_seconds == 3000
    with pytest.raises(ResumeTokenUsed) as raised:
        await consume(deps, user_id, "build", 60, "third-try", resume_token=token)
    assert raised.value.field == "resume_token"
    assert await balance_seconds(deps, user_id) == 3000
    await assert_ledger_balanced(user_id)


async def test_replay_of_a_resumed_consume_is_still_a_replay(deps, user_id, account, assert_ledger_balanced):
    token = await short_by_600(deps, user_id)
    await create_grant(deps, user_id, "gift", 3600, "", "top-up")
    first = await consume(deps, user_id, "build", 120, "resumed", resume_token=token)

    again = await consume(deps, user_id, "build", 120, "resumed", resume_token=token)

    assert again.replayed is True and dataclasses.replace(again, replayed=False) == first
    await assert_ledger_balanced(user_id)


async def test_resume_token_still_short_keeps_the_same_token(deps, user_id, account, assert_ledger_balanced):
    token = await short_by_600(deps, user_id)

    with pytest.raises(InsufficientAiTime) as raised:
        await consume(deps, user_id, "build", START_BALANCE + 600, "again", resume_token=token)

    assert raised.value.resume_token == token
    await create_grant(deps, user_id, "gift", 600, "", "top-up")
    result = await consume(deps, user_id, "build", START_BALANCE + 600, "finally", resume_token=token)
    assert result.totals.total_seconds == 0
    await assert_ledger_balanced(user_id)


async def test_an_expired_resume_token_is_no_token_the_consume_runs_if_covered(
    deps, user_id, account, advance, assert_ledger_balanced
):
    """Issue 19, item 22: the contract's client knows success or 402 only, never a 410."""
    token = await short_by_600(deps, user_id)
    await create_grant(deps, user_id, "gift", 3600, "", "top-up")
    advance(minutes=61)

    result = await consume(deps, user_id, "build", 60, "late", resume_token=token)

    assert result.consumed_seconds == 60
    assert await balance_seconds(deps, user_id) == START_BALANCE + 3600 - 60
    await assert_ledger_balanced(user_id)


async def test_an_expired_resume_token_still_short_gets_the_contracts_402_with_a_new_token(
    deps, user_id, account, advance, assert_ledger_balanced
):
    token = await short_by_600(deps, user_id)
    advance(minutes=61)

    with pytest.raises(InsufficientAiTime) as raised:
        await consume(deps, user_id, "build", START_BALANCE + 600, "late", resume_token=token)

    fresh = raised.value.resume_token
    assert fresh and fresh != token
    await create_grant(deps, user_id, "gift", 600, "", "top-up")
    result = await consume(deps, user_id, "build", START_BALANCE + 600, "resumed", resume_token=fresh)
    assert result.totals.total_seconds == 0
    await assert_ledger_balanced(user_id)


async def test_an_expired_token_is_still_recognised_after_the_next_refusal_for_a_day(
    deps, user_id, account, advance, assert_ledger_balanced
):
    """A refusal deletes the account's old tokens; a token just expired is kept, so it still
    counts as none (not as unknown: 400) until a day past its expiry."""
    token = await short_by_600(deps, user_id)
    advance(minutes=61)
    await short_by_600(deps, user_id)  # purges what is long expired
    await create_grant(deps, user_id, "gift", 3600, "", "top-up")

    assert (await consume(deps, user_id, "build", 60, "late", resume_token=token)).consumed_seconds == 60
    await assert_ledger_balanced(user_id)


async def test_resume_token_is_valid_just_before_the_hour(deps, user_id, account, advance, assert_ledger_balanced):
    token = await short_by_600(deps, user_id)
    await create_grant(deps, user_id, "gift", 3600, "", "top-up")
    advance(minutes=59)

    result = await consume(deps, user_id, "build", 60, "in-time", resume_token=token)

    assert result.consumed_seconds == 60
    await assert_ledger_balanced(user_id)


async def test_resume_token_for_another_operation_is_invalid(deps, user_id, account, assert_ledger_balanced):
    token = await short_by_600(deps, user_id)
    await create_grant(deps, user_id, "gift", 3600, "", "top-up")

    with pytest.raises(ResumeTokenInvalid) as raised:
        await consume(deps, user_id, "export", 60, "other-op", resume_token=token)

    assert raised.value.field == "resume_token"
    # The token was not spent by the rejected call.
    assert (await consume(deps, user_id, "build", 60, "right-op", resume_token=token)).consumed_seconds == 60
    await assert_ledger_balanced(user_id)


async def test_resume_token_of_another_user_is_invalid(deps, user_id, account, assert_ledger_balanced):
    token = await short_by_600(deps, user_id)
    other = f"{user_id}-other"
    await create_account(deps, other, "free")

    with pytest.raises(ResumeTokenInvalid):
        await consume(deps, other, "build", 60, "stolen", resume_token=token)

    assert await balance_seconds(deps, other) == START_BALANCE
    await assert_ledger_balanced(other)


async def test_unknown_resume_token_is_invalid(deps, user_id, account):
    with pytest.raises(ResumeTokenInvalid):
        await consume(deps, user_id, "build", 60, "forged", resume_token="rt_not-a-token-we-issued")


async def test_expired_resume_tokens_are_purged_a_day_after_expiry_when_the_account_is_refused_again(
    deps, user_id, account, advance, engine
):
    from sqlalchemy import text

    async def tokens() -> int:
        async with engine.connect() as connection:
            return (await connection.execute(
                text("SELECT count(*) FROM resume_tokens WHERE account_id = :a"), {"a": user_id}
            )).scalar_one()

    for key in ("r1", "r2"):
        with pytest.raises(InsufficientAiTime):
            await consume(deps, user_id, "build", 50_000, key)
    advance(minutes=61)
    with pytest.raises(InsufficientAiTime):
        await consume(deps, user_id, "build", 50_000, "r3")
    assert await tokens() == 3  # expired a minute ago: still recognised as expired
    advance(hours=24)
    with pytest.raises(InsufficientAiTime):
        await consume(deps, user_id, "build", 50_000, "r4")
    assert await tokens() == 2  # r3's (expired 23 h ago) and the one issued just now
