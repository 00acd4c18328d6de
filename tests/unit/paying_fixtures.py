"""Fixtures of the payment use-case tests: the use cases on memory with a fake payment provider,
at a fixed instant. Imported by name into the test modules that use them."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

import pytest

from billing.adapters.catalog_file import load_catalog
from billing.adapters.clock import FixedClock
from billing.settings import DEFAULT_CATALOG_PATH
from tests.support.fake_payments import FakePaymentProvider
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
