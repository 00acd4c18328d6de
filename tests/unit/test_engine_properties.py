"""Property tests: the Wallet engine against a deliberately naive reference model.

Hypothesis draws a plan, a UTC start instant and a sequence of operations that only
moves time forward. Each operation runs on a Wallet rebuilt from the previous step's
account and buckets (one unit of work per step, as the service uses it), and runs the
same operation on `RefModel`: a plain list of buckets and a greedy "pick the bucket the
documented rule says goes first" loop. After every step the two must agree, and the
engine's own invariants must hold.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from billing.domain.buckets import Source
from billing.domain.wallet import BALANCE_SECONDS_MAX, EventType, LedgerEntry
from tests.unit.reference_wallet import midnight_after, month_of
from tests.unit.wallet_simulation import PLANS, UTC, Simulation

# --------------------------------------------------------------------------- strategies

instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2090, 12, 31), timezones=st.just(UTC)
)
small_seconds = st.integers(1, 3_000)
seconds = st.one_of(small_seconds, st.integers(1, 60_000))
credit_seconds = st.one_of(
    small_seconds, small_seconds, st.integers(1, 60_000), st.integers(1, 60_000), st.integers(1, 60_000),
    st.integers(1, 60_000), st.integers(1, 60_000),
    st.integers(BALANCE_SECONDS_MAX - 2_000, BALANCE_SECONDS_MAX + 1),  # near the ceiling
)
paid_sources = st.sampled_from([Source.PACKAGE, Source.SUBSCRIPTION, Source.ROLLOVER, Source.WELCOME, Source.GIFT])
within_a_day = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=1) - timedelta(microseconds=1))

operations = st.one_of(
    st.tuples(st.just("advance"), st.one_of(
        st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=6)),
        st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3)),
        st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=120)),
    )),
    st.tuples(st.just("midnight"), st.sampled_from([timedelta(0), timedelta(microseconds=1), timedelta(hours=12)])),
    st.tuples(st.just("to_expiry"), st.integers(0, 20), st.sampled_from([-1, 0, 0, 1]).map(lambda us: timedelta(microseconds=us))),
    # shortly before a paid bucket expires: today's bonus then expires after it, yet goes first
    st.tuples(st.just("before_expiry_day"), st.integers(0, 20),
              st.timedeltas(min_value=timedelta(microseconds=1), max_value=timedelta(hours=12)), st.integers(1, 2_000)),
    st.tuples(st.just("daily")),
    st.tuples(st.just("day"), within_a_day, st.one_of(st.none(), st.integers(1, 1_200))),  # None: all the bonus
    st.tuples(st.just("credit"), paid_sources, credit_seconds),
    st.tuples(st.just("consume"), seconds),
    st.tuples(st.just("consume_all"), st.integers(-1, 1)),
    st.tuples(st.just("adjust"), seconds),
    st.tuples(st.just("adjust_all"), st.integers(-1, 1)),
)


def run(sim: Simulation, op: tuple) -> None:
    kind, *args = op
    if kind == "advance":
        sim.advance(args[0])
    elif kind == "midnight":
        sim.to_midnight(args[0])
    elif kind == "to_expiry":
        sim.to_expiry(*args)
    elif kind == "daily":
        sim.grant_daily()
    elif kind == "before_expiry_day":
        sim.to_expiry(args[0], -args[1])
        sim.grant_daily()
        sim.consume(args[2])
    elif kind == "day":  # what a user's first request of a day does: the bonus, then some use
        sim.to_midnight(args[0])
        sim.grant_daily()
        sim.consume(sim.ref.bonus(sim.now) if args[1] is None else args[1])
    elif kind == "credit":
        sim.credit(*args)
    elif kind == "consume":
        sim.consume(args[0])
    elif kind == "consume_all":
        sim.consume(sim.ref.total(sim.now) + args[0])
    elif kind == "adjust":
        sim.adjust(args[0])
    elif kind == "adjust_all":
        sim.adjust(sim.ref.paid(sim.now) + args[0])
    else:  # pragma: no cover
        raise AssertionError(kind)
    sim.check_invariants()


PROPERTY_SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@PROPERTY_SETTINGS
@given(plan_name=st.sampled_from(sorted(PLANS)), start=instants, length=st.integers(0, 64), data=st.data())
def test_wallet_agrees_with_naive_reference_model(plan_name: str, start: datetime, length: int, data) -> None:
    event(f"length: {length // 20 * 20}+ operations")
    sim = Simulation(PLANS[plan_name], start)
    sim.check_invariants()
    for _ in range(length):
        run(sim, data.draw(operations))


@settings(PROPERTY_SETTINGS, max_examples=100)  # each example is one to two months of days
@given(
    plan_name=st.sampled_from(sorted(PLANS)),
    start=instants,
    days=st.lists(st.tuples(within_a_day, st.one_of(st.none(), st.integers(1, 900))), min_size=28, max_size=75),
)
def test_daily_bonus_over_consecutive_days_respects_the_monthly_cap(
    plan_name: str, start: datetime, days: list[tuple[timedelta, int | None]]
) -> None:
    """Every day: touch the wallet (bonus), touch it again later, use some or all of the bonus."""
    plan = PLANS[plan_name]
    cap = plan.monthly_bonus_cap_seconds
    sim = Simulation(plan, start)
    consumed_by_month: Counter = Counter()
    ledger: list[LedgerEntry] = []
    for offset, wanted in days:
        sim.to_midnight(offset)
        month = month_of(sim.now.date())
        cap_left = None if cap is None else cap - consumed_by_month[month]
        offered = plan.daily_bonus_seconds if cap_left is None else min(plan.daily_bonus_seconds, cap_left)

        wallet = sim.open_wallet()
        granted = wallet.grant_daily_bonus_if_due(plan, sim.now)
        assert (granted.granted_seconds if granted else 0) == offered
        later_today = sim.now + (midnight_after(sim.now) - sim.now) / 2
        assert wallet.grant_daily_bonus_if_due(plan, later_today) is None  # once per UTC day
        bonus = wallet.balance(sim.now).totals.bonus_seconds
        assert bonus == offered  # yesterday's bonus expired at midnight
        take = bonus if wanted is None else min(wanted, bonus)
        if take:
            debits = wallet.consume("chat", take, sim.now)
            assert all(d.bucket.source is Source.DAILY for d in debits)
            consumed_by_month[month] += take
        if cap is not None:
            assert consumed_by_month[month] <= cap
        assert wallet.account.bonus.used_in_month_of(sim.now.date()) == consumed_by_month[month]
        wallet.assert_ledger_matches_buckets()
        ledger.extend(wallet.new_entries)
        sim.account, sim.buckets = wallet.account, wallet.buckets
        assert sum(e.seconds for e in ledger) == sum(b.remaining_seconds for b in sim.buckets)
    granted_days = [e.occurred_at.date() for e in ledger if e.type == EventType.DAILY_BONUS]
    assert len(granted_days) == len(set(granted_days))
