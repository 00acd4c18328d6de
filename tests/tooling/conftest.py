"""Tests of the local tooling (the Stripe stand-in, the demo backend, the dev supervisor, the
embedded PostgreSQL, the bench), apart from the product's. The bench tests that need PostgreSQL
get the integration fixtures on a database of their own."""

from __future__ import annotations

import pytest

from tests.integration.conftest import (  # noqa: F401
    assert_ledger_balanced, clock, database_route, engine, ledger_rows, pgbouncer, pool, routed_url,
)
from tests.support.database import fresh_database


@pytest.fixture(scope="session")
def database_url():
    with fresh_database("billing_tooling") as url:
        yield url
