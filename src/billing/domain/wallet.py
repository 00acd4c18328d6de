"""The account aggregate: one account's state and live buckets, and every change to them.

A use case loads a Wallet (under the account's lock, or unlocked), calls its
methods, and the repository writes what they recorded (new buckets, changed buckets,
ledger entries, the account row) in one statement that checks the account version it
was loaded at. Each method keeps the delta invariant:
the seconds of the new ledger entries equal the change in the buckets' remainders.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date, datetime
from types import MappingProxyType
from typing import Any, Mapping

from billing.domain.balance import BalanceView, balance_at
from billing.domain.buckets import Bucket, Debit, Source, plan_debits
from billing.domain.alerts import AlertState
from billing.domain.auto_topup import AutoTopup
from billing.domain.catalog import Plan
from billing.domain.clock_math import assert_utc, first_day_of_month, next_utc_midnight
from billing.domain.errors import BalanceTooLow, InsufficientAiTime, InvalidArgument
from billing.domain.events import WalletEvent
from billing.domain.hold import Hold, HoldSummary
from billing.domain.payments import Payment
from billing.domain.subscription import Subscription

# Live balance ceiling: keeps every total an int32 on the wire with a wide margin.
BALANCE_SECONDS_MAX = 1_000_000_000


class EventType:
    """The contract's BillingEventType values this engine writes."""

    SUBSCRIPTION_CREDIT = "subscription_credit"
    PACKAGE_CREDIT = "package_credit"
    DAILY_BONUS = "daily_bonus"
    CONSUMPTION = "consumption"
    ROLLOVER_CREATED = "rollover_created"
    ROLLOVER_DISCARD = "rollover_discard"
    ROLLOVER_DISCARD_PENDING = "rollover_discard_pending"
    AUTO_TOPUP_TRIGGERED = "auto_topup_triggered"
    ADJUSTMENT = "adjustment"


# Entries that change no bucket (seconds 0): a notice the account's history shows, such as
# "these rollover seconds expire in 7 days" or "a top-up payment was started".
NOTICE_TYPES = frozenset({EventType.ROLLOVER_DISCARD_PENDING, EventType.AUTO_TOPUP_TRIGGERED})


@dataclass(frozen=True)
class BonusState:
    last_grant_on: date | None = None
    month: date | None = None  # first day of the month used_seconds belongs to
    used_seconds: int = 0  # daily bonus consumed in that month

    def used_in_month_of(self, day: date) -> int:
        return self.used_seconds if self.month == first_day_of_month(day) else 0


@dataclass(frozen=True)
class Account:
    account_id: str
    plan_key: str
    subscription_status: str
    created_at: datetime
    last_bucket_seq: int = 0
    last_event_seq: int = 0
    version: int = 0  # of the stored row: every write of it adds one (the storage's, not the domain's)
    bonus: BonusState = BonusState()
    subscription: Subscription = Subscription()
    auto_topup: AutoTopup = AutoTopup()
    holds: HoldSummary = HoldSummary()
    alerts: AlertState = AlertState()
    last_outbound_seq: int = 0  # the account's outbound events are numbered 1, 2, 3 ...
    credit_notice_at: datetime | None = None  # when a credit expiry notice is next due


@dataclass(frozen=True)
class OutboxRow:
    """An outbound event as written with its change: the body to send, numbered per account."""

    seq: int
    event_id: str
    type: str
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class LedgerEntry:
    account_id: str
    event_seq: int
    type: str
    seconds: int  # signed: credits positive, debits negative
    reason: str
    bucket_seq: int
    occurred_at: datetime
    operation: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        assert self.seconds != 0 or self.type in NOTICE_TYPES
        assert self.event_seq > 0 and self.bucket_seq > 0


class Wallet:
    def __init__(self, account: Account, buckets: list[Bucket]):
        assert all(b.account_id == account.account_id for b in buckets)
        self.account = account
        self._buckets: dict[int, Bucket] = {b.bucket_seq: b for b in buckets}
        self.new_bucket_seqs: list[int] = []
        self.changed_bucket_seqs: list[int] = []
        self.new_entries: list[LedgerEntry] = []
        self._remaining_before = {b.bucket_seq: b.remaining_seconds for b in buckets}
        self.loaded_account = account
        self.opened_now = False  # the account was created by the unit of work that loaded it
        # Payments loaded with the wallet (by id, for a change that needs them) and those the
        # change recorded or updated, saved with it.
        self.payments: dict[str, Payment] = {}
        self.changed_payment_ids: list[str] = []
        self.events: list[WalletEvent] = []  # recorded during a change, handled after its commit
        # Holds (domain/holds.py) loaded for the change: every open one of the account when
        # open_holds_loaded, plus any asked for by id; those the change made or changed are saved with it.
        self.holds: dict[str, Hold] = {}
        self.open_holds_loaded = False
        self.changed_hold_ids: list[str] = []
        self._held_before = {b.bucket_seq: b.held_seconds for b in buckets}
        self.outbox: list[OutboxRow] = []  # outbound events of the change, saved with it

    def record(self, event: WalletEvent) -> None:
        self.events.append(event)

    def mark_opened(self) -> None:
        assert not self.new_entries and self.account.last_event_seq == 0
        self.opened_now = True

    @property
    def buckets(self) -> list[Bucket]:
        return list(self._buckets.values())

    def bucket(self, bucket_seq: int) -> Bucket:
        return self._buckets[bucket_seq]

    @property
    def account_changed(self) -> bool:
        return self.account != self.loaded_account

    def changes_of_existing_buckets(self) -> list[tuple[int, int, int, int]]:
        """(bucket_seq, seconds taken, change of held seconds, expiry notice) for each bucket that
        existed when loaded and was debited, reserved, released or noticed."""
        return [
            (seq, self._remaining_before[seq] - self._buckets[seq].remaining_seconds,
             self._buckets[seq].held_seconds - self._held_before[seq], self._buckets[seq].expiry_notice)
            for seq in self.changed_bucket_seqs
        ]

    def mark_expiry_notice(self, bucket_seq: int, notice: int) -> None:
        bucket = self._buckets[bucket_seq]
        assert notice > bucket.expiry_notice
        self._replace_bucket(dataclasses.replace(bucket, expiry_notice=notice))

    def set_credit_notice_at(self, instant: datetime | None) -> None:
        if instant != self.account.credit_notice_at:
            self.account = dataclasses.replace(self.account, credit_notice_at=instant)

    def balance(self, now: datetime) -> BalanceView:
        return balance_at(self._buckets.values(), now)

    def _held_and_available(self, now: datetime) -> int:
        """What the ceiling bounds: held seconds may become available again, and are counted."""
        totals = self.balance(now).totals
        return totals.total_seconds + totals.held_seconds

    def daily_bonus_due_seconds(self, plan: Plan, now: datetime) -> int:
        """Seconds today's daily bonus would add now; 0 once granted today, with the cap reached,
        or when it would lift the balance above BALANCE_SECONDS_MAX (skipped, not an error: the
        grant runs inside reads and consumes, which must not fail on it)."""
        assert_utc(now)
        today = now.date()
        bonus = self.account.bonus
        # ">=": a replica whose clock is a little behind another's must not grant "yesterday"
        # again after the other granted today.
        if bonus.last_grant_on is not None and bonus.last_grant_on >= today:
            return 0
        cap = plan.monthly_bonus_cap_seconds
        if cap is None:
            amount = plan.daily_bonus_seconds
        else:
            amount = min(plan.daily_bonus_seconds, max(0, cap - bonus.used_in_month_of(today)))
        if amount and self._held_and_available(now) + amount > BALANCE_SECONDS_MAX:
            return 0
        return amount

    def grant_daily_bonus_if_due(self, plan: Plan, now: datetime) -> Bucket | None:
        """Materializes today's daily bonus on first touch: min(plan's daily amount, cap left)."""
        assert_utc(now)
        assert plan.key == self.account.plan_key
        amount = self.daily_bonus_due_seconds(plan, now)
        if amount == 0:
            return None
        today = now.date()
        used = self.account.bonus.used_in_month_of(today)
        self.account = dataclasses.replace(
            self.account, bonus=BonusState(last_grant_on=today, month=first_day_of_month(today), used_seconds=used)
        )
        return self.credit(
            Source.DAILY, amount, expires_at=next_utc_midnight(now), now=now,
            event_type=EventType.DAILY_BONUS, reason="Daily bonus",
        )

    def credit(
        self,
        source: Source,
        seconds: int,
        *,
        expires_at: datetime | None,
        now: datetime,
        event_type: str,
        reason: str,
        metadata: Mapping[str, Any] | None = None,
    ) -> Bucket:
        assert seconds > 0
        assert_utc(now)
        if self._held_and_available(now) + seconds > BALANCE_SECONDS_MAX:
            raise InvalidArgument(f"balance may not exceed {BALANCE_SECONDS_MAX} seconds", field="seconds")
        bucket_seq = self.account.last_bucket_seq + 1
        bucket = Bucket(
            account_id=self.account.account_id, bucket_seq=bucket_seq, source=source,
            granted_seconds=seconds, remaining_seconds=seconds, granted_at=now, expires_at=expires_at,
        )
        self.account = dataclasses.replace(self.account, last_bucket_seq=bucket_seq)
        self._buckets[bucket_seq] = bucket
        self.new_bucket_seqs.append(bucket_seq)
        self._append_entry(event_type, seconds, reason, bucket_seq, now, None, {"source": str(source), **(metadata or {})})
        return bucket

    def plan_or_refuse(self, seconds: int, now: datetime) -> tuple[Debit, ...]:
        """Which buckets would pay for `seconds` now, or InsufficientAiTime (a consume's or a hold's 402)."""
        assert_utc(now)
        debits = plan_debits(self._buckets.values(), seconds, now)
        if debits is None:
            totals = self.balance(now).totals
            raise InsufficientAiTime(
                balance_seconds=totals.total_seconds,
                bonus_daily_seconds=totals.bonus_seconds,
                paid_seconds=totals.paid_seconds,
                deficit_seconds=seconds - totals.total_seconds,
                plan_key=self.account.plan_key,
            )
        return debits

    def consume(
        self, operation: str, seconds: int, now: datetime, metadata: Mapping[str, Any] | None = None
    ) -> tuple[Debit, ...]:
        """Takes `seconds` in consumption order, or raises InsufficientAiTime and takes nothing."""
        debits = self.plan_or_refuse(seconds, now)
        reason = f"AI operation: {operation}"
        for debit in debits:
            self._apply_debit(debit, EventType.CONSUMPTION, reason, now, operation, metadata)
        return debits

    def reserve(self, bucket_seq: int, seconds: int) -> None:
        """Holds `seconds` of a bucket's free seconds (a hold's reservation: no ledger entry, the
        seconds stay the bucket's)."""
        bucket = self._buckets[bucket_seq]
        assert 0 < seconds <= bucket.free_seconds
        self._replace_bucket(dataclasses.replace(bucket, held_seconds=bucket.held_seconds + seconds))

    def unreserve(self, bucket_seq: int, seconds: int) -> None:
        """Gives held seconds back to their bucket (usable again, unless it expired meanwhile)."""
        bucket = self._buckets[bucket_seq]
        assert 0 < seconds <= bucket.held_seconds
        self._replace_bucket(dataclasses.replace(bucket, held_seconds=bucket.held_seconds - seconds))

    def take_reserved(
        self, bucket_seq: int, seconds: int, event_type: str, reason: str, now: datetime,
        operation: str | None, metadata: Mapping[str, Any],
    ) -> None:
        """Debits held seconds (a hold's commit), expired bucket or not: they were reserved in time."""
        bucket = self._buckets[bucket_seq]
        assert 0 < seconds <= bucket.held_seconds
        self._replace_bucket(dataclasses.replace(
            bucket, held_seconds=bucket.held_seconds - seconds, remaining_seconds=bucket.remaining_seconds - seconds))
        if bucket.is_bonus:
            self._count_bonus_used(bucket, seconds)
        self._append_entry(event_type, -seconds, reason, bucket_seq, now, operation, {"source": str(bucket.source), **metadata})

    def put_hold(self, hold: Hold, summary: HoldSummary) -> None:
        """Saves a made or changed hold with the change, and the account's summary of its open holds."""
        assert self.open_holds_loaded, "the summary is computed over every open hold"
        self.holds[hold.hold_id] = hold
        if hold.hold_id not in self.changed_hold_ids:
            self.changed_hold_ids.append(hold.hold_id)
        self.account = dataclasses.replace(self.account, holds=summary)

    def next_outbound_seq(self) -> int:
        seq = self.account.last_outbound_seq + 1
        self.account = dataclasses.replace(self.account, last_outbound_seq=seq)
        return seq

    def add_to_outbox(self, row: OutboxRow) -> None:
        assert row.seq == self.account.last_outbound_seq and row.seq > (self.outbox[-1].seq if self.outbox else 0)
        self.outbox.append(row)

    def _replace_bucket(self, bucket: Bucket) -> None:
        self._buckets[bucket.bucket_seq] = bucket
        if bucket.bucket_seq not in self.new_bucket_seqs and bucket.bucket_seq not in self.changed_bucket_seqs:
            self.changed_bucket_seqs.append(bucket.bucket_seq)

    def record_payment(self, payment: Payment) -> None:
        assert payment.account_id == self.account.account_id
        self.payments[payment.payment_id] = payment
        if payment.payment_id not in self.changed_payment_ids:
            self.changed_payment_ids.append(payment.payment_id)

    def change_subscription(self, subscription: Subscription) -> None:
        self.account = dataclasses.replace(self.account, subscription=subscription)

    def change_auto_topup(self, auto_topup: AutoTopup) -> None:
        self.account = dataclasses.replace(self.account, auto_topup=auto_topup)

    def change_plan(self, plan_key: str, subscription_status: str) -> None:
        self.account = dataclasses.replace(self.account, plan_key=plan_key, subscription_status=subscription_status)

    def take_from_bucket(
        self, bucket_seq: int, seconds: int, event_type: str, reason: str, now: datetime,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Takes seconds out of one named bucket, expired or not (a rollover moves an ended
        period's seconds; a refund takes back what its payment credited)."""
        bucket = self._buckets[bucket_seq]
        assert 0 < seconds <= bucket.free_seconds and not bucket.is_bonus
        self._apply_debit(Debit(bucket=bucket, seconds=seconds), event_type, reason, now, None, metadata)

    def notice(self, event_type: str, reason: str, bucket_seq: int, now: datetime, metadata: Mapping[str, Any]) -> None:
        """A history entry that changes no bucket. It names one (every ledger row does): the one it
        is about, or any of the account's (an account-level notice)."""
        assert event_type in NOTICE_TYPES
        assert 0 < bucket_seq <= self.account.last_bucket_seq
        self._append_entry(event_type, 0, reason, bucket_seq, now, None, dict(metadata))

    def debit_adjustment(self, seconds: int, reason: str, now: datetime, metadata: Mapping[str, Any]) -> tuple[Debit, ...]:
        """A negative adjustment takes from granted and purchased time, never the daily bonus."""
        assert seconds > 0
        paid_buckets = [b for b in self._buckets.values() if not b.is_bonus]
        debits = plan_debits(paid_buckets, seconds, now)
        if debits is None:
            raise BalanceTooLow(
                f"an adjustment of -{seconds}s would take the balance below zero", field="seconds"
            )
        for debit in debits:
            self._apply_debit(debit, EventType.ADJUSTMENT, reason, now, None, metadata)
        return debits

    def _apply_debit(
        self, debit: Debit, event_type: str, reason: str, now: datetime,
        operation: str | None, metadata: Mapping[str, Any] | None,
    ) -> None:
        current = self._buckets[debit.bucket.bucket_seq]
        assert current == debit.bucket, "debit planned against a stale bucket"
        self._replace_bucket(dataclasses.replace(current, remaining_seconds=current.remaining_seconds - debit.seconds))
        if current.is_bonus:
            self._count_bonus_used(current, debit.seconds)
        self._append_entry(
            event_type, -debit.seconds, reason, current.bucket_seq, now, operation,
            {"source": str(current.source), **(metadata or {})},
        )

    def _count_bonus_used(self, bucket: Bucket, seconds: int) -> None:
        """Counts against the month the daily bucket was granted in: the counter's month.

        They differ only when another replica's clock already moved the counter to the next
        month; that bucket's grant was checked against its own month's cap then.
        """
        bonus = self.account.bonus
        if bonus.month != first_day_of_month(bucket.granted_at.date()):
            return
        self.account = dataclasses.replace(
            self.account, bonus=dataclasses.replace(bonus, used_seconds=bonus.used_seconds + seconds)
        )

    def _append_entry(
        self, event_type: str, seconds: int, reason: str, bucket_seq: int, now: datetime,
        operation: str | None, metadata: Mapping[str, Any],
    ) -> None:
        event_seq = self.account.last_event_seq + 1
        self.account = dataclasses.replace(self.account, last_event_seq=event_seq)
        self.new_entries.append(
            LedgerEntry(
                account_id=self.account.account_id, event_seq=event_seq, type=event_type, seconds=seconds,
                reason=reason, bucket_seq=bucket_seq, occurred_at=now, operation=operation,
                metadata=MappingProxyType(dict(metadata)),
            )
        )

    def assert_ledger_matches_buckets(self) -> None:
        """The new entries explain every change to the buckets, second for second."""
        delta_by_bucket: dict[int, int] = {}
        for entry in self.new_entries:
            delta_by_bucket[entry.bucket_seq] = delta_by_bucket.get(entry.bucket_seq, 0) + entry.seconds
        for bucket_seq, bucket in self._buckets.items():
            before = self._remaining_before.get(bucket_seq, 0)
            assert bucket.remaining_seconds - before == delta_by_bucket.get(bucket_seq, 0), bucket_seq
            assert 0 <= bucket.held_seconds <= bucket.remaining_seconds
