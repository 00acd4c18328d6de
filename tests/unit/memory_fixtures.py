"""Fixtures of the use-case tests on memory (tests/support/fake_storage.py): the catalog's use
cases at a fixed instant, and alice's new free account. Imported by name into the test modules
that use them."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from billing.adapters.catalog_file import load_catalog
from billing.adapters.clock import FixedClock
from billing.service.accounts import create_account
from billing.settings import DEFAULT_CATALOG_PATH
from tests.support.fake_storage import FakeDatabase, fake_dependencies

USER = "alice"
WELCOME = 1800
FREE_DAILY = 900
START_SECONDS = WELCOME + FREE_DAILY  # a new free account: the welcome bonus and today's daily bonus


@pytest.fixture
def clock():
    return FixedClock(datetime(2026, 3, 14, 9, 30, tzinfo=timezone.utc))


@pytest.fixture
def database():
    return FakeDatabase()


@pytest.fixture
def deps(clock, database):
    return fake_dependencies(load_catalog(DEFAULT_CATALOG_PATH)[0], clock, database)


@pytest.fixture
async def account(deps):
    return await create_account(deps, USER, "free")
