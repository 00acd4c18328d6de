"""Subscriptions on the in-memory storage: periods paid and closed, rollover and its cap, upgrades,
downgrades, cancellation, the rollover warning, and review regressions."""

from __future__ import annotations

from datetime import timedelta

import pytest

from billing.service.accounts import create_account
from billing.service.balance import get_balance
from billing.service.history import list_events
from billing.service.subscriptions import cancel_subscription, change_plan
from tests.support import stripe_events as se
from tests.unit.paying_fixtures import (  # noqa: F401 - fixtures
    START, USER, account, clock, database, deliver, deps, ledger_ok, paid_seconds, provider, subscribe, unix,
)


async def test_a_paid_invoice_credits_the_period_and_sets_the_plan(deps, account, provider, database):
    end = START + timedelta(days=31)
    await subscribe(deps, provider, START, end)
    balance = await get_balance(deps, USER)
    assert balance.account.plan_key == "pro" and balance.account.subscription_status == "active"
    assert balance.account.subscription.period_end == end.replace(microsecond=0)
    assert paid_seconds(database, "subscription") == 1200 * 60
    assert database.subscriptions[USER] == "sub_1"
    assert ledger_ok(database)
    activated = [row.payload for row in database.outbox[USER] if row.type == "subscription.activated"]
    assert [p["data"]["plan_key"] for p in activated] == ["pro"]


async def test_an_ended_period_rolls_over_up_to_the_cap_on_the_next_touch(deps, account, provider, database, clock):
    end = START + timedelta(days=31)
    await subscribe(deps, provider, START, end, plan="starter")  # 300 min, rollover cap 150 min
    clock.set(end + timedelta(hours=5))
    await get_balance(deps, USER)  # the first touch after the end closes the period
    types = [(e.type, e.seconds) for e in database.ledger[USER] if e.type.startswith("rollover")]
    assert ("rollover_created", 150 * 60) in types and ("rollover_discard", -150 * 60) in types
    assert paid_seconds(database, "rollover") == 150 * 60
    [rollover] = [b for b in database.buckets[USER].values() if b.source == "rollover"]
    assert rollover.expires_at == end.replace(microsecond=0) + timedelta(days=90)  # from the period's end
    visible = [e.type for e in (await list_events(deps, USER, 50, "")).events]
    assert visible.count("rollover_created") == 1  # the transfer's outgoing leg is not shown
    assert ledger_ok(database)
    # The next period's invoice, then its end: the cap counts the rollover still held.
    clock.set(end + timedelta(hours=6))
    await deliver(deps, se.invoice_paid("in_2", "pi_s2", "sub_1", USER, "starter", unix(end), unix(end + timedelta(days=30)), 999, unix(end)))
    clock.set(end + timedelta(days=30, hours=1))
    await get_balance(deps, USER)
    assert paid_seconds(database, "rollover") == 150 * 60  # full already: the whole period is discarded
    assert ledger_ok(database)


@pytest.mark.parametrize("closed_before_the_refund", [True, False])
async def test_a_refund_after_the_period_rolled_over_takes_back_the_rollover_too(
    deps, account, provider, database, clock, closed_before_the_refund
):
    """Issue 19, item 18: the refunded minutes were spendable from the rollover bucket they became."""
    end = START + timedelta(days=31)
    await subscribe(deps, provider, START, end, plan="starter", pi="pi_s1")  # 300 min, rollover cap 150 min
    clock.set(end + timedelta(hours=5))
    if closed_before_the_refund:
        await get_balance(deps, USER)  # the period closed by a touch; else by the refund's own upkeep
        assert paid_seconds(database, "rollover") == 150 * 60
    await deliver(deps, se.charge_refunded("ch_s1", "pi_s1", 999, 999, unix(clock.now()), user_id=USER))
    assert paid_seconds(database, "rollover") == 0
    payment = database.payments[(USER, "pi_s1")]
    # Of the 300 minutes: 150 discarded over the cap at the close (unrecoverable), 150 taken back.
    assert payment.refund_removed_seconds == 150 * 60 and payment.refund_unrecoverable_seconds == 150 * 60
    refunds = [e for e in database.ledger[USER] if e.type == "adjustment" and e.metadata.get("refund_of") == "pi_s1"]
    assert [e.seconds for e in refunds] == [-150 * 60]
    assert ledger_ok(database)


async def test_a_period_closed_between_the_refunds_read_and_its_change_is_read_again(
    deps, account, provider, database, clock, monkeypatch
):
    """Review of item 18: another replica's touch closes the period after the refund looked for its
    rollover bucket; the refund sees the close (the account's next close moved) and reads again."""
    from billing.service import payment_credits

    end = START + timedelta(days=31)
    await subscribe(deps, provider, START, end, plan="starter", pi="pi_s1")
    clock.set(end + timedelta(hours=5))
    real_read = payment_credits._rollover_of_payment
    reads = []

    async def read_then_close(deps_, account_id, payment_id):
        found = await real_read(deps_, account_id, payment_id)
        if not reads:
            await get_balance(deps, USER)  # the close, after the read
        reads.append(found)
        return found

    monkeypatch.setattr(payment_credits, "_rollover_of_payment", read_then_close)
    await deliver(deps, se.charge_refunded("ch_s1", "pi_s1", 999, 999, unix(clock.now()), user_id=USER))
    assert len(reads) == 2 and reads[0].bucket_seq is None and reads[1].bucket_seq is not None
    assert paid_seconds(database, "rollover") == 0
    assert ledger_ok(database)


async def test_a_partial_refund_after_spending_from_the_rollover_takes_what_is_left(deps, account, provider, database, clock):
    from billing.service.consume import consume

    end = START + timedelta(days=31)
    await subscribe(deps, provider, START, end, plan="starter", pi="pi_s1")
    clock.set(end + timedelta(hours=5))
    await get_balance(deps, USER)
    await consume(deps, USER, "build", 100 * 60, "spend")  # some of it from the rollover (the first to expire)
    left = paid_seconds(database, "rollover")
    assert 0 < left < 150 * 60
    await deliver(deps, se.charge_refunded("ch_s1", "pi_s1", 999, 999, unix(clock.now()), user_id=USER))
    assert paid_seconds(database, "rollover") == 0
    payment = database.payments[(USER, "pi_s1")]
    assert payment.refund_removed_seconds == left and payment.refund_unrecoverable_seconds == 300 * 60 - left
    assert ledger_ok(database)


async def test_an_upgrade_of_a_canceling_subscription_resumes_it_only_when_paid(deps, account, provider, database, clock):
    """Issue 19, item 19: the upgrade's invoice, paid (perhaps long after the request), resumes it."""
    end = START + timedelta(days=31)
    await subscribe(deps, provider, START, end, plan="pro")
    await cancel_subscription(deps, USER, "cancel-1")
    provider.upgrades_pay_later = True  # 3-D Secure: the update stays pending, the cancellation as it was
    await change_plan(deps, USER, "business", "up-1")
    assert provider.resumed == [] and (await get_balance(deps, USER)).account.subscription.cancel_at_period_end
    # Paid a day later. Its invoice keeps the metadata it was finalized with (the old plan's, no
    # upgrade named): it is matched to the recorded upgrade by the price this service created.
    clock.set(START + timedelta(days=1))
    upgrade = se.invoice_paid("in_up", "pi_up", "sub_1", USER, "pro", unix(START), unix(end), 7000,
                              unix(clock.now()), "subscription_update", price_id=provider.plan_prices[-1])
    assert (await deliver(deps, upgrade)).outcome == "processed"
    assert provider.resumed == ["sub_1"]
    account_now = (await get_balance(deps, USER)).account
    assert not account_now.subscription.cancel_at_period_end and account_now.plan_key == "business"
    assert (await deliver(deps, upgrade)).outcome == "duplicate" and provider.resumed == ["sub_1"]


async def test_an_upgrade_credits_the_difference_for_the_part_of_the_period_it_bills(deps, account, provider, database, clock):
    """A late upgrade pays little and gets little; an upgrade invoice this service did not ask for, or
    billing another amount, credits nothing (review of issue 19: free business minutes)."""
    end = START + timedelta(days=30)
    await subscribe(deps, provider, START, end, plan="starter")
    clock.set(START + timedelta(days=27))  # a tenth of the period left
    await change_plan(deps, USER, "business", "late")
    price = provider.plan_prices[-1]
    forged = [
        se.invoice_paid("in_free", "pi_free", "sub_1", USER, "business", unix(clock.now()), unix(end), 0, unix(clock.now()),
                        "subscription_update", upgraded_from="starter", price_id="price_not_ours"),
        se.invoice_paid("in_cheap", "pi_cheap", "sub_1", USER, "business", unix(clock.now()), unix(end), 0,
                        unix(clock.now()), "subscription_update", price_id=price),
    ]
    for invoice in forged:
        assert (await deliver(deps, invoice)).outcome == "mismatch"
    assert (await get_balance(deps, USER)).account.plan_key == "starter"
    right = se.invoice_paid("in_late", "pi_late", "sub_1", USER, "business", unix(clock.now()), unix(end), 900,
                            unix(clock.now()), "subscription_update", price_id=price)  # (9999 - 999) / 10
    assert (await deliver(deps, right)).outcome == "processed"
    assert (await get_balance(deps, USER)).account.plan_key == "business"
    upgrade_credit = [e for e in database.ledger[USER] if e.metadata.get("invoice_id") == "in_late"]
    assert [e.seconds for e in upgrade_credit] == [(6000 - 300) * 60 // 10]
    assert ledger_ok(database)


async def test_a_recorded_upgrade_is_credited_by_one_invoice_only(deps, account, provider, database, clock):
    """Review: the item moved down and back up to the recorded price makes a second invoice of it."""
    end = START + timedelta(days=30)
    await subscribe(deps, provider, START, end, plan="starter")
    clock.set(START + timedelta(days=15))
    await change_plan(deps, USER, "business", "up")
    price = provider.plan_prices[-1]
    for n, outcome in ((1, "processed"), (2, "mismatch")):
        invoice = se.invoice_paid(f"in_up{n}", f"pi_up{n}", "sub_1", USER, "business", unix(clock.now()), unix(end), 4500,
                                  unix(clock.now()), "subscription_update", price_id=price)
        assert (await deliver(deps, invoice)).outcome == outcome
    assert [e.seconds for e in database.ledger[USER] if e.type == "subscription_credit"] == [300 * 60, (6000 - 300) * 30]
    assert ledger_ok(database)


async def test_an_upgrade_after_a_scheduled_downgrade_is_prorated_from_the_price_stripe_bills(
    deps, account, provider, database, clock
):
    """Review: on pro with a downgrade to starter scheduled, the item is at starter's price; Stripe
    bills business - starter, and the minutes follow what was billed."""
    end = START + timedelta(days=30)
    await subscribe(deps, provider, START, end, plan="pro")
    provider.set_subscription("sub_1", USER, "pro", "active", START, end, unit_amount_cents=2999)
    await change_plan(deps, USER, "starter", "down")
    clock.set(START + timedelta(days=15))
    await change_plan(deps, USER, "business", "up")
    invoice = se.invoice_paid("in_up", "pi_up", "sub_1", USER, "business", unix(clock.now()), unix(end), 4500,
                              unix(clock.now()), "subscription_update", price_id=provider.plan_prices[-1])
    assert (await deliver(deps, invoice)).outcome == "processed"
    assert (await get_balance(deps, USER)).account.plan_key == "business"
    assert [e.seconds for e in database.ledger[USER] if e.metadata.get("invoice_id") == "in_up"] == [(6000 - 300) * 30]


async def test_an_upgrade_in_the_periods_last_minutes_is_found_by_its_zero_line(deps, account, provider, database, clock):
    end = START + timedelta(days=30)
    await subscribe(deps, provider, START, end, plan="starter")
    clock.set(end - timedelta(minutes=2))
    await change_plan(deps, USER, "pro", "late-up")
    invoice = se.invoice_paid("in_0", "pi_0", "sub_1", USER, "pro", unix(clock.now()), unix(end), 0,
                              unix(clock.now()), "subscription_update", price_id=provider.plan_prices[-1])
    assert (await deliver(deps, invoice)).outcome == "processed"
    assert (await get_balance(deps, USER)).account.plan_key == "pro"


async def test_an_expired_pending_update_is_read_back_from_the_provider(deps, account, provider, database, clock):
    end = START + timedelta(days=31)
    await subscribe(deps, provider, START, end, plan="pro")
    provider.set_subscription("sub_1", USER, "pro", "active", START, end, cancel_at_period_end=True)
    expired = se.event("customer.subscription.pending_update_expired",
                       se.subscription("sub_1", USER, "pro", "active", unix(START), unix(end), cancel_at_period_end=True),
                       unix(START))
    assert (await deliver(deps, expired)).outcome == "processed"
    account_now = (await get_balance(deps, USER)).account
    assert account_now.plan_key == "pro" and account_now.subscription.cancel_at_period_end


async def test_a_complimentary_period_has_an_end_shown_and_then_the_account_is_free(deps, database, clock):
    """Issue 19, item 21: an admin's CreateAccount on a paid plan is one month, shown as ending."""
    await create_account(deps, "gifted", "starter")  # 300 min, rollover cap 150 min
    account_now = (await get_balance(deps, "gifted")).account
    end = START + timedelta(days=31)  # one calendar month from 14 March
    assert account_now.plan_key == "starter" and account_now.subscription_status == "active"
    subscription = account_now.subscription
    assert subscription.period_end == end and subscription.cancel_at_period_end and subscription.pending_plan_key == "free"
    clock.set(end - timedelta(seconds=1))
    assert (await get_balance(deps, "gifted")).account.plan_key == "starter"
    clock.set(end + timedelta(hours=1))
    after = await get_balance(deps, "gifted")
    assert (after.account.plan_key, after.account.subscription_status) == ("free", "inactive")
    assert after.account.subscription.period_end is None and not after.account.subscription.cancel_at_period_end
    rollover = [b for b in database.buckets["gifted"].values() if b.source == "rollover"]
    assert [b.remaining_seconds for b in rollover] == [150 * 60]  # closed under the plan it was given
    assert database.ledger_matches_buckets("gifted")


async def test_the_history_alone_closes_an_ended_period(deps, account, provider, database, clock):
    end = START + timedelta(days=31)
    await subscribe(deps, provider, START, end, plan="starter")
    clock.set(end + timedelta(hours=5))
    visible = [e.type for e in (await list_events(deps, USER, 50, "")).events]  # nothing else touched it
    assert "rollover_created" in visible
    assert paid_seconds(database, "rollover") == 150 * 60
    assert ledger_ok(database)


async def test_rollover_warns_once_a_week_before_it_expires(deps, account, provider, database, clock):
    end = START + timedelta(days=31)
    await subscribe(deps, provider, START, end, plan="starter")
    clock.set(end + timedelta(hours=1))
    await get_balance(deps, USER)
    clock.set(end + timedelta(days=84))
    await get_balance(deps, USER)
    await get_balance(deps, USER)
    warnings = [e for e in database.ledger[USER] if e.type == "rollover_discard_pending"]
    assert len(warnings) == 1 and warnings[0].seconds == 0 and warnings[0].metadata["seconds_at_risk"] == 150 * 60
    assert ledger_ok(database)


async def test_cancel_at_period_end_keeps_the_minutes_then_the_account_is_free(deps, account, provider, database, clock):
    end = START + timedelta(days=31)
    await subscribe(deps, provider, START, end)
    status = await cancel_subscription(deps, USER, "c1")
    assert status.cancel_at_period_end and status.plan_key == "pro"
    assert paid_seconds(database, "subscription") == 1200 * 60
    clock.set(end + timedelta(minutes=1))
    provider.set_subscription("sub_1", USER, "pro", "canceled", START, end)
    await deliver(deps, se.event("customer.subscription.deleted", se.subscription("sub_1", USER, "pro", "canceled", unix(START), unix(end)), unix(end)))
    balance = await get_balance(deps, USER)
    assert balance.account.plan_key == "free" and balance.account.subscription_status == "canceled"
    assert database.subscriptions[USER] is None
    # The ended period rolled over under the plan it was paid for (pro's cap: 600 min), whenever
    # the first touch after its end came; then the account is free.
    assert paid_seconds(database, "rollover") == 600 * 60
    assert ledger_ok(database)
    announced = [row.type for row in database.outbox[USER]]
    assert announced.count("subscription.canceled") == 2  # scheduled (at_period_end), then ended
    assert [row.payload["data"]["at_period_end"] for row in database.outbox[USER]
            if row.type == "subscription.canceled"] == [True, False]


async def test_upgrade_now_and_downgrade_at_period_end(deps, account, provider, database, clock):
    end = START + timedelta(days=31)
    await subscribe(deps, provider, START, end, plan="starter")
    await change_plan(deps, USER, "pro", "up")
    assert provider.plan_changes[-1] == ("starter", "pro", True)
    await deliver(deps, se.invoice_paid("in_up", "pi_up", "sub_1", USER, "pro", unix(START), unix(end), 2000, unix(START),
                                        "subscription_update", upgraded_from="starter", price_id=provider.plan_prices[-1]))
    balance = await get_balance(deps, USER)
    assert balance.account.plan_key == "pro"
    assert paid_seconds(database, "subscription") == 1200 * 60  # 300 + the 900 difference
    changed = [row.payload["data"] for row in database.outbox[USER] if row.type == "subscription.changed"]
    assert [(d["previous_plan_key"], d["plan_key"]) for d in changed] == [("starter", "pro")]
    status = await change_plan(deps, USER, "starter", "down")
    assert provider.plan_changes[-1] == ("pro", "starter", False)
    assert status.plan_key == "pro" and status.pending_plan_key == "starter"
    assert ledger_ok(database)


async def test_a_failed_renewal_marks_the_account_past_due(deps, account, provider, database):
    end = START + timedelta(days=31)
    await subscribe(deps, provider, START, end)
    provider.set_subscription("sub_1", USER, "pro", "past_due", START, end)
    invoice = se.invoice_paid("in_f", "pi_f", "sub_1", USER, "pro", unix(START), unix(end), 2999, unix(START))
    await deliver(deps, se.event("invoice.payment_failed", invoice["data"]["object"], unix(START)))
    assert (await get_balance(deps, USER)).account.subscription_status == "past_due"
    assert [row.type for row in database.outbox[USER]].count("subscription.past_due") == 1


async def test_tick_closes_periods_and_warns_for_accounts_nobody_touches(deps, account, provider, database, clock):
    from billing.service.idle_upkeep import upkeep_idle_accounts

    end = START + timedelta(days=31)
    await subscribe(deps, provider, START, end, plan="starter")
    assert await upkeep_idle_accounts(deps) == 0
    clock.set(end + timedelta(hours=1))
    assert await upkeep_idle_accounts(deps, batch=1) == 1
    assert paid_seconds(database, "rollover") == 150 * 60
    assert await upkeep_idle_accounts(deps) == 0  # nothing left to do
    clock.set(end + timedelta(days=84))
    assert await upkeep_idle_accounts(deps) == 1
    assert [e.type for e in database.ledger[USER]].count("rollover_discard_pending") == 1
    assert ledger_ok(database)


# --- review regressions (issue 11) ---------------------------------------------------------------

async def test_an_invoice_paid_after_the_subscription_ended_does_not_revive_the_plan(deps, account, provider, database, clock):
    end = START + timedelta(days=31)
    await subscribe(deps, provider, START, end)
    provider.set_subscription("sub_1", USER, "pro", "canceled", START, end)
    await deliver(deps, se.event("customer.subscription.deleted", se.subscription("sub_1", USER, "pro", "canceled", unix(START), unix(end)), unix(START)))
    await deliver(deps, se.invoice_paid("in_late", "pi_late", "sub_1", USER, "pro", unix(START), unix(end), 2999, unix(START)))
    balance = await get_balance(deps, USER)
    assert (balance.account.plan_key, balance.account.subscription_status) == ("free", "canceled")


async def test_a_refund_of_a_period_credited_under_its_invoice_is_found_through_the_provider(deps, account, provider, database):
    end = START + timedelta(days=31)
    provider.set_subscription("sub_1", USER, "pro", "active", START, end)
    invoice = se.invoice_paid("in_x", "pi_x", "sub_1", USER, "pro", unix(START), unix(end), 2999, unix(START), "subscription_create")
    del invoice["data"]["object"]["payments"]  # Stripe sends it only when asked for
    assert (await deliver(deps, invoice)).outcome == "processed"
    assert paid_seconds(database, "subscription") == 1200 * 60
    provider.invoice_payments["pi_x"] = "in_x"
    refund = se.charge_refunded("ch_x", "pi_x", 2999, 2999, unix(START), user_id=USER)
    assert (await deliver(deps, refund)).outcome == "processed"
    assert paid_seconds(database, "subscription") == 0
    assert ledger_ok(database)


async def test_going_back_to_the_paid_plan_after_a_downgrade_is_not_an_upgrade(deps, account, provider):
    end = START + timedelta(days=31)
    await subscribe(deps, provider, START, end)
    await change_plan(deps, USER, "starter", "down")
    status = await change_plan(deps, USER, "pro", "back")
    assert provider.plan_changes[-1] == ("starter", "pro", False)  # the price restored, nothing invoiced now
    assert status.plan_key == "pro" and status.pending_plan_key is None


async def test_a_late_event_of_an_older_subscription_changes_nothing(deps, account, provider, database, clock):
    end = START + timedelta(days=31)
    await subscribe(deps, provider, START, end)
    database.subscriptions[USER] = "sub_2"  # the account moved on to another subscription
    provider.set_subscription("sub_1", USER, "pro", "canceled", START, end)
    await deliver(deps, se.event("customer.subscription.deleted", se.subscription("sub_1", USER, "pro", "canceled", unix(START), unix(end)), unix(START)))
    balance = await get_balance(deps, USER)
    assert (balance.account.plan_key, balance.account.subscription_status) == ("pro", "active")
