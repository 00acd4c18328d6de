"""Holds against a reference model: any interleaving of create / extend / commit / release /
expire / consume / grant / refund / time passing keeps every bucket in range, the ledger equal to
the buckets, and every second accounted for: granted == available + held + consumed + expired +
clawed back."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

from hypothesis import event, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from billing.domain import holds
from billing.domain.buckets import Bucket, Source
from billing.domain.errors import HoldExceeded, HoldSettled, InsufficientAiTime, TooManyHolds
from billing.domain.hold import Hold, summary_of
from billing.domain.wallet import Account, EventType, Wallet

UTC = timezone.utc
START = datetime(2026, 3, 14, 22, 0, tzinfo=UTC)
HOLD_IDS = st.sampled_from([f"h{n}" for n in range(6)])


@dataclasses.dataclass
class ModelHold:
    held: int
    committed: int
    open: bool
    expires_at: datetime


class HoldMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = START
        self.account = Account(account_id="a", plan_key="free", subscription_status="inactive", created_at=START)
        self.buckets: dict[int, Bucket] = {}
        self.holds: dict[str, Hold] = {}
        self.ledger_by_bucket: dict[int, int] = {}
        self.model: dict[str, ModelHold] = {}
        self.granted = 0
        self.consumed = 0
        self.clawed_back = 0

    # ---- one change: a wallet loaded as storage would, changed, written back
    def change(self, apply):
        wallet = Wallet(self.account, [b for b in self.buckets.values() if b.remaining_seconds > 0])
        wallet.holds = {h.hold_id: h for h in self.holds.values()}
        wallet.open_holds_loaded = True
        if wallet.account.holds.expiry_due(self.now):
            for hold in holds.expire_due(wallet, self.now):
                self.model[hold.hold_id].open = False
        before = self.snapshot(wallet)
        try:
            result = apply(wallet)
        except (InsufficientAiTime, HoldSettled, HoldExceeded, TooManyHolds):
            assert self.snapshot(wallet) == before, "a refusal changes nothing"
            result = None
        wallet.assert_ledger_matches_buckets()
        for entry in wallet.new_entries:
            self.ledger_by_bucket[entry.bucket_seq] = self.ledger_by_bucket.get(entry.bucket_seq, 0) + entry.seconds
        self.account = wallet.account
        self.buckets.update({b.bucket_seq: b for b in wallet.buckets})
        self.holds.update({hold_id: wallet.holds[hold_id] for hold_id in wallet.changed_hold_ids})
        return result

    @staticmethod
    def snapshot(wallet: Wallet) -> tuple:
        return (wallet.account, sorted(wallet.buckets, key=lambda b: b.bucket_seq), len(wallet.new_entries),
                len(wallet.changed_hold_ids))

    def total(self) -> int:
        return self.change(lambda w: w.balance(self.now).totals.total_seconds)

    # ---- rules
    @rule(seconds=st.integers(1, 600), source=st.sampled_from([Source.GIFT, Source.PACKAGE, Source.DAILY]))
    def grant(self, seconds, source):
        expires_at = {Source.GIFT: None, Source.PACKAGE: self.now + timedelta(hours=1),
                      Source.DAILY: self.now + timedelta(minutes=20)}[source]
        self.change(lambda w: w.credit(source, seconds, expires_at=expires_at, now=self.now,
                                       event_type=EventType.ADJUSTMENT, reason="grant"))
        self.granted += seconds

    @rule(seconds=st.integers(1, 400))
    def consume(self, seconds):
        available = self.total()
        taken = self.change(lambda w: w.consume("build", seconds, self.now))
        assert (taken is not None) == (seconds <= available)
        if taken is not None:
            self.consumed += seconds

    @rule(hold_id=HOLD_IDS, seconds=st.integers(1, 400), ttl=st.sampled_from([5, 600, 3600, 7200]) | st.integers(5, 7200))
    def place(self, hold_id, seconds, ttl):
        if hold_id in self.holds:
            return
        available = self.total()
        placed = self.change(lambda w: holds.place(w, hold_id, "build", seconds, ttl, self.now))
        if len([m for m in self.model.values() if m.open]) >= holds.OPEN_HOLDS_MAX:
            assert placed is None
        assert (placed is not None) == (seconds <= available)
        if placed is not None:
            self.model[hold_id] = ModelHold(seconds, 0, True, self.now + timedelta(seconds=ttl))

    @precondition(lambda self: self.holds)
    @rule(data=st.data(), seconds=st.integers(0, 300), ttl=st.none() | st.integers(5, 7200))
    def extend(self, data, seconds, ttl):
        hold_id = data.draw(st.sampled_from(sorted(self.holds)))
        if seconds == 0 and ttl is None:
            return
        available = self.total()
        model = self.model[hold_id]
        # What it reserved on buckets expired since is given back (expired) by an extension.
        on_expired = sum(p.seconds for p in self.holds[hold_id].parts if self.buckets[p.bucket_seq].is_expired(self.now))
        event(f"extend over expired parts: {on_expired > 0}")
        extended = self.change(lambda w: holds.extend(w, w.holds[hold_id], seconds, ttl, self.now))
        assert (extended is not None) == (model.open and seconds <= available)
        if extended is not None:
            model.held += seconds - on_expired
            if ttl is not None:
                model.expires_at = self.now + timedelta(seconds=ttl)

    @precondition(lambda self: self.holds)
    @rule(data=st.data(), more=st.integers(0, 300), final=st.booleans())
    def commit(self, data, more, final):
        hold_id = data.draw(st.sampled_from(sorted(self.holds)))
        model = self.model[hold_id]
        used = model.committed + more
        committed = self.change(lambda w: holds.commit(w, w.holds[hold_id], used, final, self.now))
        if not model.open:
            assert committed is None or (final and more == 0)
            return
        assert (committed is not None) == (used <= model.held)
        if committed is not None:
            self.consumed += more
            model.committed = used
            model.open = not final

    @precondition(lambda self: self.holds)
    @rule(data=st.data())
    def release(self, data):
        hold_id = data.draw(st.sampled_from(sorted(self.holds)))
        self.change(lambda w: holds.release(w, w.holds[hold_id], self.now))
        self.model[hold_id].open = False

    @precondition(lambda self: any(b.remaining_seconds and not b.is_bonus for b in self.buckets.values()))
    @rule(data=st.data())
    def refund(self, data):
        """A refund takes back a paid bucket's seconds, held ones included (cut from the holds)."""
        seq = data.draw(st.sampled_from(sorted(
            b.bucket_seq for b in self.buckets.values() if b.remaining_seconds and not b.is_bonus)))
        seconds = data.draw(st.integers(1, self.buckets[seq].remaining_seconds))
        before = {h.hold_id: h.held_seconds for h in self.holds.values()}

        def take_back(wallet):
            free = wallet.bucket(seq).free_seconds
            if seconds > free:
                assert holds.surrender(wallet, seq, seconds - free, self.now) == seconds - free
            wallet.take_from_bucket(seq, seconds, EventType.ADJUSTMENT, "Refund", self.now)

        free_before = self.buckets[seq].free_seconds
        self.change(take_back)
        self.clawed_back += seconds
        cut = sum(before[h] - self.holds[h].held_seconds for h in before)
        assert cut == max(0, seconds - free_before)  # holds lose only what the free seconds could not cover
        for hold_id, held in before.items():
            self.model[hold_id].held -= held - self.holds[hold_id].held_seconds

    @rule(minutes=st.sampled_from([1, 10, 30]) | st.integers(1, 120))
    def time_passes(self, minutes):
        self.now += timedelta(minutes=minutes)
        self.change(lambda w: None)  # the next touch settles the holds that fell due
        for model in self.model.values():
            assert not (model.open and model.expires_at <= self.now)

    # ---- what must hold after every step
    @invariant()
    def buckets_in_range_and_ledger_equals_buckets(self):
        for bucket in self.buckets.values():
            assert 0 <= bucket.held_seconds <= bucket.remaining_seconds <= bucket.granted_seconds
            assert self.ledger_by_bucket.get(bucket.bucket_seq, 0) == bucket.remaining_seconds

    @invariant()
    def holds_agree_with_the_model_and_the_buckets(self):
        for hold_id, hold in self.holds.items():
            model = self.model[hold_id]
            assert (hold.held_seconds, hold.committed_seconds, hold.is_open) == (model.held, model.committed, model.open)
        assert sum(h.reserved_seconds for h in self.holds.values()) == sum(b.held_seconds for b in self.buckets.values())
        assert self.account.holds == summary_of(self.holds.values())

    @invariant()
    def every_second_is_accounted_for(self):
        buckets = list(self.buckets.values())
        wallet = Wallet(self.account, [b for b in buckets if b.remaining_seconds > 0])
        totals = wallet.balance(self.now).totals
        expired = sum(b.free_seconds for b in buckets if b.is_expired(self.now))
        assert self.granted == totals.total_seconds + totals.held_seconds + self.consumed + expired + self.clawed_back


TestHolds = HoldMachine.TestCase
TestHolds.settings = settings(max_examples=300, stateful_step_count=50, deadline=None, derandomize=True)
