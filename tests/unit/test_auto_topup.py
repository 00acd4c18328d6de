"""Auto top-up on the in-memory storage: one attempt per crossing, credit on the webhook,
failures with backoff then off, requires_action reported not retried, stale attempts resent."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest

from billing.domain.auto_topup import ATTEMPTS_MAX, RESEND_PENDING_AFTER, RETRY_DELAYS
from billing.domain.errors import InvalidArgument, PaymentMethodRequired
from billing.service.accounts import create_account
from billing.service.auto_topup import get_auto_topup, set_auto_topup
from billing.service.balance import get_balance
from billing.service.consume import consume
from billing.service.webhooks import handle_webhook
from tests.support import stripe_events as se
from tests.support.fake_payments import VALID_SIGNATURE
from tests.unit.paying_fixtures import START, clock, database, deps, provider  # noqa: F401 - fixtures

USER = "topper"
THRESHOLD = 1200  # the account starts with 2700 s (welcome 1800 + daily 900)


@pytest.fixture
async def enabled(deps, provider):
    await create_account(deps, USER, "free")
    provider.saved_cards.add(f"cus_{USER}")
    return await set_auto_topup(deps, USER, True, THRESHOLD, "mini", "EUR")


async def spend(deps, seconds, key):
    result = await consume(deps, USER, "build", seconds, key)
    await deps.background.drain()
    return result


def notices(database):
    return [e for e in database.ledger[USER] if e.type == "auto_topup_triggered"]


async def test_enabling_needs_a_saved_card_and_a_valid_setting(deps, provider):
    await create_account(deps, USER, "free")
    with pytest.raises(PaymentMethodRequired):
        await set_auto_topup(deps, USER, True, THRESHOLD, "mini", "EUR")
    with pytest.raises(InvalidArgument):
        await set_auto_topup(deps, USER, True, 0, "mini", "EUR")
    with pytest.raises(InvalidArgument):
        await set_auto_topup(deps, USER, False, 10, "huge", "EUR")
    provider.saved_cards.add(f"cus_{USER}")
    status = await set_auto_topup(deps, USER, True, THRESHOLD, "mini", "eur")
    assert status.setting.enabled and status.setting.currency == "EUR"
    assert (await get_auto_topup(deps, USER)).setting == status.setting


async def test_one_attempt_per_crossing_and_the_webhook_credit_ends_it(deps, enabled, provider, database, clock):
    await spend(deps, 1000, "a")  # 1700 left: above the threshold
    assert provider.charge_calls == 0
    await spend(deps, 600, "b")  # 1100 left: under it
    assert provider.charge_calls == 1 and list(provider.charges) == [(USER, 1)]
    await spend(deps, 100, "c")
    await spend(deps, 100, "d")
    assert provider.charge_calls == 1  # pending: nothing more
    assert len(notices(database)) == 1 and notices(database)[0].metadata["topup_seq"] == 1
    balance = await get_balance(deps, USER)
    assert balance.account.auto_topup.pending
    paid = se.payment_intent_succeeded(f"pi_topup_{USER}_1", USER, "mini", 60, 479, int(clock.now().timestamp()), "eur",
                                       customer=f"cus_{USER}")
    paid["data"]["object"]["metadata"]["topup_seq"] = "1"
    await handle_webhook(deps, json.dumps(paid).encode(), VALID_SIGNATURE)
    balance = await get_balance(deps, USER)
    assert not balance.account.auto_topup.pending and balance.view.totals.total_seconds == 900 + 3600
    announced = [row.type for row in database.outbox[USER]]
    assert announced.count("topup.succeeded") == 1
    await spend(deps, 3700, "e")  # under the threshold again: the next attempt
    assert list(provider.charges) == [(USER, 1), (USER, 2)]
    assert database.ledger_matches_buckets(USER)


async def test_concurrent_consumes_decide_once(deps, enabled, provider, database):
    await asyncio.gather(*(consume(deps, USER, "build", 30, f"k{i}") for i in range(64)))
    await deps.background.drain()
    assert provider.charge_calls == 1 and len(notices(database)) == 1


async def test_declines_back_off_then_turn_auto_topup_off(deps, enabled, provider, database, clock):
    provider.next_outcomes = ["declined"] * ATTEMPTS_MAX
    await spend(deps, 1600, "a")
    assert provider.charge_calls == 1
    topup = (await get_auto_topup(deps, USER)).setting
    assert topup.failures == 1 and topup.last_failure == "card_declined" and not topup.pending
    await spend(deps, 10, "b")
    assert provider.charge_calls == 1  # backing off
    for n, delay in enumerate(RETRY_DELAYS, start=2):
        clock.set(clock.now() + delay)
        await get_balance(deps, USER)  # a read is a touch too
        await deps.background.drain()
        assert provider.charge_calls == n
    topup = (await get_auto_topup(deps, USER)).setting
    assert not topup.enabled and topup.failures == ATTEMPTS_MAX
    announced = [row.type for row in database.outbox[USER]]
    assert announced.count("topup.failed") == ATTEMPTS_MAX and announced.count("topup.disabled") == 1
    assert notices(database)[-1].metadata.get("disabled") is True
    assert database.ledger_matches_buckets(USER)


async def test_requires_action_is_reported_not_retried_until_saved_again(deps, enabled, provider, clock):
    provider.next_outcomes = ["requires_action"]
    await spend(deps, 1600, "a")
    clock.set(clock.now() + timedelta(hours=12))  # the same UTC day: no new daily bonus lifts the balance
    await get_balance(deps, USER)
    await deps.background.drain()
    status = (await get_balance(deps, USER)).account.auto_topup
    assert provider.charge_calls == 1 and status.last_failure == "requires_action" and status.enabled
    await set_auto_topup(deps, USER, True, THRESHOLD, "mini", "EUR")  # the customer fixed the card
    await get_balance(deps, USER)
    await deps.background.drain()
    assert provider.charge_calls == 2


async def test_an_attempt_lost_to_an_outage_is_sent_again_as_the_same_payment(deps, enabled, provider, clock):
    provider.next_outcomes = ["outage"]
    await spend(deps, 1600, "a")
    assert provider.charges == {} and (await get_auto_topup(deps, USER)).setting.pending
    clock.set(clock.now() + RESEND_PENDING_AFTER)
    await get_balance(deps, USER)
    await deps.background.drain()
    assert list(provider.charges) == [(USER, 1)]  # the same attempt, the same idempotency key


async def test_tick_sends_retries_for_accounts_nobody_touches(deps, enabled, provider, clock):
    from billing.service.idle_upkeep import upkeep_idle_accounts

    provider.next_outcomes = ["declined"]
    await spend(deps, 1600, "a")
    assert await upkeep_idle_accounts(deps) == 0  # backing off
    clock.set(clock.now() + RETRY_DELAYS[0])
    assert await upkeep_idle_accounts(deps) == 1
    await deps.background.drain()
    assert provider.charge_calls == 2
