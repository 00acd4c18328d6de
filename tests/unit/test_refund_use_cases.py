"""Refunds on the in-memory storage: the refunded share taken back once, in any order."""

from __future__ import annotations

import pytest

from billing.domain.errors import PaymentNotCredited
from billing.service.balance import get_balance
from tests.support import stripe_events as se
from tests.unit.paying_fixtures import (  # noqa: F401 - fixtures
    START, USER, WELCOME, account, clock, database, deliver, deps, ledger_ok, paid_seconds, provider, unix,
)




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
    [refunded] = [row.payload["data"] for row in database.outbox[USER] if row.type == "refund.applied"]
    assert refunded["payment_id"] == "pi_5" and refunded["removed_seconds"] == 300 * 60
    assert [e["seconds"] for e in refunded["events"]] == [-300 * 60]


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


async def test_a_hold_does_not_shield_purchased_seconds_from_their_refund(deps, account, database):
    """Review of issue 21: buy, hold all of it, refund, release: the refund takes the held seconds."""
    from billing.service.holds import commit_hold, place_hold, release_hold

    before = (await get_balance(deps, USER)).view.totals.total_seconds
    await deliver(deps, se.payment_intent_succeeded("pi_h", USER, "booster", 300, 1999, unix(START)))
    everything = (await get_balance(deps, USER)).view.totals.total_seconds
    await place_hold(deps, USER, "h-all", "build", everything)
    await commit_hold(deps, USER, "h-all", 60, final=False)
    await deliver(deps, se.charge_refunded("ch_h", "pi_h", 1999, 1999, unix(START), user_id=USER))
    payment = database.payments[(USER, "pi_h")]
    assert payment.refund_unrecoverable_seconds == 0  # nothing of it was used: the hold used other seconds first
    released = await release_hold(deps, USER, "h-all")
    assert released.totals.total_seconds == before - 60  # the package is gone, the 60 s used are charged
    assert ledger_ok(database)
    held = database.holds[(USER, "h-all")]
    assert held.state == "settled" and held.committed_seconds == 60
