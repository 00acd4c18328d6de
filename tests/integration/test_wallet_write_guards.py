"""The one-statement wallet write refuses to apply a change planned against a stale wallet."""

from __future__ import annotations

import dataclasses

import psycopg
import pytest

from billing.domain.buckets import Source
from billing.domain.wallet import EventType, Wallet
from billing.service.accounts import create_account
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
