"""bench.data: a small generated dataset holds every ledger invariant and the service consumes from it."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from bench import data, explain
from billing.adapters.catalog_file import load_catalog
from billing.adapters.clock import FixedClock
from billing.adapters.db.invariants import find_violations
from billing.adapters.db.sqlalchemy_engine import create_engine
from billing.adapters.db.unit_of_work import PostgresStorage, open_pool
from billing.service.balance import get_balance
from billing.service.consume import consume
from billing.service.dependencies import Dependencies
from billing.settings import DEFAULT_CATALOG_PATH
from tests.support.database import fresh_database

ACCOUNTS = 50
BUCKETS = 10
NOW = datetime(2026, 3, 14, 9, 30, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def dataset_url():
    with fresh_database("billing_bench_data") as url:
        outcome = data.build(url, ACCOUNTS, BUCKETS, now=NOW, sample=10, say=lambda _: None)
        assert outcome.generated and outcome.violations == []
        yield url


def _scalar(url: str, sql: str):
    with psycopg.connect(data.libpq_url(url)) as connection:
        return connection.execute(sql).fetchone()[0]


def test_counts_and_counters(dataset_url):
    assert _scalar(dataset_url, "SELECT count(*) FROM accounts") == ACCOUNTS
    assert _scalar(dataset_url, "SELECT count(*) FROM buckets") == ACCOUNTS * BUCKETS
    assert _scalar(dataset_url, "SELECT count(*) FROM ledger_events") == ACCOUNTS * BUCKETS
    assert _scalar(dataset_url, "SELECT min(account_id::int) || '..' || max(account_id::int) FROM accounts") == "1..50"
    assert _scalar(dataset_url, f"SELECT bool_and(last_bucket_seq = {BUCKETS} AND last_event_seq = {BUCKETS}"
                                " AND plan_key = 'business' AND subscription_status = 'active') FROM accounts")
    assert _scalar(dataset_url, "SELECT string_agg(DISTINCT source, ',' ORDER BY source) FROM buckets") == (
        "gift,package,rollover,subscription,welcome"
    )
    # Expiring buckets stay live for 30-89 days after the generation time.
    soonest, latest = NOW + timedelta(days=30), NOW + timedelta(days=90)
    assert _scalar(dataset_url, "SELECT min(expires_at) FROM buckets") >= soonest
    assert _scalar(dataset_url, "SELECT max(expires_at) FROM buckets") < latest
    assert _scalar(dataset_url, "SELECT count(*) FROM buckets WHERE expires_at IS NULL") == ACCOUNTS * 2


async def test_ledger_invariants_hold(dataset_url):
    engine = create_engine(dataset_url)
    try:
        async with engine.connect() as connection:
            assert await find_violations(connection) == []
    finally:
        await engine.dispose()


def test_a_second_run_reuses_the_dataset_and_force_regenerates(dataset_url):
    again = data.build(dataset_url, ACCOUNTS, BUCKETS, now=NOW, sample=0, say=lambda _: None)
    assert not again.generated and again.generated_at == NOW
    with pytest.raises(SystemExit, match="--force"):
        data.build(dataset_url, ACCOUNTS + 1, BUCKETS, now=NOW, sample=0, say=lambda _: None)
    forced = data.build(dataset_url, ACCOUNTS, BUCKETS, now=NOW, force=True, sample=5, say=lambda _: None)
    assert forced.generated and forced.violations == []
    assert _scalar(dataset_url, "SELECT count(*) FROM bench_dataset") == 1


async def test_the_service_consumes_from_a_generated_account(dataset_url):
    pool = await open_pool(dataset_url, size=2)
    try:
        catalog, _ = load_catalog(DEFAULT_CATALOG_PATH)
        deps = Dependencies(
            storage=PostgresStorage(pool), catalog=catalog, clock=FixedClock(NOW + timedelta(hours=1))
        )
        before = await get_balance(deps, "7")
        assert before.view.totals.total_seconds == BUCKETS * data.DEFAULT_GRANTED_SECONDS
        await consume(deps, "7", "build", 90, f"bench-data-{uuid.uuid4().hex}")
        after = await get_balance(deps, "7")
        assert after.view.totals.total_seconds == before.view.totals.total_seconds - 90
    finally:
        await pool.close()
    engine = create_engine(dataset_url)
    try:
        async with engine.connect() as connection:
            assert await find_violations(connection, "7") == []
    finally:
        await engine.dispose()


async def test_explain_captures_the_service_statements_and_leaves_the_dataset_unchanged(dataset_url):
    def state():
        return [_scalar(dataset_url, f"SELECT count(*) FROM {table}") for table in data.DATA_TABLES] + [
            _scalar(dataset_url, "SELECT sum(remaining_seconds) FROM buckets"),
            _scalar(dataset_url, "SELECT sum(last_event_seq) FROM accounts"),
        ]

    before = state()
    statements = await explain.capture(dataset_url, "12", include_writes=True)
    results = explain.explain_all(dataset_url, statements)
    assert state() == before
    names = [r.name for r in results]
    assert any(n.startswith("GetBalance") for n in names) and any(n.startswith("Consume") for n in names)
    assert any(n.endswith("READ_AND_SAVE_WALLETS") for n in names)  # the statement Consume sends under load
    assert all(r.plan and not r.plan.startswith("(not explained") for r in results)
    markdown = explain.render_markdown(results)
    assert markdown.count("\n## ") == len(results)
