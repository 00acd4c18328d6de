"""Group commit against a real database: concurrent units of work share statements, and one
wallet's conflict or failure stays its own."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from billing.adapters.catalog_file import load_catalog
from billing.adapters.db.unit_of_work import PostgresStorage, open_pool
from billing.adapters.db.wallet_batcher import WalletBatcher
from billing.adapters.db.wallet_queries import WalletRead, wallet_document
from billing.domain.idempotency import StoredAnswer
from billing.domain.wallet import Wallet
from billing.service.accounts import create_account
from billing.service.balance import get_balance
from billing.service.consume import consume
from billing.service.dependencies import Dependencies
from billing.settings import DEFAULT_CATALOG_PATH, libpq_url
from tests.support.forged_wallets import overdrawn


@pytest.fixture
async def batcher(pool):
    batcher = WalletBatcher(pool)
    yield batcher
    await batcher.close()


@pytest.fixture
def deps(pool, batcher, clock):
    """The use cases as the server runs them: with group commit."""
    catalog, _ = load_catalog(DEFAULT_CATALOG_PATH)
    return Dependencies(storage=PostgresStorage(pool, batcher), catalog=catalog, clock=clock)


@pytest.fixture
async def accounts(deps, user_id):
    ids = [f"{user_id}-{i}" for i in range(3)]
    for account_id in ids:
        await create_account(deps, account_id, "free")
    return ids


async def planned_consume(batcher: WalletBatcher, account_id: str, seconds: int, now, key: str):
    """A wallet read through the batcher with `seconds` consumed on it, and its write document."""
    wallet, _ = await batcher.read(WalletRead(account_id, now, key))
    wallet.consume("build", seconds, now)
    return wallet


async def overdrawn_wallet(batcher: WalletBatcher, account_id: str, now) -> Wallet:
    """Its write fails the statement's self-check (tests.support.forged_wallets)."""
    loaded, _ = await batcher.read(WalletRead(account_id, now))
    return overdrawn(loaded, now)


async def total_seconds(deps, account_id: str) -> int:
    return (await get_balance(deps, account_id)).view.totals.total_seconds


async def test_concurrent_consumes_of_different_accounts_share_statements(deps, batcher, user_id, assert_ledger_balanced):
    ids = [f"{user_id}-{i}" for i in range(24)]
    for account_id in ids:
        await create_account(deps, account_id, "free")
    before = {account_id: await total_seconds(deps, account_id) for account_id in ids}
    statements = batcher.batches.batches

    results = await asyncio.gather(*(consume(deps, account_id, "build", 60, "k") for account_id in ids))

    assert [r.consumed_seconds for r in results] == [60] * len(ids)
    assert batcher.batches.batches - statements < len(ids) / 2  # each Consume is a read and a write
    for account_id in ids:
        assert await total_seconds(deps, account_id) == before[account_id] - 60
        await assert_ledger_balanced(account_id)


async def test_each_batch_reports_its_size_once(pool, deps, accounts):
    sizes: list[int] = []
    observed = WalletBatcher(pool, observe_batch=sizes.append)
    try:
        now = deps.clock.now()
        await asyncio.gather(*(observed.read(WalletRead(a, now)) for a in accounts * 2))
    finally:
        await observed.close()
    assert sum(sizes) == len(accounts) * 2 and len(sizes) == observed.batches.batches


async def test_a_stale_wallet_is_not_saved_and_the_rest_of_its_batch_is(
    deps, batcher, accounts, ledger_rows, assert_ledger_balanced
):
    now = deps.clock.now()
    wallets = [await planned_consume(batcher, a, 60, now, f"k-{a}") for a in accounts]
    await consume(deps, accounts[1], "build", 1, "meanwhile")  # wallets[1] is now stale
    rows_before = [await ledger_rows(a) for a in accounts]
    batches = batcher.batches.batches

    saved = await asyncio.gather(*(batcher.save(wallet_document(w, now, None)) for w in wallets))

    assert batcher.batches.batches == batches + 1
    assert saved == [True, False, True]
    assert [await ledger_rows(a) for a in accounts] == [
        rows_before[0] + len(wallets[0].new_entries), rows_before[1], rows_before[2] + len(wallets[2].new_entries)
    ]
    for account_id in accounts:
        await assert_ledger_balanced(account_id)


async def test_a_wallet_failing_its_self_check_fails_alone(deps, batcher, accounts, ledger_rows, assert_ledger_balanced):
    now = deps.clock.now()
    good = [await planned_consume(batcher, a, 60, now, f"k-{a}") for a in (accounts[0], accounts[2])]
    forged = await overdrawn_wallet(batcher, accounts[1], now)
    rows_before = await ledger_rows(accounts[1])

    results = await asyncio.gather(
        *(batcher.save(wallet_document(w, now, None)) for w in (good[0], forged, good[1])), return_exceptions=True
    )

    assert results[0] is True and results[2] is True
    assert isinstance(results[1], psycopg.errors.RaiseException)
    assert await ledger_rows(accounts[1]) == rows_before
    for account_id in accounts:
        await assert_ledger_balanced(account_id)


async def test_two_changes_to_one_account_never_share_a_batch(deps, batcher, accounts, assert_ledger_balanced):
    now = deps.clock.now()
    first = await planned_consume(batcher, accounts[0], 60, now, "a")
    second = await planned_consume(batcher, accounts[0], 30, now, "b")  # planned on the same version
    before = await total_seconds(deps, accounts[0])

    saved = await asyncio.gather(*(batcher.save(wallet_document(w, now, None)) for w in (first, second)))

    assert saved == [True, False]  # the second went in the next batch and failed its version check
    assert await total_seconds(deps, accounts[0]) == before - 60
    await assert_ledger_balanced(accounts[0])


async def test_a_batch_skips_an_account_another_transaction_holds_and_saves_the_rest(
    deps, batcher, accounts, database_url, assert_ledger_balanced
):
    now = deps.clock.now()
    wallets = [await planned_consume(batcher, a, 60, now, f"k-{a}") for a in accounts[:2]]
    before = [await total_seconds(deps, a) for a in accounts[:2]]
    async with await psycopg.AsyncConnection.connect(libpq_url(database_url)) as holder:
        await holder.execute("SELECT 1 FROM accounts WHERE account_id = %s FOR UPDATE", (accounts[0],))

        saved = await asyncio.wait_for(
            asyncio.gather(*(batcher.save(wallet_document(w, now, None)) for w in wallets)), timeout=2
        )

        await holder.rollback()
    assert saved == [False, True]  # not saved: its request retries, and would wait on the locked path
    assert [await total_seconds(deps, a) for a in accounts[:2]] == [before[0], before[1] - 60]
    for account_id in accounts[:2]:
        await assert_ledger_balanced(account_id)


async def test_a_locking_unit_of_work_is_a_transaction_whatever_mode_its_connection_was_left_in(
    database_url, clock, user_id
):
    pool = await open_pool(database_url, size=1)  # one connection: the one left in autocommit
    try:
        deps = Dependencies(storage=PostgresStorage(pool), catalog=load_catalog(DEFAULT_CATALOG_PATH)[0], clock=clock)
        await create_account(deps, user_id, "free")
        connection = await pool.getconn()
        await connection.set_autocommit(True)
        await pool.putconn(connection)

        async with deps.storage.transaction() as uow:
            await uow.wallets.load_for_change(user_id, clock.now())
            async with await psycopg.AsyncConnection.connect(libpq_url(database_url)) as other:
                with pytest.raises(psycopg.errors.LockNotAvailable):
                    await other.execute("SELECT 1 FROM accounts WHERE account_id = %s FOR UPDATE NOWAIT", (user_id,))
    finally:
        await pool.close()


async def test_reads_and_writes_of_one_batch_share_one_statement(deps, batcher, accounts, assert_ledger_balanced):
    now = deps.clock.now()
    wallet = await planned_consume(batcher, accounts[0], 60, now, "a")
    before = await total_seconds(deps, accounts[0])
    statements = batcher.batches.batches

    saved, (same_account, _), (other_account, _) = await asyncio.gather(
        batcher.save(wallet_document(wallet, now, None)),
        batcher.read(WalletRead(accounts[0], now)),
        batcher.read(WalletRead(accounts[1], now)),
    )

    assert batcher.batches.batches == statements + 1
    assert saved is True
    # The read saw the account as it was before the statement's write: a change planned on it
    # fails its version check, as after any concurrent change.
    assert same_account.account.last_event_seq == wallet.loaded_account.last_event_seq
    assert other_account.account.account_id == accounts[1]
    assert await total_seconds(deps, accounts[0]) == before - 60
    await assert_ledger_balanced(accounts[0])


async def test_a_failing_wallet_in_a_batch_of_reads_and_writes_fails_alone(
    deps, batcher, accounts, ledger_rows, assert_ledger_balanced
):
    now = deps.clock.now()
    good = await planned_consume(batcher, accounts[0], 60, now, "good")
    forged = await overdrawn_wallet(batcher, accounts[1], now)
    rows_before = await ledger_rows(accounts[1])

    results = await asyncio.gather(
        batcher.save(wallet_document(good, now, None)),
        batcher.save(wallet_document(forged, now, None)),
        batcher.read(WalletRead(accounts[2], now)),
        return_exceptions=True,
    )

    assert results[0] is True
    assert isinstance(results[1], psycopg.errors.RaiseException)
    assert results[2][0].account.account_id == accounts[2]
    assert await ledger_rows(accounts[1]) == rows_before
    for account_id in accounts:
        await assert_ledger_balanced(account_id)


async def test_a_batch_of_one_failing_write_and_reads_answers_the_reads(deps, batcher, accounts, ledger_rows):
    now = deps.clock.now()
    forged = await overdrawn_wallet(batcher, accounts[1], now)

    results = await asyncio.gather(
        batcher.save(wallet_document(forged, now, None)),
        batcher.read(WalletRead(accounts[0], now)),
        batcher.read(WalletRead(accounts[2], now)),
        return_exceptions=True,
    )

    assert isinstance(results[0], psycopg.errors.RaiseException)
    assert [r[0].account.account_id for r in results[1:]] == [accounts[0], accounts[2]]


async def test_a_change_of_the_account_alone_moves_the_version_a_stale_writer_is_checked_against(deps, batcher, accounts):
    """A subscription status or an auto top-up setting adds no ledger entry; a writer that read the
    account before it must still fail its check, not write its stale copy back (review, issue 11)."""
    now = deps.clock.now()
    stale, _ = await batcher.read(WalletRead(accounts[0], now))
    fresh, _ = await batcher.read(WalletRead(accounts[0], now))
    fresh.change_plan("pro", "past_due")
    assert await batcher.save(wallet_document(fresh, now, None))
    stale.consume("build", 1, now)
    assert not await batcher.save(wallet_document(stale, now, StoredAnswer("k", "consume:build:1", {"answer": 1})))
    again, _ = await batcher.read(WalletRead(accounts[0], now))
    assert (again.account.plan_key, again.account.subscription_status) == ("pro", "past_due")


async def test_concurrent_consumes_of_one_account_take_turns_instead_of_retrying(
    deps, batcher, accounts, assert_ledger_balanced
):
    before = await total_seconds(deps, accounts[0])
    reads = batcher.reads

    results = await asyncio.gather(*(consume(deps, accounts[0], "build", 10, f"turn-{i}") for i in range(8)))

    assert [r.consumed_seconds for r in results] == [10] * 8
    assert batcher.reads - reads == 8  # one read each: no attempt was planned on a stale wallet
    assert await total_seconds(deps, accounts[0]) == before - 80
    await assert_ledger_balanced(accounts[0])


async def test_a_batch_whose_connection_died_runs_again_on_a_new_one(database_url, deps, accounts):
    pool = await open_pool(database_url, size=3)
    batcher = WalletBatcher(pool)
    try:
        now = deps.clock.now()
        wallet = await planned_consume(batcher, accounts[0], 60, now, "before-restart")
        idle = [await pool.getconn() for _ in range(2)]
        backends = [c.info.backend_pid for c in idle] + [batcher._connection.info.backend_pid]
        for connection in idle:
            await pool.putconn(connection)
        async with await psycopg.AsyncConnection.connect(libpq_url(database_url), autocommit=True) as admin:
            for pid in backends:  # what a database restart does to every connection of the pool
                await admin.execute("SELECT pg_terminate_backend(%s)", (pid,))

        saved = await batcher.save(wallet_document(wallet, now, None))
        reread, _ = await batcher.read(WalletRead(accounts[0], now))

        assert saved is True
        assert reread.account.last_event_seq == wallet.account.last_event_seq
    finally:
        await batcher.close()
        await pool.close()
