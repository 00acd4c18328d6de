"""Package payments on the in-memory storage: purchase, webhook credits exactly once, and what a
verified event may not do."""

from __future__ import annotations

import dataclasses
import json
import random
from datetime import timedelta

import pytest

from billing.domain.errors import AccountNotFound, InvalidArgument, PaymentsNotConfigured, SubscriptionConflict
from billing.service.accounts import create_account
from billing.service.balance import get_balance
from billing.service.history import list_events
from billing.service.purchases import purchase_package, subscription_checkout
from billing.service.webhooks import handle_webhook
from tests.support import stripe_events as se
from tests.support.fake_payments import VALID_SIGNATURE
from tests.unit.paying_fixtures import (  # noqa: F401 - fixtures
    START, USER, account, clock, database, deliver, deps, ledger_ok, paid_seconds, provider, unix,
)


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
