"""The wallet simulation the property tests drive: one Wallet per step, checked against RefModel."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

from hypothesis import event

from billing.domain.buckets import Bucket, Source
from billing.domain.catalog import Plan, parse_catalog
from billing.domain.clock_math import add_months
from billing.domain.errors import BalanceTooLow, InsufficientAiTime, InvalidArgument
from billing.domain.wallet import Account, EventType, LedgerEntry, Wallet
from tests.unit.reference_wallet import RefBucket, RefModel, goes_first, midnight_after, month_of

UTC = timezone.utc
ROOT = Path(__file__).resolve().parents[2]
CATALOG = parse_catalog(json.loads((ROOT / "catalog" / "catalog.json").read_text()))
FREE = CATALOG.plan("free")
STARTER = CATALOG.plan("starter")

PLANS: dict[str, Plan] = {
    "free": FREE,  # 15 min a day, 300 min a month
    "free_small_cap": dataclasses.replace(FREE, monthly_bonus_cap_minutes=40),  # 15 + 15 + 10, then nothing
    "free_odd_cap": dataclasses.replace(FREE, bonus_daily_minutes=7, monthly_bonus_cap_minutes=17),
    "free_zero_cap": dataclasses.replace(FREE, monthly_bonus_cap_minutes=0),
    "starter": STARTER,  # 10 min a day, 200 min a month
    "starter_uncapped": dataclasses.replace(STARTER, monthly_bonus_cap_minutes=None),
    "business": CATALOG.plan("business"),  # no daily bonus
}

CREDIT_EVENT = {
    Source.PACKAGE: EventType.PACKAGE_CREDIT,
    Source.SUBSCRIPTION: EventType.SUBSCRIPTION_CREDIT,
    Source.ROLLOVER: EventType.ROLLOVER_CREATED,
    Source.WELCOME: EventType.ADJUSTMENT,
    Source.GIFT: EventType.ADJUSTMENT,
}


def expiry_for(source: Source, now: datetime) -> datetime | None:
    if source in (Source.PACKAGE,):
        return now + timedelta(days=CATALOG.package_validity_days)
    if source is Source.ROLLOVER:
        return now + timedelta(days=CATALOG.rollover_days)
    if source is Source.SUBSCRIPTION:
        return add_months(now, 1)
    return None  # welcome, gift



def snapshot(wallet: Wallet) -> tuple:
    return (wallet.account, sorted(wallet.buckets, key=lambda b: b.bucket_seq))


class Simulation:
    def __init__(self, plan: Plan, start: datetime):
        self.plan = plan
        self.now = start
        self.account = Account(
            account_id="acct-1", plan_key=plan.key, subscription_status="active", created_at=start
        )
        self.buckets: list[Bucket] = []
        self.ledger: list[LedgerEntry] = []
        self.ref = RefModel(plan)
        self.daily_used_by_month: Counter = Counter()  # from the engine's own debits
        self.grants_by_day: Counter = Counter()
        self.operation_count = 0

    # ---- one unit of work

    def open_wallet(self) -> Wallet:
        return Wallet(self.account, list(self.buckets))

    def close_wallet(self, wallet: Wallet) -> None:
        wallet.assert_ledger_matches_buckets()
        entries = wallet.new_entries
        first = self.account.last_event_seq + 1
        assert [e.event_seq for e in entries] == list(range(first, first + len(entries)))
        assert all(e.occurred_at == self.now and e.account_id == "acct-1" for e in entries)
        known = {b.bucket_seq for b in self.buckets}
        assert set(wallet.new_bucket_seqs).isdisjoint(known)
        assert set(wallet.changed_bucket_seqs) <= known
        touched = {e.bucket_seq for e in entries if e.seconds < 0} & known
        assert set(wallet.changed_bucket_seqs) == touched
        remaining_before = {b.bucket_seq: b.remaining_seconds for b in self.buckets}
        assert wallet.changes_of_existing_buckets() == [
            (seq, remaining_before[seq] - wallet.bucket(seq).remaining_seconds, 0, wallet.bucket(seq).expiry_notice)
            for seq in wallet.changed_bucket_seqs
        ]
        assert all(seconds > 0 for _, seconds, _, _ in wallet.changes_of_existing_buckets())
        self.account, self.buckets = wallet.account, wallet.buckets
        self.ledger.extend(entries)
        self.check_invariants()

    def assert_unchanged(self, wallet: Wallet, before: tuple) -> None:
        assert snapshot(wallet) == before
        assert not wallet.account_changed
        assert wallet.new_entries == [] and wallet.new_bucket_seqs == [] and wallet.changed_bucket_seqs == []

    def why_no_daily(self) -> str:
        if self.ref.last_grant_day == self.now.date():
            return "granted today"
        if self.plan.bonus_daily_minutes == 0:
            return "plan has none"
        cap = self.plan.monthly_bonus_cap_seconds
        if cap is not None and self.ref.bonus_used_by_month[month_of(self.now.date())] >= cap:
            return "cap reached"
        return "balance ceiling"

    # ---- invariants after every step

    def check_invariants(self) -> None:
        now = self.now
        totals = Wallet(self.account, list(self.buckets)).balance(now).totals
        # never negative, and the same as the naive model
        assert totals.total_seconds >= 0 and totals.paid_seconds >= 0 and totals.bonus_seconds >= 0
        assert totals.total_seconds == self.ref.total(now)
        assert totals.bonus_seconds == self.ref.bonus(now)
        assert totals.paid_seconds == self.ref.paid(now)
        expiries = [b.expires_at for b in self.ref.pool(now) if b.expires_at is not None]
        assert totals.next_expiry_at == (min(expiries) if expiries else None)
        # bucket for bucket, including expired and empty ones
        engine = {b.bucket_seq: (b.source, b.remaining_seconds, b.granted_seconds, b.expires_at) for b in self.buckets}
        ref = {b.seq: (b.source, b.remaining, b.granted, b.expires_at) for b in self.ref.buckets}
        assert engine == ref
        # the ledger explains every second left in every bucket, expired ones included
        assert sum(e.seconds for e in self.ledger) == sum(b.remaining_seconds for b in self.buckets)
        for seq in engine:
            assert sum(e.seconds for e in self.ledger if e.bucket_seq == seq) == engine[seq][1]
        assert [e.event_seq for e in self.ledger] == list(range(1, len(self.ledger) + 1))
        assert self.account.last_event_seq == len(self.ledger)
        assert sorted(engine) == list(range(1, len(engine) + 1)) and self.account.last_bucket_seq == len(engine)
        # the monthly bonus cap, counted from what was actually consumed
        cap = self.plan.monthly_bonus_cap_seconds
        if cap is not None:
            assert all(used <= cap for used in self.daily_used_by_month.values()), self.daily_used_by_month
        assert self.account.bonus.used_in_month_of(now.date()) == self.daily_used_by_month[month_of(now.date())]
        # at most one daily bonus per UTC day
        assert all(count == 1 for count in self.grants_by_day.values())

    # ---- operations

    def advance(self, delta: timedelta) -> None:
        assert delta >= timedelta(0)
        self.now += delta

    def to_midnight(self, offset: timedelta) -> None:
        self.now = midnight_after(self.now) + offset

    def to_expiry(self, index: int, offset: timedelta) -> None:
        """Jump to (an offset around) the expiry of one of the buckets not yet expired."""
        upcoming = sorted({b.expires_at for b in self.ref.buckets if b.expires_at and b.expires_at > self.now})
        if upcoming:
            self.now = max(self.now, upcoming[index % len(upcoming)] + offset)

    def grant_daily(self) -> None:
        wallet = self.open_wallet()
        before = snapshot(wallet)
        offer = self.ref.daily_offer(self.now)
        granted = wallet.grant_daily_bonus_if_due(self.plan, self.now)
        if offer == 0:
            event(f"daily: nothing due ({self.why_no_daily()})")
            assert granted is None
            self.assert_unchanged(wallet, before)
        else:
            assert granted is not None
            if offer < self.plan.daily_bonus_seconds:
                event("daily: shrunk to the cap left")
            assert granted.source is Source.DAILY
            assert granted.granted_seconds == granted.remaining_seconds == offer
            assert granted.granted_at == self.now and granted.expires_at == midnight_after(self.now)
            (entry,) = wallet.new_entries
            assert (entry.type, entry.seconds, entry.bucket_seq) == (EventType.DAILY_BONUS, offer, granted.bucket_seq)
            self.ref.grant_daily(offer, self.now)
            self.grants_by_day[self.now.date()] += 1
            # a second touch the same unit of work grants nothing more
            assert wallet.grant_daily_bonus_if_due(self.plan, self.now) is None
        self.close_wallet(wallet)

    def credit(self, source: Source, seconds: int) -> None:
        wallet = self.open_wallet()
        before = snapshot(wallet)
        expires_at = expiry_for(source, self.now)
        if not self.ref.fits_under_ceiling(seconds, self.now):
            try:
                wallet.credit(source, seconds, expires_at=expires_at, now=self.now,
                              event_type=CREDIT_EVENT[source], reason="test credit")
            except InvalidArgument as error:
                assert error.field == "seconds"
            else:
                raise AssertionError("a credit above the balance ceiling was accepted")
            event("credit: refused at the ceiling")
            self.assert_unchanged(wallet, before)
        else:
            bucket = wallet.credit(source, seconds, expires_at=expires_at, now=self.now,
                                   event_type=CREDIT_EVENT[source], reason="test credit")
            assert (bucket.source, bucket.granted_seconds, bucket.remaining_seconds) == (source, seconds, seconds)
            assert bucket.expires_at == expires_at and bucket.granted_at == self.now
            (entry,) = wallet.new_entries
            assert (entry.type, entry.seconds, entry.bucket_seq) == (CREDIT_EVENT[source], seconds, bucket.bucket_seq)
            assert wallet.new_bucket_seqs == [bucket.bucket_seq]
            self.ref.credit(source, seconds, expires_at)
        self.close_wallet(wallet)

    def consume(self, seconds: int) -> None:
        self._debit(seconds, adjustment=False)

    def adjust(self, seconds: int) -> None:
        self._debit(seconds, adjustment=True)

    def _debit(self, seconds: int, *, adjustment: bool) -> None:
        if seconds <= 0:
            return
        now = self.now
        wallet = self.open_wallet()
        before = snapshot(wallet)
        ref_pool_before = [dataclasses.replace(b) for b in self.ref.pool(now, with_daily=not adjustment)]
        totals = wallet.balance(now).totals
        expected = self.ref.take(seconds, now, with_daily=not adjustment)
        self.operation_count += 1
        operation = f"op-{self.operation_count}"
        try:
            if adjustment:
                debits = wallet.debit_adjustment(seconds, "support correction", now, {"ticket": "T-1"})
            else:
                debits = wallet.consume(operation, seconds, now)
        except InsufficientAiTime as error:
            event("consume: refused, insufficient")
            assert not adjustment and expected is None
            assert error.balance_seconds == totals.total_seconds < seconds
            assert error.deficit_seconds == seconds - totals.total_seconds
            assert (error.bonus_daily_seconds, error.paid_seconds) == (totals.bonus_seconds, totals.paid_seconds)
            assert error.field == "seconds"
            self.assert_unchanged(wallet, before)  # all or nothing
            self.close_wallet(wallet)
            return
        except BalanceTooLow as error:
            event("adjust: refused, balance too low" + (" (daily bonus left)" if self.ref.bonus(now) else ""))
            assert adjustment and expected is None
            assert error.field == "seconds"
            self.assert_unchanged(wallet, before)
            self.close_wallet(wallet)
            return
        assert expected is not None, "the engine took time the reference model says is not there"
        event(f"{'adjust' if adjustment else 'consume'}: {min(len(debits), 3)}+ buckets")
        if any(b.expires_at == now for b in self.ref.buckets):
            event("debit at the very instant a bucket expires")
        pool_expiries = [b.expires_at for b in ref_pool_before if b.source is not Source.DAILY and b.expires_at]
        if any(b.source is Source.DAILY for b in ref_pool_before) and pool_expiries and min(pool_expiries) < midnight_after(now):
            event("debit with a paid bucket expiring before the daily bonus")

        # same buckets, same amounts, same order as the naive model
        assert [(d.bucket.bucket_seq, d.seconds) for d in debits] == expected
        assert sum(d.seconds for d in debits) == seconds
        # never from an expired (or empty) bucket: one expiring at T is unusable at T
        for debit in debits:
            assert debit.bucket.expires_at is None or now < debit.bucket.expires_at
            assert 0 < debit.seconds <= debit.bucket.remaining_seconds
            assert not (adjustment and debit.bucket.source is Source.DAILY)
        # order, stated directly: debits follow the rule, each but the last drains its bucket,
        # and nothing that goes before the last debited bucket is left untouched
        in_debit_order = ref_pool_sorted(ref_pool_before, debits)
        for earlier, later in zip(in_debit_order, in_debit_order[1:]):
            assert goes_first(earlier, later)
        for debit in debits[:-1]:
            assert debit.seconds == debit.bucket.remaining_seconds
        last = next(b for b in ref_pool_before if b.seq == debits[-1].bucket.bucket_seq)
        debited = {d.bucket.bucket_seq for d in debits}
        for other in ref_pool_before:
            if other.seq not in debited:
                assert not goes_first(other, last), (other, last)
        # one ledger entry per debit, negative, in order
        expected_type = EventType.ADJUSTMENT if adjustment else EventType.CONSUMPTION
        assert [(e.type, e.seconds, e.bucket_seq) for e in wallet.new_entries] == [
            (expected_type, -d.seconds, d.bucket.bucket_seq) for d in debits
        ]
        if not adjustment:
            assert all(e.operation == operation for e in wallet.new_entries)
        for debit in debits:
            if debit.bucket.source is Source.DAILY:
                self.daily_used_by_month[month_of(now.date())] += debit.seconds
        self.close_wallet(wallet)


def ref_pool_sorted(pool: list[RefBucket], debits) -> list[RefBucket]:
    by_seq = {b.seq: b for b in pool}
    return [by_seq[d.bucket.bucket_seq] for d in debits]
