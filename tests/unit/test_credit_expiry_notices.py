"""credit.expiring and credit.expired: once per bucket, three days ahead and at expiry, by the next
read or change, or by `billing tick` for an idle account (domain/credit_expiry.py)."""

from __future__ import annotations

from datetime import timedelta

from billing.service.balance import get_balance
from billing.service.consume import consume
from billing.service.idle_upkeep import upkeep_idle_accounts
from tests.support import stripe_events as se
from tests.unit.paying_fixtures import (  # noqa: F401 - fixtures
    START, USER, account, clock, database, deliver, deps, provider, unix,
)

BOOSTER_SECONDS = 300 * 60


def outbox(database, *types):
    return [row.payload for row in database.outbox[USER] if row.type in types]


async def test_a_package_is_announced_three_days_before_it_expires_and_when_it_has(deps, account, database, clock):
    await deliver(deps, se.payment_intent_succeeded("pi_x", USER, "booster", 300, 1999, unix(START)))
    expires_at = START + timedelta(days=90)
    clock.set(expires_at - timedelta(days=3, seconds=1))
    await get_balance(deps, USER)
    assert outbox(database, "credit.expiring", "credit.expired") == []
    clock.set(expires_at - timedelta(days=3))
    await get_balance(deps, USER)
    await get_balance(deps, USER)  # once
    [expiring] = outbox(database, "credit.expiring")
    assert expiring["data"]["seconds_at_risk"] == BOOSTER_SECONDS and expiring["data"]["source"] == "package"
    await consume(deps, USER, "build", 600, "some")  # daily bonus and welcome go first: the package keeps its seconds
    clock.set(expires_at + timedelta(hours=5))
    assert await upkeep_idle_accounts(deps) >= 1  # idle: `billing tick` announces it
    [expired] = outbox(database, "credit.expired")
    assert expired["data"]["expired_seconds"] == BOOSTER_SECONDS
    assert expired["data"]["expires_at"] == expires_at.isoformat().replace("+00:00", "Z")
    await get_balance(deps, USER)
    assert len(outbox(database, "credit.expiring", "credit.expired")) == 2
    assert database.accounts[USER].credit_notice_at is None


async def test_a_package_used_up_before_it_expires_is_not_announced_as_expired(deps, account, database, clock):
    await deliver(deps, se.payment_intent_succeeded("pi_y", USER, "booster", 300, 1999, unix(START)))
    total = (await get_balance(deps, USER)).view.totals.total_seconds
    await consume(deps, USER, "build", total, "everything")
    clock.set(START + timedelta(days=91))
    await get_balance(deps, USER)
    assert outbox(database, "credit.expired") == []
