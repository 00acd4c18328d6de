"""Payments on the in-memory storage: purchase, webhook credits exactly once, refunds,
subscription periods, rollover and its cap, the rollover warning."""

from __future__ import annotations

import dataclasses
import json
import random
from datetime import datetime, timedelta

import pytest

from billing.domain.errors import (
    AccountNotFound, InvalidArgument, PaymentNotCredited, PaymentsNotConfigured, SubscriptionConflict,
)
from billing.service.accounts import create_account
from billing.service.balance import get_balance
from billing.service.history import list_events
from billing.service.purchases import purchase_package, subscription_checkout
from billing.service.subscriptions import cancel_subscription, change_plan
from billing.service.webhooks import handle_webhook
from tests.support import stripe_events as se
from tests.support.fake_payments import VALID_SIGNATURE
from tests.unit.paying_fixtures import START, clock, database, deps, provider  # noqa: F401 - fixtures

USER = "alice"
WELCOME = 1800


def unix(instant: datetime) -> int:
    return int(instant.timestamp())


@pytest.fixture
async def account(deps, database):
    created = await create_account(deps, USER, "free")
    database.customers[USER] = "cus_test"  # the customer the events name (tests.support.stripe_events)
    return created


async def deliver(deps, evt, signature=VALID_SIGNATURE):
    return await handle_webhook(deps, json.dumps(evt).encode(), signature)


def paid_seconds(database, source):
    return sum(b.remaining_seconds for b in database.buckets[USER].values() if b.source == source)


def ledger_ok(database):
    return database.ledger_matches_buckets(USER)


# --- purchase -------------------------------------------------------------------------------

async def test_purchase_prices_from_the_catalog_and_credits_nothing(deps, account, provider, database):
    result = await purchase_package(deps, USER, "booster", "eur", "k1")
    again = await purchase_package(deps, USER, "booster", "eur", "k1")
    assert result.checkout_url == again.checkout_url and len(provider.checkouts) == 1
    request, success_url, _ = provider.checkouts[0]
    assert request.item.unit_amount_cents == 1899 and request.item.currency == "EUR" and request.item.minutes == 300
    assert "purchased=true" in success_url
    assert result.currency_fallback_from is None
    assert paid_seconds(database, "package") == 0  # paid, not promised
    fallback = await purchase_package(deps, USER, "mini", "JPY", "")
    assert fallback.item.currency == "USD" and fallback.currency_fallback_from == "JPY"


async def test_purchase_refuses_unknown_packages_accounts_and_servers_without_payments(deps, account):
    with pytest.raises(InvalidArgument) as bad:
        await purchase_package(deps, USER, "gigantic", "USD", "")
    assert bad.value.field == "package_key"
    with pytest.raises(AccountNotFound):
        await purchase_package(deps, "nobody", "mini", "USD", "")
    with pytest.raises(PaymentsNotConfigured):
        await purchase_package(dataclasses.replace(deps, payments=None), USER, "mini", "USD", "")


async def test_subscription_checkout_needs_a_paid_plan_and_no_live_subscription(deps, account, database):
    with pytest.raises(InvalidArgument):
        await subscription_checkout(deps, USER, "free", "USD", "")
    result = await subscription_checkout(deps, USER, "pro", "USD", "")
    assert result.item.unit_amount_cents == 2999 and result.item.kind == "subscription"
    database.subscriptions[USER] = "sub_1"
    with pytest.raises(SubscriptionConflict):
        await subscription_checkout(deps, USER, "pro", "USD", "")


# --- package credit, exactly once ------------------------------------------------------------

async def test_a_package_is_credited_once_whichever_events_arrive_in_whatever_order(deps, account, database, clock):
    paid_at = unix(START)
    events = [
        se.payment_intent_succeeded("pi_1", USER, "booster", 300, 1999, paid_at),
        se.checkout_completed("cs_1", "pi_1", USER, "booster", 300, 1999, paid_at),
    ]
    deliveries = events * 3
    random.Random(7).shuffle(deliveries)
    outcomes = [(await deliver(deps, evt)).outcome for evt in deliveries]
    assert outcomes.count("processed") == 2 and outcomes.count("duplicate") == 4
    assert paid_seconds(database, "package") == 300 * 60
    [bucket] = [b for b in database.buckets[USER].values() if b.source == "package"]
    assert bucket.expires_at == START.replace(microsecond=0) + timedelta(days=90)
    page = await list_events(deps, USER, 50, "")
    assert [e.type for e in page.events].count("package_credit") == 1
    assert ledger_ok(database)


async def test_an_unpaid_checkout_credits_nothing(deps, account, database):
    outcome = await deliver(deps, se.checkout_completed("cs_2", "pi_2", USER, "mini", 60, 499, unix(START), payment_status="unpaid"))
    assert outcome.outcome == "ignored"
    assert paid_seconds(database, "package") == 0


async def test_bad_signatures_write_nothing_and_unreadable_events_are_recorded(deps, account, database):
    evt = se.payment_intent_succeeded("pi_3", USER, "mini", 60, 499, unix(START))
    with pytest.raises(InvalidArgument) as bad:
        await deliver(deps, evt, signature="t=1,v1=forged")
    assert bad.value.field == "stripe-signature"
    assert database.webhook_events == {} and paid_seconds(database, "package") == 0
    broken = dict(evt, data={"object": {"id": "pi_3", "metadata": {"purpose": "package"}}})
    with pytest.raises(InvalidArgument) as unreadable:
        await deliver(deps, broken)
    assert unreadable.value.field == "payload"
    assert database.webhook_events[evt["id"]][1] == "malformed"
    with pytest.raises(InvalidArgument):  # a redelivery: answered the same, recorded once
        await deliver(deps, broken)
    with pytest.raises(InvalidArgument):
        await handle_webhook(deps, b"\xff\x00not json", VALID_SIGNATURE)
    assert len(database.webhook_events) == 2 and paid_seconds(database, "package") == 0


async def test_events_for_unknown_customers_are_recorded_not_retried(deps, account, database):
    stranger = se.payment_intent_succeeded("pi_4", "nobody", "mini", 60, 499, unix(START), customer="cus_nobody")
    assert (await deliver(deps, stranger)).outcome == "ignored"
    orphan = se.charge_refunded("ch_9", "pi_9", 499, 499, unix(START), customer="cus_unknown")
    assert (await deliver(deps, orphan)).outcome == "ignored"
    assert {v[1] for v in database.webhook_events.values()} == {"ignored"}


# --- what a verified event may not do (issue 19, item 2) ------------------------------------------

@pytest.mark.parametrize("amount, currency", [(1, "jpy"), (1, "usd"), (498, "usd"), (500, "usd"), (499, "eur"), (499, "xyz")])
async def test_a_payment_of_another_price_or_currency_is_kept_not_credited(deps, account, database, amount, currency):
    paid = se.payment_intent_succeeded("pi_cheap", USER, "mini", 60, amount, unix(START), currency=currency)
    outcome = await deliver(deps, paid)
    assert outcome.outcome == "mismatch"
    assert paid_seconds(database, "package") == 0
    event_type, kept, account_id, detail = database.webhook_events[paid["id"]]
    assert kept == "mismatch" and account_id is None and "mini" in detail


async def test_a_package_not_in_the_catalog_is_kept_whatever_minutes_its_metadata_claims(deps, account, database):
    paid = se.payment_intent_succeeded("pi_gone", USER, "retired", 100000, 499, unix(START))
    assert (await deliver(deps, paid)).outcome == "mismatch"
    assert paid_seconds(database, "package") == 0


async def test_metadata_naming_another_user_credits_nobody(deps, account, database):
    """The customer is what the provider signs; metadata is what somebody wrote."""
    await create_account(deps, "mallory", "free")
    database.customers["mallory"] = "cus_mallory"
    honest = se.payment_intent_succeeded("pi_shared", USER, "mini", 60, 499, unix(START))
    assert (await deliver(deps, honest)).outcome == "processed"
    # The same payment, its metadata edited to name mallory (and her customer): never a second credit.
    edited = se.payment_intent_succeeded("pi_shared", "mallory", "mini", 60, 499, unix(START), customer="cus_mallory")
    assert (await deliver(deps, edited)).outcome == "mismatch"
    # Metadata naming mallory on alice's customer: neither account.
    crossed = se.payment_intent_succeeded("pi_other", "mallory", "mini", 60, 499, unix(START))
    assert (await deliver(deps, crossed)).outcome == "mismatch"
    assert paid_seconds(database, "package") == 60 * 60
    assert not any(b.source == "package" for b in database.buckets["mallory"].values())
    no_customer = se.payment_intent_succeeded("pi_anon", USER, "mini", 60, 499, unix(START), customer=None)
    assert (await deliver(deps, no_customer)).outcome == "mismatch"


async def test_an_invoice_of_another_price_is_kept_and_sets_no_plan(deps, account, provider, database):
    end = START + timedelta(days=31)
    provider.set_subscription("sub_1", USER, "business", "active", START, end)
    cheap = se.invoice_paid("in_cheap", "pi_c", "sub_1", USER, "business", unix(START), unix(end), 1, unix(START),
                            "subscription_create")
    assert (await deliver(deps, cheap)).outcome == "mismatch"
    balance = await get_balance(deps, USER)
    assert balance.account.plan_key == "free" and paid_seconds(database, "subscription") == 0
    proration_over_price = se.invoice_paid("in_up", "pi_u", "sub_1", USER, "business", unix(START), unix(end), 10000,
                                           unix(START), "subscription_update", upgraded_from="pro")
    assert (await deliver(deps, proration_over_price)).outcome == "mismatch"


# --- refunds ------------------------------------------------------------------------------------

async def test_refunds_take_back_the_refunded_share_once_in_any_order(deps, account, database, clock, provider):
    await deliver(deps, se.payment_intent_succeeded("pi_5", USER, "booster", 300, 1999, unix(START)))
    provider.refunds["ch_5"] = [("re_first", 1000), ("re_second", 999)]  # what Stripe lists for the charge
    half = se.charge_refunded("ch_5", "pi_5", 1999, 1000, unix(START), user_id=USER)
    full = se.charge_refunded("ch_5", "pi_5", 1999, 1999, unix(START), user_id=USER)
    await deliver(deps, full)
    await deliver(deps, half)  # late and smaller: already covered by the full refund
    assert paid_seconds(database, "package") == 0
    refunds = [e for e in database.ledger[USER] if e.type == "adjustment" and e.metadata.get("refund_of") == "pi_5"]
    assert sum(e.seconds for e in refunds) == -300 * 60
    # The adjustment names the refund (the one that brought the charge to 1999) and keeps charge and payment.
    assert [(e.metadata["refund_id"], e.metadata["refund_ids"], e.metadata["charge_id"]) for e in refunds] == [
        ("re_second", ["re_first", "re_second"], "ch_5")]
    assert ledger_ok(database)


async def test_a_refund_listed_in_the_payload_is_named_without_asking_the_provider(deps, account, database, provider):
    await deliver(deps, se.payment_intent_succeeded("pi_7", USER, "booster", 300, 1999, unix(START)))
    provider.refunds["ch_7"] = [("re_wrong", 2000)]  # not asked: the payload (an older API version) lists them
    await deliver(deps, se.charge_refunded("ch_7", "pi_7", 1999, 500, unix(START), user_id=USER,
                                           refunds=[("re_quarter", 500)]))
    await deliver(deps, se.charge_refunded("ch_7", "pi_7", 1999, 1500, unix(START) + 5, user_id=USER,
                                           refunds=[("re_quarter", 500), ("re_half", 1000)]))
    named = [e.metadata["refund_id"] for e in database.ledger[USER] if e.metadata.get("refund_of") == "pi_7"]
    assert named == ["re_quarter", "re_half"]
    assert ledger_ok(database)


@pytest.mark.parametrize("lookup_failure", ["refused", "unavailable"])
async def test_a_refund_is_applied_when_its_refunds_cannot_be_listed(deps, account, database, provider, lookup_failure):
    """Stripe refusing the lookup (a restricted key) or being unreachable: the refund still applies."""
    from billing.domain.errors import PaymentProviderRefused
    from billing.service.ports import Unavailable

    async def refused(charge_id: str):
        if lookup_failure == "refused":
            raise PaymentProviderRefused(f"No such charge: {charge_id}")
        raise Unavailable("Stripe: permission denied for refunds")

    provider.refunds_of_charge = refused
    await deliver(deps, se.payment_intent_succeeded("pi_8", USER, "booster", 300, 1999, unix(START)))
    await deliver(deps, se.charge_refunded("ch_8", "pi_8", 1999, 1999, unix(START), user_id=USER))
    refunds = [e for e in database.ledger[USER] if e.metadata.get("refund_of") == "pi_8"]
    assert [(e.seconds, e.metadata["charge_id"], "refund_id" in e.metadata) for e in refunds] == [(-300 * 60, "ch_8", False)]
    assert ledger_ok(database)


async def test_a_refund_after_spending_takes_what_is_left_and_records_the_rest(deps, account, database, clock):
    from billing.service.consume import consume

    await deliver(deps, se.payment_intent_succeeded("pi_6", USER, "mini", 60, 499, unix(START)))
    await consume(deps, USER, "build", 900 + 3000, "spend")  # today's bonus, then 50 of the package's 60 minutes
    await deliver(deps, se.charge_refunded("ch_6", "pi_6", 499, 499, unix(START), user_id=USER))
    assert paid_seconds(database, "package") == 0
    payment = database.payments[(USER, "pi_6")]
    assert payment.refund_removed_seconds == 600 and payment.refund_unrecoverable_seconds == 3000
    balance = await get_balance(deps, USER)
    assert balance.view.totals.total_seconds == WELCOME  # the rest is not clawed back from other buckets
    assert ledger_ok(database)


async def test_a_refund_before_its_payment_is_credited_is_retried_later(deps, account, database):
    refund = se.charge_refunded("ch_7", "pi_7", 499, 499, unix(START), user_id=USER)
    with pytest.raises(PaymentNotCredited):
        await deliver(deps, refund)
    await deliver(deps, se.payment_intent_succeeded("pi_7", USER, "mini", 60, 499, unix(START)))
    assert (await deliver(deps, refund)).outcome == "processed"
    assert paid_seconds(database, "package") == 0


# --- subscriptions, renewal, rollover ---------------------------------------------------------

async def subscribe(deps, provider, start, end, plan="pro", invoice="in_1", pi="pi_s1"):
    provider.set_subscription("sub_1", USER, plan, "active", start, end)
    await deliver(deps, se.event("customer.subscription.created", se.subscription("sub_1", USER, plan, "active", unix(start), unix(end)), unix(start)))
    return await deliver(deps, se.invoice_paid(invoice, pi, "sub_1", USER, plan, unix(start), unix(end), se.USD_PRICES[plan], unix(start), "subscription_create"))


async def test_a_paid_invoice_credits_the_period_and_sets_the_plan(deps, account, provider, database):
    end = START + timedelta(days=31)
    await subscribe(deps, provider, START, end)
    balance = await get_balance(deps, USER)
    assert balance.account.plan_key == "pro" and balance.account.subscription_status == "active"
    assert balance.account.subscription.period_end == end.replace(microsecond=0)
    assert paid_seconds(database, "subscription") == 1200 * 60
    assert database.subscriptions[USER] == "sub_1"
    assert ledger_ok(database)


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
