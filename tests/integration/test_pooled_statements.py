"""Through pgbouncer in transaction mode (Debian 12's 1.18), a client's server-side prepared statement
outlives its transaction on a server connection that other clients then use: psycopg's next execution
of it (it prepares a query after prepare_threshold runs, as `_pg3_0`, `_pg3_1`, ...) may land on a server
connection where that name is another client's statement, and answer with that statement's rows. The
service's connections through a pooler (BILLING_DB_POOLER=transaction) prepare nothing.

The scenario is deterministic: pgbouncer hands out its idle server connections last-in first-out, and a
third client holding one in an open transaction sends the next to the other."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import text

from billing.adapters.db.pooler_sessions import UTC_NAMES, missing_session_defaults
from billing.adapters.db.sqlalchemy_engine import create_engine
from billing.adapters.db.unit_of_work import STATEMENT_TIMEOUT_MS, connection_options, open_pool
from billing.settings import NO_POOLER, TRANSACTION_POOLER, TRANSACTION_POOLER_PREPARED, libpq_url
from tests.support.database import fresh_database
from testkit.pgbouncer import through

MINE = "SELECT 'mine' AS whose, %s::int AS n"
THEIRS = "SELECT 'theirs' AS whose, %s::int AS n"
ROUNDS = 4
PREPARED_AFTER = 6  # runs of one query: past psycopg's default prepare_threshold (5)


def _answers_through(url: str, connect_kwargs: dict) -> list[str]:
    """`mine`'s answers while `theirs` ran on the other server connection: whose statement answered."""
    conninfo = libpq_url(url)
    with psycopg.connect(conninfo, autocommit=True, **connect_kwargs) as mine, \
            psycopg.connect(conninfo, autocommit=True, **connect_kwargs) as theirs, \
            psycopg.connect(conninfo, **connect_kwargs) as holder:
        answers = []
        for _ in range(PREPARED_AFTER):
            mine.execute(MINE, (1,))  # prepared (when it prepares) on the server connection it ran on
        for round_number in range(ROUNDS):
            holder.execute("SELECT 1")  # holds one server connection: `theirs` runs on the other
            for _ in range(PREPARED_AFTER):
                theirs.execute(THEIRS, (2,))
            holder.rollback()
            holder.execute("SELECT 1")  # takes the connection released last: `mine` runs on the other
            try:
                row = mine.execute(MINE, (round_number,)).fetchone()
                answers.append(row[0] if row else "nothing")
            except psycopg.Error as failure:
                answers.append(type(failure).__name__)
            holder.rollback()
        return answers


def test_prepared_statements_through_a_transaction_pooler_answer_with_another_clients_statement(pgbouncer):
    """psycopg's defaults: the hazard BILLING_DB_POOLER is for (and proof this pgbouncer pools by transaction)."""
    answers = _answers_through(pgbouncer.url, {})
    assert "theirs" in answers


@pytest.mark.parametrize("pooler", [TRANSACTION_POOLER])
def test_the_service_connections_through_a_transaction_pooler_prepare_nothing_and_answer_their_own(
    pgbouncer, pooler
):
    options = connection_options(pooler)
    assert options["prepare_threshold"] is None and "options" not in options  # pgbouncer refuses `options`
    assert _answers_through(pgbouncer.url, options) == ["mine"] * ROUNDS


def test_only_a_pooler_that_keeps_prepared_statements_apart_lets_them_on():
    assert "prepare_threshold" not in connection_options(NO_POOLER)
    assert "prepare_threshold" not in connection_options(TRANSACTION_POOLER_PREPARED)  # pgbouncer >= 1.21


async def test_the_pool_and_the_engine_through_the_pooler_never_prepare(pgbouncer):
    pool = await open_pool(pgbouncer.url, size=2, pooler=TRANSACTION_POOLER)
    try:
        async with pool.connection() as connection:
            assert connection.prepare_threshold is None
    finally:
        await pool.close()
    engine = create_engine(pgbouncer.url, pool_size=1, pooler=TRANSACTION_POOLER)
    try:
        async with engine.connect() as connection:
            raw = await connection.get_raw_connection()
            assert raw.driver_connection.prepare_threshold is None
            assert (await connection.execute(text("SELECT 1"))).scalar_one() == 1
    finally:
        await engine.dispose()


async def test_through_the_pooler_sessions_get_the_settings_the_startup_options_would_give(pgbouncer):
    """pgbouncer 1.18 refuses the startup `options`: the database's (or role's) defaults stand for them."""
    pool = await open_pool(pgbouncer.url, size=2, pooler=TRANSACTION_POOLER)
    try:
        async with pool.connection() as connection:
            timezone = (await (await connection.execute("SHOW timezone")).fetchone())[0]
            timeout = (await (await connection.execute("SHOW statement_timeout")).fetchone())[0]
        assert timezone == "UTC" and timeout == f"{STATEMENT_TIMEOUT_MS // 1000}s"
    finally:
        await pool.close()


async def test_a_server_names_the_session_defaults_a_pooled_database_lacks(pgbouncer):
    """A database whose sessions have neither (the service's startup options cannot reach it through pgbouncer)."""
    with fresh_database("billing_pooled_bare") as bare:
        pool = await open_pool(through(bare, pgbouncer.port), size=1, pooler=TRANSACTION_POOLER)
        try:
            missing = await missing_session_defaults(pool)
        finally:
            await pool.close()
    assert [item.split(" ")[0] for item in missing] == ["statement_timeout"] + (
        [] if _server_zone_is_utc(pgbouncer.direct_url) else ["timezone"])
    pool = await open_pool(pgbouncer.url, size=1, pooler=TRANSACTION_POOLER)  # as POOLED_ROLE: its defaults
    try:
        assert await missing_session_defaults(pool) == []
    finally:
        await pool.close()


def _server_zone_is_utc(url: str) -> bool:
    with psycopg.connect(libpq_url(url)) as connection:
        return connection.execute("SELECT current_setting('TimeZone')").fetchone()[0] in UTC_NAMES
