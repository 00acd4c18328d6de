"""A paid invoice of a period that has not begun is credited only once it has (the provider retries it)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from billing.domain.errors import PaymentNotCredited
from tests.support import stripe_events as se
from tests.unit.paying_fixtures import START, clock, database, deps, provider  # noqa: F401 - fixtures
from tests.unit.paying_fixtures import USER, account, deliver, paid_seconds, subscribe, unix  # noqa: F401

pytestmark = pytest.mark.asyncio


async def test_a_renewal_paid_before_its_period_begins_is_retried_then_credited_once(deps, account, provider, database, clock):
    end = START + timedelta(days=31)
    await subscribe(deps, provider, START, end)  # pro: 1200 minutes a period
    next_period = se.invoice_paid("in_2", "pi_s2", "sub_1", USER, "pro", unix(end), unix(end + timedelta(days=30)),
                                  2999, unix(end))
    clock.set(START + timedelta(days=1))
    with pytest.raises(PaymentNotCredited):
        await deliver(deps, next_period)
    assert paid_seconds(database, "subscription") == 1200 * 60  # one period spendable, not two

    clock.set(end - timedelta(seconds=299))  # within the clocks' tolerance of its start
    assert (await deliver(deps, next_period)).outcome == "processed"
    assert (await deliver(deps, next_period)).outcome == "duplicate"
    credits = [e for e in database.ledger[USER] if e.type == "subscription_credit"]
    assert len(credits) == 2
