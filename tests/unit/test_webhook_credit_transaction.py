"""A package payment's delivery commits once (docs/decisions.md, "A webhook delivery in one
transaction"): the payment's claim, the credit and the delivery's record together, or none of them."""

from __future__ import annotations

import pytest

from billing.service.accounts import create_account
from billing.service.ports import Unavailable
from tests.support import stripe_events as se
from tests.support.fake_storage import FakeWebhookEvents
from tests.unit.paying_fixtures import (  # noqa: F401 - fixtures
    START, USER, account, clock, database, deliver, deps, ledger_ok, paid_seconds, provider, unix,
)


def mini(pi_id: str, customer: str = "cus_test", user: str = USER) -> dict:
    return se.payment_intent_succeeded(pi_id, user, "mini", 60, 499, unix(START), customer=customer)


async def test_a_credit_its_claim_and_its_record_commit_together_once(deps, account, database):
    paid = mini("pi_1")
    commits = database.commits
    assert (await deliver(deps, paid)).outcome == "processed"
    assert database.commits == commits + 1  # claim, credit and record: one transaction
    assert database.payment_owners["pi_1"] == USER
    assert database.webhook_events[paid["id"]] == ("payment_intent.succeeded", "processed", USER, "credited 3600s")
    # Another event of the same payment: the credit replays (no claim, nothing written) and its
    # record is the one write.
    completed = se.checkout_completed("cs_1", "pi_1", USER, "mini", 60, 499, unix(START))
    commits = database.commits
    assert (await deliver(deps, completed)).outcome == "processed"
    assert database.commits == commits + 1
    assert database.webhook_events[completed["id"]][1:] == ("processed", USER, "credited 3600s (replayed)")
    assert (await deliver(deps, paid)).outcome == "duplicate"
    assert paid_seconds(database, "package") == 3600 and ledger_ok(database)


async def test_a_failure_after_the_credit_leaves_neither_credit_nor_claim_nor_record(deps, account, database, monkeypatch):
    """The record is the last write of the credit's transaction: failing there (the database gone
    between the statements) must take the credit with it, and the redelivery credits once."""
    paid = mini("pi_2")
    record = FakeWebhookEvents.record

    async def crash(self, *args, **kwargs):
        raise Unavailable("injected: the database went away after the credit", kind="database")

    monkeypatch.setattr(FakeWebhookEvents, "record", crash)
    with pytest.raises(Unavailable):
        await deliver(deps, paid)
    assert paid_seconds(database, "package") == 0
    assert "pi_2" not in database.payment_owners and paid["id"] not in database.webhook_events
    assert not any(key.startswith("payment:") for _, key in database.answers)
    monkeypatch.setattr(FakeWebhookEvents, "record", record)
    assert (await deliver(deps, paid)).outcome == "processed"  # the provider's redelivery
    assert paid_seconds(database, "package") == 3600
    assert database.webhook_events[paid["id"]][1] == "processed" and database.payment_owners["pi_2"] == USER
    assert ledger_ok(database)


async def test_a_payment_another_account_owns_rolls_the_credit_back_and_is_recorded_as_a_mismatch(
    deps, account, database
):
    await create_account(deps, "mallory", "free")
    database.customers["mallory"] = "cus_mallory"
    database.payment_owners["pi_3"] = USER  # claimed by alice's credit
    stolen = mini("pi_3", customer="cus_mallory", user="mallory")
    assert (await deliver(deps, stolen)).outcome == "mismatch"
    assert not any(b.source == "package" for b in database.buckets["mallory"].values())
    assert not any(account_id == "mallory" for account_id, _ in database.answers)
    assert database.webhook_events[stolen["id"]][1:3] == ("mismatch", None)
    assert database.payment_owners["pi_3"] == USER
