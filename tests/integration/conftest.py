from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest

from billing.adapters.catalog_file import load_catalog
from billing.adapters.clock import FixedClock
from billing.adapters.db.invariants import find_violations
from billing.adapters.db.sqlalchemy_engine import create_engine
from billing.adapters.db.unit_of_work import PostgresStorage, open_pool
from billing.adapters.db.wallet_batcher import WalletBatcher
from billing.service.dependencies import Dependencies
from billing.service.handlers import message_bus
from billing.settings import DEFAULT_CATALOG_PATH, NO_POOLER, TRANSACTION_POOLER
from tests.support.database import fresh_database
from tests.support.defaults import CHECKOUT_PAGES
from testkit.pgbouncer import skip_unless_installed, running_pgbouncer


# The money and concurrency suites run twice: on PostgreSQL itself, and through pgbouncer in transaction
# mode with BILLING_DB_POOLER=transaction's connections (their pool and engine through it; LISTEN, the
# notifier and the tests' own admin connections on the database directly, as the server does).
THROUGH_POOLER = ("test_consume", "test_group_commit", "test_payments", "test_balance_fan_out")
DIRECT, PGBOUNCER = "direct", "pgbouncer"


def pytest_generate_tests(metafunc):
    if "database_route" in metafunc.fixturenames and metafunc.module.__name__.rsplit(".", 1)[-1] in THROUGH_POOLER:
        metafunc.parametrize("database_route", [DIRECT, PGBOUNCER], indirect=True, scope="session")


@pytest.fixture(scope="session")
def database_url():
    with fresh_database("billing_it") as url:
        yield url


@pytest.fixture(scope="session")
def database_route(request) -> str:
    """How the pool and the engine reach the database: DIRECT, or through PGBOUNCER (THROUGH_POOLER)."""
    return getattr(request, "param", DIRECT)


@pytest.fixture(scope="session")
def pgbouncer(database_url):
    """pgbouncer (transaction mode) in front of the suite's database; its URL logs in as a role whose defaults
    are the settings the service's startup options would give (pgbouncer refuses them)."""
    skip_unless_installed()
    with running_pgbouncer(database_url) as bouncer:
        yield bouncer


@pytest.fixture(scope="session")
def routed_url(request, database_route, database_url) -> tuple[str, str]:
    """(url, BILLING_DB_POOLER) of the route: the database itself, or pgbouncer's."""
    if database_route == PGBOUNCER:
        return request.getfixturevalue("pgbouncer").url, TRANSACTION_POOLER
    return database_url, NO_POOLER


@pytest.fixture(scope="session")
async def engine(routed_url):
    url, pooler = routed_url
    engine = create_engine(url, pooler=pooler)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def pool(routed_url):
    url, pooler = routed_url
    pool = await open_pool(url, size=8, pooler=pooler)
    yield pool
    await pool.close()


@pytest.fixture
def clock():
    return FixedClock(datetime(2026, 3, 14, 9, 30, tzinfo=timezone.utc))


@pytest.fixture(params=["group_commit", "one_by_one"])
async def deps(request, pool, clock):
    """Every use case runs both ways: with the batcher (as the server does) and without it."""
    catalog, _ = load_catalog(DEFAULT_CATALOG_PATH)
    batcher = WalletBatcher(pool) if request.param == "group_commit" else None
    yield Dependencies(storage=PostgresStorage(pool, batcher), catalog=catalog, clock=clock, bus=message_bus(),
                       checkout_pages=CHECKOUT_PAGES)
    if batcher is not None:
        await batcher.close()


@pytest.fixture
def user_id():
    return f"user-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def assert_ledger_balanced(engine):
    async def check(account_id: str | None = None):
        async with engine.connect() as connection:
            assert await find_violations(connection, account_id) == []

    return check


# --- helpers shared by the integration tests -------------------------------------------------

from datetime import timedelta  # noqa: E402

from sqlalchemy import func, select  # noqa: E402

from billing.adapters.db.tables import buckets as buckets_table, ledger_events  # noqa: E402
from billing.domain.buckets import Source  # noqa: E402
from billing.domain.wallet import EventType  # noqa: E402
from billing.service.accounts import create_account  # noqa: E402
from billing.service.wallet_change import WalletChange, change_wallet  # noqa: E402


@pytest.fixture
def advance(clock):
    """advance(**timedelta_kwargs): moves the fixed clock forward."""

    def move(**delta):
        clock.set(clock.now() + timedelta(**delta))
        return clock.now()

    return move


@pytest.fixture
async def account(deps, user_id):
    """A fresh free-plan account for user_id (welcome 30 min + today's 15 min daily bonus)."""
    return await create_account(deps, user_id, "free")


@pytest.fixture
def ledger_rows(engine):
    """await ledger_rows(account_id) -> number of ledger events of the account."""

    async def count(account_id: str) -> int:
        async with engine.connect() as connection:
            query = select(func.count()).select_from(ledger_events).where(ledger_events.c.account_id == account_id)
            return (await connection.execute(query)).scalar_one()

    return count


@pytest.fixture
def bucket_rows(engine):
    """await bucket_rows(account_id) -> every bucket row of the account (expired and empty included)."""

    async def rows(account_id: str):
        async with engine.connect() as connection:
            query = select(buckets_table).where(buckets_table.c.account_id == account_id).order_by(
                buckets_table.c.bucket_seq
            )
            return (await connection.execute(query)).all()

    return rows


@pytest.fixture
def seed_bucket(deps):
    """await seed_bucket(account_id, source, seconds, expires_at): credits a bucket through the aggregate,
    as a purchase or renewal would (the service has no use case for those yet)."""

    async def seed(account_id: str, source: Source, seconds: int, expires_at):
        event_type = {
            Source.PACKAGE: EventType.PACKAGE_CREDIT,
            Source.SUBSCRIPTION: EventType.SUBSCRIPTION_CREDIT,
            Source.ROLLOVER: EventType.ROLLOVER_CREATED,
        }.get(source, EventType.ADJUSTMENT)

        def credit(wallet, now):
            return wallet.credit(
                source, seconds, expires_at=expires_at, now=now, event_type=event_type, reason=f"seeded {source}"
            )

        return await change_wallet(deps, WalletChange(account_id, credit, repeatable=True))

    return seed


@pytest.fixture
async def customer(deps, user_id, account):
    """The account's customer at the provider, which the events name (the account comes from it)."""
    customer_id = f"cus_{user_id}"
    async with deps.storage.transaction() as uow:
        await uow.payment_profiles.add_customer(user_id, customer_id, deps.clock.now())
        await uow.commit()
    return customer_id
