"""Example-based tests of the domain engine, one behaviour each."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from billing.domain.buckets import Source
from billing.domain.catalog import Catalog, Plan, parse_catalog
from billing.domain.clock_math import add_months, next_utc_midnight
from billing.domain.errors import BalanceTooLow, InsufficientAiTime, InvalidArgument
from billing.domain.wallet import BALANCE_SECONDS_MAX, Account, BonusState, EventType, Wallet

UTC = timezone.utc
ROOT = Path(__file__).resolve().parents[2]
CATALOG: Catalog = parse_catalog(json.loads((ROOT / "catalog" / "catalog.json").read_text()))
FREE = CATALOG.plan("free")
NOON = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
MIN = 60


def new_wallet(plan: Plan = FREE, created_at: datetime = NOON) -> Wallet:
    return Wallet(Account("acct-1", plan.key, "active", created_at), [])


def reopen(wallet: Wallet) -> Wallet:
    """A new unit of work on the state the previous one left."""
    return Wallet(wallet.account, wallet.buckets)


def credit(wallet: Wallet, source: Source, seconds: int, now: datetime = NOON, *, days: int | None = 90):
    expires_at = None if days is None else now + timedelta(days=days)
    return wallet.credit(source, seconds, expires_at=expires_at, now=now, event_type="test", reason="test")


def taken(debits) -> list[tuple[int, int]]:
    return [(d.bucket.bucket_seq, d.seconds) for d in debits]


def state(wallet: Wallet) -> tuple:
    return (wallet.account, sorted(wallet.buckets, key=lambda b: b.bucket_seq), list(wallet.new_entries))


# --------------------------------------------------------------------------- consumption order


def test_daily_bucket_is_consumed_before_paid():
    wallet = new_wallet()
    # the package expires before the daily bonus (midnight), and is still taken second
    package = wallet.credit(Source.PACKAGE, 3_600, expires_at=NOON + timedelta(hours=1), now=NOON,
                            event_type="test", reason="test")
    daily = wallet.grant_daily_bonus_if_due(FREE, NOON)
    assert package.expires_at < daily.expires_at
    debits = wallet.consume("build", 1_000, NOON)
    assert taken(debits) == [(daily.bucket_seq, 900), (package.bucket_seq, 100)]
    assert wallet.account.bonus.used_seconds == 900


def test_earlier_expiry_is_consumed_first():
    wallet = new_wallet()
    gift = credit(wallet, Source.GIFT, 100, days=None)
    package = credit(wallet, Source.PACKAGE, 100, days=90)
    subscription = wallet.credit(Source.SUBSCRIPTION, 100, expires_at=add_months(NOON, 1), now=NOON,
                                 event_type="test", reason="test")
    rollover = credit(wallet, Source.ROLLOVER, 100, days=60)
    debits = wallet.consume("build", 400, NOON)
    assert taken(debits) == [(s.bucket_seq, 100) for s in (subscription, rollover, package, gift)]


def test_never_expiring_buckets_are_consumed_last():
    wallet = new_wallet()
    welcome = credit(wallet, Source.WELCOME, 50, days=None)
    far = credit(wallet, Source.PACKAGE, 500, days=3650)
    assert taken(wallet.consume("build", 10, NOON)) == [(far.bucket_seq, 10)]
    assert welcome.remaining_seconds == 50


def test_tie_goes_to_smallest_remaining():
    wallet = new_wallet()
    big = credit(wallet, Source.PACKAGE, 500)
    small = credit(wallet, Source.PACKAGE, 200)
    assert big.expires_at == small.expires_at
    assert taken(wallet.consume("build", 300, NOON)) == [(small.bucket_seq, 200), (big.bucket_seq, 100)]


def test_tie_on_expiry_and_remaining_goes_to_lower_bucket_seq():
    wallet = new_wallet()
    first = credit(wallet, Source.GIFT, 200, days=None)
    second = credit(wallet, Source.WELCOME, 200, days=None)
    assert taken(wallet.consume("build", 250, NOON)) == [(first.bucket_seq, 200), (second.bucket_seq, 50)]


def test_bucket_expiring_at_an_instant_is_unusable_at_that_instant():
    wallet = new_wallet()
    package = credit(wallet, Source.PACKAGE, 100, days=90)
    just_before = package.expires_at - timedelta(microseconds=1)
    assert wallet.balance(just_before).totals.total_seconds == 100
    assert wallet.balance(package.expires_at).totals.total_seconds == 0
    with pytest.raises(InsufficientAiTime):
        wallet.consume("build", 1, package.expires_at)
    assert taken(wallet.consume("build", 1, just_before)) == [(package.bucket_seq, 1)]


def test_balance_splits_daily_bonus_from_paid():
    wallet = new_wallet()
    credit(wallet, Source.PACKAGE, 600, days=30)
    credit(wallet, Source.GIFT, 60, days=None)
    wallet.grant_daily_bonus_if_due(FREE, NOON)
    totals = wallet.balance(NOON).totals
    assert (totals.total_seconds, totals.bonus_seconds, totals.paid_seconds) == (1_560, 900, 660)
    assert totals.next_expiry_at == next_utc_midnight(NOON)


# --------------------------------------------------------------------------- all or nothing


def test_insufficient_consume_takes_nothing():
    wallet = new_wallet()
    credit(wallet, Source.PACKAGE, 600)
    wallet.grant_daily_bonus_if_due(FREE, NOON)
    wallet = reopen(wallet)
    before = state(wallet)
    with pytest.raises(InsufficientAiTime) as raised:
        wallet.consume("build", 1_501, NOON)
    error = raised.value
    assert (error.balance_seconds, error.bonus_daily_seconds, error.paid_seconds) == (1_500, 900, 600)
    assert error.deficit_seconds == 1 and error.field == "seconds"
    assert state(wallet) == before
    assert not wallet.account_changed and wallet.changed_bucket_seqs == [] and wallet.new_bucket_seqs == []
    wallet.assert_ledger_matches_buckets()


def test_consume_of_exactly_the_balance_empties_it():
    wallet = new_wallet()
    credit(wallet, Source.PACKAGE, 600)
    credit(wallet, Source.GIFT, 30, days=None)
    wallet.consume("build", 630, NOON)
    assert wallet.balance(NOON).totals.total_seconds == 0
    wallet.assert_ledger_matches_buckets()


def test_consume_writes_one_negative_entry_per_bucket():
    wallet = new_wallet()
    a = credit(wallet, Source.PACKAGE, 100, days=10)
    b = credit(wallet, Source.PACKAGE, 100, days=20)
    wallet = reopen(wallet)
    wallet.consume("export", 150, NOON, metadata={"idempotency_key": "k1"})
    entries = [(e.type, e.seconds, e.bucket_seq, e.operation, e.metadata["source"]) for e in wallet.new_entries]
    assert entries == [
        (EventType.CONSUMPTION, -100, a.bucket_seq, "export", "package"),
        (EventType.CONSUMPTION, -50, b.bucket_seq, "export", "package"),
    ]
    assert wallet.new_entries[0].metadata["idempotency_key"] == "k1"
    assert wallet.changed_bucket_seqs == [a.bucket_seq, b.bucket_seq]
    wallet.assert_ledger_matches_buckets()


# --------------------------------------------------------------------------- daily bonus and its cap


def test_daily_bonus_granted_once_per_utc_day():
    midnight = datetime(2026, 3, 10, tzinfo=UTC)
    wallet = new_wallet(created_at=midnight)
    first = wallet.grant_daily_bonus_if_due(FREE, midnight)
    assert first.granted_seconds == 15 * MIN
    assert first.expires_at == datetime(2026, 3, 11, tzinfo=UTC)
    assert wallet.grant_daily_bonus_if_due(FREE, midnight) is None
    last_instant = datetime(2026, 3, 10, 23, 59, 59, 999_999, tzinfo=UTC)
    assert reopen(wallet).grant_daily_bonus_if_due(FREE, last_instant) is None
    assert wallet.daily_bonus_due_seconds(FREE, last_instant) == 0
    next_day = reopen(wallet).grant_daily_bonus_if_due(FREE, datetime(2026, 3, 11, tzinfo=UTC))
    assert next_day is not None and next_day.bucket_seq == first.bucket_seq + 1


def test_daily_bonus_expires_at_next_utc_midnight_and_is_not_carried():
    wallet = new_wallet()
    wallet.grant_daily_bonus_if_due(FREE, NOON)
    tomorrow = datetime(2026, 3, 11, 9, tzinfo=UTC)
    assert wallet.balance(tomorrow).totals.bonus_seconds == 0
    wallet = reopen(wallet)
    wallet.grant_daily_bonus_if_due(FREE, tomorrow)
    assert wallet.balance(tomorrow).totals.bonus_seconds == 15 * MIN


def test_daily_bonus_shrinks_to_cap_left():
    plan = dataclasses.replace(FREE, monthly_bonus_cap_minutes=40)  # 15 + 15 + 10
    wallet = new_wallet(plan)
    granted = []
    for day in (1, 2, 3, 4):
        now = datetime(2026, 3, day, 8, tzinfo=UTC)
        wallet = reopen(wallet)
        due = wallet.daily_bonus_due_seconds(plan, now)
        bucket = wallet.grant_daily_bonus_if_due(plan, now)
        granted.append(bucket.granted_seconds if bucket else 0)
        assert due == granted[-1]
        if bucket:
            wallet.consume("build", bucket.granted_seconds, now)
    assert granted == [15 * MIN, 15 * MIN, 10 * MIN, 0]
    assert wallet.account.bonus.used_seconds == 40 * MIN


def test_unused_daily_bonus_does_not_count_towards_the_cap():
    plan = dataclasses.replace(FREE, monthly_bonus_cap_minutes=20)
    wallet = new_wallet(plan)
    for day in range(1, 11):  # ten days of bonus, never used
        wallet = reopen(wallet)
        assert wallet.grant_daily_bonus_if_due(plan, datetime(2026, 3, day, tzinfo=UTC)).granted_seconds == 15 * MIN
    assert wallet.account.bonus.used_seconds == 0


def test_free_plan_bonus_stops_at_300_minutes_a_month():
    wallet = new_wallet(created_at=datetime(2026, 3, 1, tzinfo=UTC))
    used = 0
    for day in range(1, 32):
        now = datetime(2026, 3, day, 10, tzinfo=UTC)
        wallet = reopen(wallet)
        bucket = wallet.grant_daily_bonus_if_due(FREE, now)
        if bucket:
            wallet.consume("build", bucket.granted_seconds, now)
            used += bucket.granted_seconds
    assert used == 300 * MIN == FREE.monthly_bonus_cap_seconds


def test_bonus_counter_resets_next_month():
    plan = dataclasses.replace(FREE, monthly_bonus_cap_minutes=15)
    wallet = new_wallet(plan)
    march_31 = datetime(2026, 3, 31, 23, 0, tzinfo=UTC)
    wallet.grant_daily_bonus_if_due(plan, march_31)
    wallet.consume("build", 15 * MIN, march_31)
    wallet = reopen(wallet)
    assert wallet.grant_daily_bonus_if_due(plan, datetime(2026, 3, 31, 23, 30, tzinfo=UTC)) is None
    april_1 = datetime(2026, 4, 1, tzinfo=UTC)
    assert wallet.daily_bonus_due_seconds(plan, april_1) == 15 * MIN
    assert wallet.grant_daily_bonus_if_due(plan, april_1).granted_seconds == 15 * MIN
    assert wallet.account.bonus == BonusState(last_grant_on=april_1.date(), month=april_1.date(), used_seconds=0)
    wallet.consume("build", 60, april_1)
    assert wallet.account.bonus.used_seconds == 60


def test_plan_without_daily_bonus_grants_nothing():
    business = CATALOG.plan("business")
    wallet = new_wallet(business)
    assert wallet.grant_daily_bonus_if_due(business, NOON) is None
    assert not wallet.account_changed and wallet.new_entries == []


def test_daily_bonus_is_skipped_not_refused_at_the_balance_ceiling():
    wallet = new_wallet()
    credit(wallet, Source.GIFT, BALANCE_SECONDS_MAX - 100, days=None)
    wallet = reopen(wallet)
    before = state(wallet)
    assert wallet.daily_bonus_due_seconds(FREE, NOON) == 0
    assert wallet.grant_daily_bonus_if_due(FREE, NOON) is None
    assert state(wallet) == before and not wallet.account_changed
    wallet.consume("build", 1_000, NOON)  # room again: a later touch that day grants it
    assert wallet.grant_daily_bonus_if_due(FREE, NOON).granted_seconds == 15 * MIN


# --------------------------------------------------------------------------- adjustments and the ceiling


def test_negative_adjustment_never_touches_daily_bonus():
    wallet = new_wallet()
    daily = wallet.grant_daily_bonus_if_due(FREE, NOON)
    gift = credit(wallet, Source.GIFT, 600, days=None)
    debits = wallet.debit_adjustment(500, "correction", NOON, {"ticket": "T-1"})
    assert taken(debits) == [(gift.bucket_seq, 500)]
    assert wallet.bucket(daily.bucket_seq).remaining_seconds == 900
    assert wallet.new_entries[-1].type == EventType.ADJUSTMENT and wallet.new_entries[-1].seconds == -500
    assert wallet.account.bonus.used_seconds == 0


def test_negative_adjustment_below_zero_is_refused():
    wallet = new_wallet()
    wallet.grant_daily_bonus_if_due(FREE, NOON)
    credit(wallet, Source.PACKAGE, 600)
    wallet = reopen(wallet)
    before = state(wallet)
    # the total (1500 s) would cover it, but the daily bonus is not the adjustment's to take
    with pytest.raises(BalanceTooLow) as raised:
        wallet.debit_adjustment(601, "correction", NOON, {})
    assert raised.value.field == "seconds"
    assert state(wallet) == before and not wallet.account_changed


def test_negative_adjustment_ignores_expired_buckets():
    wallet = new_wallet()
    package = credit(wallet, Source.PACKAGE, 600, days=1)
    with pytest.raises(BalanceTooLow):
        wallet.debit_adjustment(1, "correction", package.expires_at, {})


def test_credit_above_balance_ceiling_is_invalid():
    wallet = new_wallet()
    credit(wallet, Source.GIFT, BALANCE_SECONDS_MAX - 10, days=None)
    credit(wallet, Source.GIFT, 10, days=None)  # exactly at the ceiling is fine
    wallet = reopen(wallet)
    before = state(wallet)
    with pytest.raises(InvalidArgument) as raised:
        credit(wallet, Source.PACKAGE, 1)
    assert raised.value.field == "seconds"
    assert state(wallet) == before and not wallet.account_changed


def test_expired_buckets_do_not_count_towards_the_ceiling():
    wallet = new_wallet()
    old = credit(wallet, Source.PACKAGE, BALANCE_SECONDS_MAX, days=1)
    assert credit(wallet, Source.GIFT, BALANCE_SECONDS_MAX, old.expires_at, days=None).granted_seconds


def test_ledger_explains_every_bucket_across_units_of_work():
    wallet = new_wallet()
    ledger = []
    for day in range(1, 6):
        now = datetime(2026, 3, day, 9, tzinfo=UTC)
        wallet = reopen(wallet)
        wallet.grant_daily_bonus_if_due(FREE, now)
        credit(wallet, Source.PACKAGE, 100 * day, now, days=2)
        wallet.consume("plan", 950, now)
        wallet.assert_ledger_matches_buckets()
        ledger += wallet.new_entries
    assert sum(e.seconds for e in ledger) == sum(b.remaining_seconds for b in wallet.buckets)
    assert [e.event_seq for e in ledger] == list(range(1, len(ledger) + 1))
