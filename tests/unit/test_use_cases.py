"""The use cases on the in-memory storage (tests/support/fake_storage.py): no PostgreSQL.

The integration suite runs the same use cases on PostgreSQL, batched and one by one; these
pin down the change path's own rules: replays, refusals, resume tokens, conflicts, fallbacks.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from billing.domain.errors import (
    AccountNotFound, BalanceTooLow, IdempotencyKeyReused, InsufficientAiTime, ResumeTokenUsed,
)
from billing.service.accounts import create_account
from billing.service.balance import get_balance
from billing.service.consume import CONSUME_ANSWERS, consume
from billing.service.history import list_events
from billing.service.grants import create_grant
from billing.service.ports import ConcurrentModification
from billing.service.usage import get_usage
from tests.support.fake_storage import FakeStorage, FakeUnitOfWork
from tests.unit.memory_fixtures import FREE_DAILY, USER, WELCOME
from tests.unit.memory_fixtures import account, clock, database, deps  # noqa: F401 - fixtures


async def test_a_new_account_gets_the_welcome_and_todays_bonus_once(deps, database):
    first = await create_account(deps, USER, "free")
    again = await create_account(deps, USER, "pro")

    assert first.created and not again.created
    assert first.totals.total_seconds == WELCOME + FREE_DAILY == again.totals.total_seconds
    assert again.plan_key == "free"
    assert [e.type for e in database.ledger[USER]] == ["adjustment", "daily_bonus"]


async def test_consume_takes_the_daily_bonus_first_and_a_retry_replays_the_first_answer(deps, database, account):
    first = await consume(deps, USER, "build", 1000, "op-1")
    again = await consume(deps, USER, "build", 1000, "op-1")

    assert [(t.source, t.seconds) for t in first.taken] == [("daily", FREE_DAILY), ("welcome", 100)]
    assert again == type(first)(**{**first.__dict__, "replayed": True})
    assert first.replayed is False
    assert first.totals.total_seconds == WELCOME + FREE_DAILY - 1000
    assert sum(1 for e in database.ledger[USER] if e.type == "consumption") == 2
    assert database.ledger_matches_buckets(USER)


async def test_the_same_key_for_another_request_is_refused(deps, account):
    await consume(deps, USER, "build", 10, "op-1")
    with pytest.raises(IdempotencyKeyReused):
        await consume(deps, USER, "build", 11, "op-1")


async def test_an_answer_is_stored_in_the_format_replays_have_always_read(deps, database, account):
    result = await consume(deps, USER, "plan", 30, "op-1")

    stored = database.answers[(USER, "op-1")]
    assert stored.request_fingerprint == "consume:plan:30"
    assert stored.document == {
        "user_id": USER, "operation": "plan", "consumed_seconds": 30,
        "taken": [{"source": "daily", "seconds": 30, "expires_at": "2026-03-15T00:00:00+00:00"}],
        "totals": {"total_seconds": 2670, "paid_seconds": 1800, "bonus_seconds": 870, "next_expiry_at": "2026-03-15T00:00:00+00:00",
                   "held_seconds": 0},
        "idempotency_key": "op-1",
    }
    assert CONSUME_ANSWERS.decode(stored.document, replayed=False) == result


async def test_a_refusal_keeps_todays_bonus_and_offers_a_token_that_resumes_once(deps, database, account, clock):
    clock.set(clock.now() + timedelta(days=1))

    with pytest.raises(InsufficientAiTime) as refused:
        await consume(deps, USER, "build", 86_400, "op-1")
    assert [e.type for e in database.ledger[USER]][-1] == "daily_bonus"  # granted on this touch, kept
    assert refused.value.resume_token and refused.value.suggestions
    assert (USER, "op-1") not in database.answers  # the key may succeed after a top-up

    await create_grant(deps, USER, "gift", 90_000, "top-up", "g-1")
    resumed = await consume(deps, USER, "build", 86_400, "op-2", resume_token=refused.value.resume_token)
    assert resumed.consumed_seconds == 86_400
    with pytest.raises(ResumeTokenUsed):
        await consume(deps, USER, "build", 10, "op-3", resume_token=refused.value.resume_token)
    assert database.ledger_matches_buckets(USER)


async def test_a_negative_adjustment_beyond_the_balance_changes_nothing(deps, database, account):
    events = len(database.ledger[USER])
    with pytest.raises(BalanceTooLow):
        await create_grant(deps, USER, "adjustment", -WELCOME - 1, "", "a-1")
    assert len(database.ledger[USER]) == events and (USER, "a-1") not in database.answers


async def test_reads_of_an_unknown_account_are_not_found(deps):
    for read in (get_balance(deps, "nobody"), get_usage(deps, "nobody", "day"), list_events(deps, "nobody", 0, "")):
        with pytest.raises(AccountNotFound):
            await read


async def test_a_conflicting_write_is_retried_and_charges_once(deps, database, account):
    class RacedStorage(FakeStorage):
        """The first unlocked write loses to another replica's write of the account."""

        conflicts_left = 1

        def unlocked(self) -> FakeUnitOfWork:
            unit = super().unlocked()
            if self.conflicts_left:
                self.conflicts_left -= 1

                async def lose_the_race() -> None:
                    raise ConcurrentModification("another writer got there first")

                unit.commit = lose_the_race  # type: ignore[method-assign]
            return unit

    storage = RacedStorage(database)
    result = await consume(dataclasses.replace(deps, storage=storage), USER, "build", 60, "op-1")

    assert storage.conflicts_left == 0 and result.replayed is False
    assert sum(-e.seconds for e in database.ledger[USER] if e.type == "consumption") == 60


async def test_changes_an_unlocked_unit_cannot_carry_fall_back_to_a_transaction(deps, database):
    kinds = []

    class CountingStorage(FakeStorage):
        def transaction(self):
            kinds.append("transaction")
            return super().transaction()

        def unlocked(self):
            kinds.append("unlocked")
            return super().unlocked()

    deps = dataclasses.replace(deps, storage=CountingStorage(database))
    await create_account(deps, USER, "free")  # inserts the account row
    assert kinds == ["unlocked", "transaction"]
    kinds.clear()
    await consume(deps, USER, "build", 10, "op-1")  # one wallet statement carries it
    assert kinds == ["unlocked"]


async def test_the_first_change_after_a_period_ended_rolls_it_over(deps, account, clock):
    import dataclasses

    from billing.domain.buckets import Source
    from billing.domain.wallet import EventType
    from billing.service.wallet_change import WalletChange, change_wallet

    def credit_month(wallet, now):
        end = now + timedelta(hours=1)
        wallet.credit(Source.SUBSCRIPTION, 600, expires_at=end, now=now,
                      event_type=EventType.SUBSCRIPTION_CREDIT, reason="period 1")
        wallet.change_subscription(dataclasses.replace(wallet.account.subscription, closes_at=end))
        wallet.change_plan("pro", "active")

    await change_wallet(deps, WalletChange(USER, credit_month, repeatable=True))
    clock.set(clock.now() + timedelta(hours=2))  # the period ended an hour ago

    def sources(wallet, now):
        return sorted(str(b.source) for b in wallet.buckets if b.is_usable(now)), wallet.balance(now).totals.paid_seconds

    from billing.service.upkeep import account_upkeep

    after = await change_wallet(deps, WalletChange(USER, sources, prepare=account_upkeep(deps.catalog), repeatable=True))
    assert after == (["daily", "rollover", "welcome"], WELCOME + 600)  # pro's cap (600 min) keeps all 600 s
    assert deps.storage.database.ledger_matches_buckets(USER)
    again = await change_wallet(deps, WalletChange(USER, sources, prepare=account_upkeep(deps.catalog), repeatable=True))
    assert again == after
