from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest

from billing.adapters.catalog_file import load_catalog
from billing.adapters.clock import FixedClock
from billing.adapters.db.invariants import find_violations
from billing.adapters.db.unit_of_work import UnitOfWorkFactory, create_engine
from billing.service.dependencies import Dependencies
from tests.support.database import fresh_database


@pytest.fixture(scope="session")
def database_url():
    with fresh_database("billing_it") as url:
        yield url


@pytest.fixture(scope="session")
async def engine(database_url):
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def clock():
    return FixedClock(datetime(2026, 3, 14, 9, 30, tzinfo=timezone.utc))


@pytest.fixture
def deps(engine, clock):
    catalog, _ = load_catalog()
    return Dependencies(unit_of_work=UnitOfWorkFactory(engine), catalog=catalog, clock=clock)


@pytest.fixture
def user_id():
    return f"user-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def assert_ledger_balanced(engine):
    async def check(account_id: str | None = None):
        async with engine.connect() as connection:
            assert await find_violations(connection, account_id) == []

    return check
