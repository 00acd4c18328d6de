"""The one-statement wallet write refuses to apply a change planned against a stale wallet."""

from __future__ import annotations

import dataclasses

import psycopg
import pytest

from billing.adapters.db.wallet_queries import (
    WalletRead, read_and_save_wallets, read_wallets, save_wallets, wallet_document,
)
from billing.domain.buckets import Source
from billing.domain.wallet import EventType, Wallet
from billing.service.accounts import create_account
from billing.service.consume import consume
from tests.support.forged_wallets import overdrawn


async def assert_forged_write_rolls_back(deps, user_id, ledger_rows, assert_ledger_balanced, forge) -> None:
    """Loads the wallet, lets `forge(wallet, now)` plan a change the database must refuse, saves it."""
    await create_account(deps, user_id, "free")
    rows_before = await ledger_rows(user_id)
    now = deps.clock.now()
    with pytest.raises(psycopg.errors.RaiseException, match="unexpected rows"):
        async with deps.storage.transaction() as uow:
            wallet, _ = await uow.wallets.load_for_change(user_id, now)
            uow.wallets.save(forge(wallet, now), now)
            await uow.commit()
    assert await ledger_rows(user_id) == rows_before
    await assert_ledger_balanced(user_id)


async def test_a_write_planned_against_a_stale_account_version_rolls_back(deps, user_id, ledger_rows, assert_ledger_balanced):
    def forge(wallet, now):
        stale = dataclasses.replace(wallet.account, last_event_seq=wallet.account.last_event_seq + 5)
        forged = Wallet(stale, wallet.buckets)
        forged.credit(Source.GIFT, 60, expires_at=None, now=now, event_type=EventType.ADJUSTMENT, reason="x")
        return forged

    await assert_forged_write_rolls_back(deps, user_id, ledger_rows, assert_ledger_balanced, forge)


async def test_a_debit_larger_than_the_stored_remainder_rolls_back(deps, user_id, ledger_rows, assert_ledger_balanced):
    await assert_forged_write_rolls_back(deps, user_id, ledger_rows, assert_ledger_balanced, overdrawn)

async def test_invariant_check_of_one_account_ignores_the_others(engine, deps, user_id):
    from sqlalchemy import text

    from billing.adapters.db.invariants import find_violations

    await create_account(deps, user_id, "free")
    other = f"{user_id}-other"
    await create_account(deps, other, "free")
    async with engine.begin() as connection:
        await connection.execute(text("UPDATE accounts SET last_event_seq = 0 WHERE account_id = :a"), {"a": other})
        assert await find_violations(connection, user_id) == []
        assert len(await find_violations(connection, other)) == 1
        await connection.rollback()


# --- each self-check of the write statement fires, on every statement that carries it --------
# The debits check: a debit's guard (remaining_seconds >= seconds) stopped it. The all_or_nothing
# check: a wallet was not saved (its version check failed) where every one must be. The lone
# path's SAVE_WALLETS is all_or_nothing; the batcher's SAVE_WALLETS and READ_AND_SAVE_WALLETS
# are not (a wallet not saved is reported, not raised), so only the debits check runs there.

DEBIT_CHECK = "unexpected rows: a debit exceeds the stored remainder"
VERSION_CHECK = "unexpected rows: a wallet failed its version check"


async def forged_documents(pool, deps, user_id):
    """An overdrawn wallet's document (tests.support.forged_wallets) and a stale one's: planned
    on a version another change has since replaced."""
    await create_account(deps, user_id, "free")
    now = deps.clock.now()

    async def current() -> Wallet:
        async with pool.connection() as connection:
            [(wallet, _)] = await read_wallets(connection, [WalletRead(user_id, now)])
            return wallet

    stale = await current()
    stale.consume("build", 1, now)
    await consume(deps, user_id, "build", 1, "meanwhile")
    return wallet_document(overdrawn(await current(), now), now, None), wallet_document(stale, now, None)


@pytest.mark.parametrize("all_or_nothing", [True, False])
async def test_save_wallets_fails_on_a_debit_its_guard_stopped(pool, deps, user_id, ledger_rows, all_or_nothing):
    overdrawn_document, _ = await forged_documents(pool, deps, user_id)
    rows_before = await ledger_rows(user_id)
    async with pool.connection() as connection:
        with pytest.raises(psycopg.errors.RaiseException, match=DEBIT_CHECK):
            await save_wallets(connection, [overdrawn_document], all_or_nothing=all_or_nothing)
    assert await ledger_rows(user_id) == rows_before


async def test_read_and_save_wallets_fails_on_a_debit_its_guard_stopped(pool, deps, user_id, ledger_rows):
    overdrawn_document, _ = await forged_documents(pool, deps, user_id)
    rows_before = await ledger_rows(user_id)
    async with pool.connection() as connection:
        with pytest.raises(psycopg.errors.RaiseException, match=DEBIT_CHECK):
            await read_and_save_wallets(connection, [WalletRead(user_id, deps.clock.now())], [overdrawn_document])
    assert await ledger_rows(user_id) == rows_before


async def test_save_wallets_all_or_nothing_fails_on_a_wallet_not_saved(pool, deps, user_id, ledger_rows):
    _, stale_document = await forged_documents(pool, deps, user_id)
    rows_before = await ledger_rows(user_id)
    async with pool.connection() as connection:
        with pytest.raises(psycopg.errors.RaiseException, match=VERSION_CHECK):
            await save_wallets(connection, [stale_document], all_or_nothing=True)
    assert await ledger_rows(user_id) == rows_before


async def test_without_all_or_nothing_a_wallet_not_saved_is_reported(pool, deps, user_id, ledger_rows):
    _, stale_document = await forged_documents(pool, deps, user_id)
    rows_before = await ledger_rows(user_id)
    async with pool.connection() as connection:
        assert await save_wallets(connection, [stale_document], all_or_nothing=False) == set()
        [(wallet, _)], saved = await read_and_save_wallets(
            connection, [WalletRead(user_id, deps.clock.now())], [stale_document]
        )
        assert saved == set() and wallet.account.account_id == user_id
    assert await ledger_rows(user_id) == rows_before

