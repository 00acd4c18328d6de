"""Properties of the money paths, over random histories: package payments (delivered
several times, in any order), subscription periods paid and closed, refunds of any size in
any order, consumption and time passing. After every step: the ledger equals the buckets,
no bucket is negative, no payment is credited twice, and each period's close keeps the
rollover held within the cap of the plan in force when it closed. Subscription invoices are
refunded too."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections import Counter
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.adapters.catalog_file import load_catalog
from billing.adapters.clock import FixedClock
from billing.domain.buckets import Source
from billing.domain.errors import InsufficientAiTime, PaymentNotCredited
from billing.service.accounts import create_account
from billing.service.balance import get_balance
from billing.service.consume import consume
from billing.service.webhooks import handle_webhook
from billing.settings import DEFAULT_CATALOG_PATH
from tests.support import stripe_events as se
from tests.support.fake_payments import VALID_SIGNATURE, FakePaymentProvider
from tests.support.fake_storage import FakeDatabase, fake_dependencies

UTC = timezone.utc
USER = "prop"
CATALOG = load_catalog(DEFAULT_CATALOG_PATH)[0]
PACKAGES = {p.key: p for p in CATALOG.packages}

steps = st.lists(st.one_of(
    st.tuples(st.just("buy"), st.integers(0, 3), st.sampled_from(sorted(PACKAGES))),
    st.tuples(st.just("redeliver"), st.integers(0, 3)),
    st.tuples(st.just("refund"), st.integers(0, 3), st.integers(1, 100)),  # percent of the price, cumulative
    st.tuples(st.just("period"), st.sampled_from(["starter", "pro", "business"])),
    st.tuples(st.just("refund_invoice"), st.integers(1, 4), st.integers(1, 100)),  # a period's invoice, cumulative
    st.tuples(st.just("consume"), st.integers(1, 40_000)),
    st.tuples(st.just("advance"), st.sampled_from([timedelta(hours=1), timedelta(days=3), timedelta(days=29), timedelta(days=85)])),
    st.tuples(st.just("read"),),
), max_size=30)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=steps)
def test_money_paths_keep_the_ledger_whole(history) -> None:
    asyncio.run(_run(history))


async def _run(history) -> None:
    clock = FixedClock(datetime(2026, 1, 5, 12, 0, tzinfo=UTC))
    database = FakeDatabase()
    deps = dataclasses.replace(fake_dependencies(CATALOG, clock, database), payments=FakePaymentProvider())
    await create_account(deps, USER, "free")
    database.customers[USER] = "cus_test"  # the customer the events name
    delivered: dict[int, list[dict]] = {}
    refunded: Counter[int] = Counter()
    amounts: dict[int, int] = {}
    period_start = clock.now()
    invoices = 0
    invoice_refunded: Counter[int] = Counter()
    invoice_amounts: dict[int, int] = {}
    plan_in_force: str | None = None  # the plan of the newest paid period, as the history says
    closes_checked = [0]  # rollover_created credits already checked

    async def deliver(evt: dict) -> None:
        try:
            await handle_webhook(deps, json.dumps(evt).encode(), VALID_SIGNATURE)
        except PaymentNotCredited:
            pass  # the provider retries it later

    for step in history:
        now = int(clock.now().timestamp())
        match step:
            case ("buy", n, key):
                if n not in delivered:
                    package = PACKAGES[key]
                    amounts[n] = package.prices_cents["USD"]
                    delivered[n] = [
                        se.payment_intent_succeeded(f"pi_{n}", USER, key, package.minutes, amounts[n], now),
                        se.checkout_completed(f"cs_{n}", f"pi_{n}", USER, key, package.minutes, amounts[n], now),
                    ]
                for evt in reversed(delivered[n]):
                    await deliver(evt)
            case ("redeliver", n):
                for evt in delivered.get(n, []):
                    await deliver(evt)
            case ("refund", n, percent):
                if n in amounts:
                    refunded[n] = max(refunded[n], amounts[n] * percent // 100)
                    await deliver(se.charge_refunded(f"ch_{n}", f"pi_{n}", amounts[n], refunded[n], now, user_id=USER))
            case ("refund_invoice", i, percent):
                if i <= invoices:
                    invoice_refunded[i] = max(invoice_refunded[i], invoice_amounts[i] * percent // 100)
                    await deliver(se.charge_refunded(f"ch_in_{i}", f"pi_in_{i}", invoice_amounts[i], invoice_refunded[i], now,
                                                     user_id=USER))
            case ("period", plan):
                invoices += 1
                invoice_amounts[invoices] = CATALOG.plan(plan).prices_cents["USD"]
                start = max(period_start, clock.now())
                end = start + timedelta(days=30)
                period_start = end
                clock.set(start)  # the provider bills a period when it begins, never ahead
                await deliver(se.invoice_paid(f"in_{invoices}", f"pi_in_{invoices}", "sub_1", USER, plan,
                                              int(start.timestamp()), int(end.timestamp()), invoice_amounts[invoices],
                                              int(start.timestamp())))
            case ("consume", seconds):
                try:
                    await consume(deps, USER, "build", seconds, f"c{len(database.ledger[USER])}")
                except InsufficientAiTime:
                    pass
            case ("advance", delta):
                clock.set(clock.now() + delta)
            case ("read",):
                await get_balance(deps, USER)
        # A period that closed during this step closed under the plan in force before it: upkeep runs
        # before the step's own change.
        _check(database, deps, plan_in_force, closes_checked)
        if step[0] == "period":
            plan_in_force = step[1]
            assert database.accounts[USER].plan_key == plan_in_force


def _check(database: FakeDatabase, deps, plan_in_force: str | None, closes_checked: list[int]) -> None:
    assert database.ledger_matches_buckets(USER)
    buckets = database.buckets[USER].values()
    assert all(b.remaining_seconds >= 0 for b in buckets)
    credits = Counter(e.metadata.get("payment_id") for e in database.ledger[USER] if e.type == "package_credit")
    assert all(count == 1 for count in credits.values()), credits
    invoices = Counter(e.metadata.get("invoice_id") for e in database.ledger[USER] if e.type == "subscription_credit")
    assert all(count == 1 for count in invoices.values()), invoices
    for payment in database.payments.values():
        assert payment.refund_target_seconds <= payment.granted_seconds
    # Each period closed under the cap of the plan in force then (a later downgrade may lower the cap
    # below what is held, which is kept, never clawed back): at that close, the rollover held at the
    # period's end plus what it rolled over stays within that cap. Checked on the closes of this step.
    closes = [e for e in database.ledger[USER] if e.type == "rollover_created" and e.metadata.get("leg") != "out"]
    for close in closes[closes_checked[0]:]:
        assert plan_in_force is not None, "a period closed before any was paid"
        cap = CATALOG.plan(plan_in_force).rollover_cap_seconds
        assert close.metadata["cap_seconds"] == cap, (close.metadata, plan_in_force)
        if cap is None:
            continue
        period_end = datetime.fromisoformat(close.metadata["period_end"])
        # Rollovers made up to this close (bucket_seq order), usable at its period's end; what was
        # consumed since only lowers the sum.
        held = sum(b.remaining_seconds for b in buckets
                   if b.source == Source.ROLLOVER and b.bucket_seq <= close.bucket_seq and b.is_usable(period_end))
        assert held <= cap, (held, cap, plan_in_force)
    closes_checked[0] = len(closes)
