"""Fixtures and helpers of the payment use-case tests: the use cases on memory with a fake payment
provider, at a fixed instant, alice's account and her deliveries. Imported by name into the test
modules that use them."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timezone

import pytest

from billing.adapters.catalog_file import load_catalog
from billing.adapters.clock import FixedClock
from billing.settings import DEFAULT_CATALOG_PATH
from billing.service.accounts import create_account
from billing.service.webhooks import handle_webhook
from tests.support import stripe_events as se
from tests.support.fake_payments import VALID_SIGNATURE, FakePaymentProvider
from tests.support.fake_storage import FakeDatabase, fake_dependencies

START = datetime(2026, 3, 14, 9, 30, tzinfo=timezone.utc)


@pytest.fixture
def clock():
    return FixedClock(START)


@pytest.fixture
def provider():
    return FakePaymentProvider()


@pytest.fixture
def database():
    return FakeDatabase()


@pytest.fixture
def deps(clock, database, provider):
    return dataclasses.replace(fake_dependencies(load_catalog(DEFAULT_CATALOG_PATH)[0], clock, database), payments=provider)


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


async def subscribe(deps, provider, start, end, plan="pro", invoice="in_1", pi="pi_s1"):
    provider.set_subscription("sub_1", USER, plan, "active", start, end)
    await deliver(deps, se.event("customer.subscription.created", se.subscription("sub_1", USER, plan, "active", unix(start), unix(end)), unix(start)))
    return await deliver(deps, se.invoice_paid(invoice, pi, "sub_1", USER, plan, unix(start), unix(end), se.USD_PRICES[plan], unix(start), "subscription_create"))
