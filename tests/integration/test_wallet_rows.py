"""The wallet read statements' rows, as the database returns them: named as declared, and,
with a window, holding the buckets that expired inside it (renewal needs the subscription
bucket that just ended), which count for nothing and are never consumed."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from psycopg.types.json import Jsonb

from billing.adapters.db import wallet_sql
from billing.adapters.db.wallet_queries import WalletRead, WalletQueries, read_and_save_wallets, read_wallets
from billing.domain.buckets import Source
from billing.domain.errors import InsufficientAiTime
from billing.service.accounts import create_account


@pytest.fixture
async def expired_an_hour_ago(deps, user_id, seed_bucket, advance):
    """Two subscription buckets with seconds left: one expired an hour ago, one 2.5 hours ago."""
    await create_account(deps, user_id, "free")
    now = deps.clock.now()
    ended = await seed_bucket(user_id, Source.SUBSCRIPTION, 600, expires_at=now + timedelta(hours=2))
    older = await seed_bucket(user_id, Source.SUBSCRIPTION, 300, expires_at=now + timedelta(minutes=30))
    advance(hours=3)  # `ended` expired an hour ago, `older` two and a half hours ago
    return ended, older


async def loaded_three_ways(pool, account_id, now, expired_since):
    """The wallet as READ_WALLETS, READ_AND_SAVE_WALLETS and the locking path load it."""
    read = WalletRead(account_id, now, expired_since=expired_since)
    async with pool.connection() as connection:
        [(by_read, _)] = await read_wallets(connection, [read])
        [(by_batch, _)], saved = await read_and_save_wallets(connection, [read], [])
        assert saved == set()
        repository = WalletQueries(connection)
        by_lock, _ = await repository.lock_and_load(account_id, now, expired_since=expired_since)
        by_repository_read, _ = await repository.read(account_id, now, expired_since=expired_since)
        await connection.rollback()
    return [by_read, by_batch, by_lock, by_repository_read]


async def test_a_bucket_expired_inside_the_window_is_loaded_but_not_counted_nor_consumed(
    pool, deps, user_id, expired_an_hour_ago
):
    ended, older = expired_an_hour_ago
    now = deps.clock.now()

    with_window = await loaded_three_ways(pool, user_id, now, expired_since=now - timedelta(hours=2))
    without = await loaded_three_ways(pool, user_id, now, expired_since=None)

    for wallet, plain in zip(with_window, without):
        seqs = {b.bucket_seq for b in wallet.buckets}
        assert ended.bucket_seq in seqs and older.bucket_seq not in seqs
        assert ended.bucket_seq not in {b.bucket_seq for b in plain.buckets}
        assert {b.bucket_seq for b in plain.buckets} == seqs - {ended.bucket_seq}
        assert wallet.balance(now) == plain.balance(now)  # the expired bucket counts for nothing
        total = wallet.balance(now).totals.total_seconds
        wallet.consume("build", total, now)  # everything usable, and nothing of the expired bucket
        assert wallet.bucket(ended.bucket_seq).remaining_seconds == 600
        assert ended.bucket_seq not in {seq for seq, *_ in wallet.changes_of_existing_buckets()}
        with pytest.raises(InsufficientAiTime):
            wallet.consume("build", 1, now)


async def test_the_window_keeps_the_reads_on_the_live_buckets_index(pool, deps, user_id, expired_an_hour_ago):
    now = deps.clock.now()
    requests = Jsonb([{"request": 0, "account_id": user_id, "idempotency_key": "k", "now": now.isoformat(),
                       "expired_since": (now - timedelta(hours=2)).isoformat()}])
    async with pool.connection() as connection:
        await connection.execute("SET LOCAL enable_seqscan = off")  # if the index can serve it, it does
        for sql, params in (
            (wallet_sql.READ_WALLETS, {"requests": requests}),
            (wallet_sql.LIVE_BUCKETS_AND_REPLAY, {
                "account_id": user_id, "now": now, "idempotency_key": "k", "expired_since": now - timedelta(hours=2),
            }),
        ):
            plan = await (await connection.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)).fetchone()
            text = json.dumps(plan[0])
            assert "buckets_live_by_account" in text
            assert "Seq Scan" not in text
        await connection.rollback()


async def test_the_rows_carry_the_declared_names(pool, user_id):
    statements = wallet_sql.STATEMENTS
    async with pool.connection() as connection:
        read = await connection.execute(wallet_sql.READ_WALLETS, {"requests": Jsonb([])})
        assert tuple(c.name for c in read.description) == statements.read_columns
        both = await connection.execute(
            wallet_sql.READ_AND_SAVE_WALLETS, {"requests": Jsonb([]), "wallets": Jsonb([]), "all_or_nothing": False}
        )
        names = tuple(c.name for c in both.description)
        assert names == (*statements.read_columns, wallet_sql.WRITE_OUTCOME, wallet_sql.SAVED_ACCOUNT_IDS)
        await connection.rollback()
