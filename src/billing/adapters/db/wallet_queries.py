"""Loads and saves the Wallet aggregate (one account row and its live buckets).

The hot path: plain psycopg with statements from wallet_sql.py (prepared by psycopg
after a few uses). A read is one statement (account, live buckets, stored answer) for one
wallet or several; the locking path adds SELECT ... FOR UPDATE first. The whole change,
of one wallet or several, is one statement, which the unit of work sends at commit.
Rows are read by column name (wallet_codec.py), both built from wallet_columns.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence

import psycopg
from psycopg.types.json import Jsonb

from billing.adapters.db import wallet_sql
from billing.adapters.db.driver import Driver
from billing.adapters.db.wallet_codec import RowLayout, WalletCodec, WalletRead
from billing.domain.idempotency import StoredAnswer
from billing.domain.wallet import Account, Wallet

__all__ = [
    "WalletRead", "WalletQueries", "advances_version", "read_and_save_wallets", "read_wallets", "require_version_advance",
    "save_wallets", "wallet_document",
]

_CODEC = WalletCodec()


class WalletQueries:
    """The wallet statements on one connection; what a unit of work saves is queued by the unit
    of work (unit_of_work.py) and sent with save_wallets() at its commit."""

    def __init__(self, driver: Driver):
        self._driver = driver

    async def exists(self, account_id: str) -> bool:
        cursor = await self._driver.execute("SELECT 1 FROM accounts WHERE account_id = %s", (account_id,))
        return await cursor.fetchone() is not None

    async def add_account(self, account: Account) -> bool:
        """Inserts the account unless it exists; True when this call created it."""
        cursor = await self._driver.execute(wallet_sql.ADD_ACCOUNT, _CODEC.account_params(account))
        return await cursor.fetchone() is not None

    async def read(
        self, account_id: str, now: datetime, idempotency_key: str | None = None,
        expired_since: datetime | None = None,
    ) -> tuple[Wallet | None, StoredAnswer | None]:
        """Lock-free, one statement: the wallet and any stored answer for the key (expired_since:
        see WalletRead)."""
        [loaded] = await read_wallets(self._driver, [WalletRead(account_id, now, idempotency_key, expired_since)])
        return loaded

    async def lock_and_load(
        self, account_id: str, now: datetime, idempotency_key: str | None = None,
        expired_since: datetime | None = None,
    ) -> tuple[Wallet | None, StoredAnswer | None]:
        """Locks the account, then reads its live buckets (and, with expired_since, those that
        expired after it: see WalletRead) and any stored answer for the key."""
        params = {
            "account_id": account_id, "now": now, "idempotency_key": idempotency_key, "expired_since": expired_since,
        }
        locked = await self._driver.execute(wallet_sql.LOCK_ACCOUNT, params)
        account_row = await locked.fetchone()
        if account_row is None:
            return None, None
        decode_account = _layout(locked, wallet_sql.LOCK_ACCOUNT).account
        assert decode_account is not None
        account = decode_account(account_row, account_id)
        loaded = await self._driver.execute(wallet_sql.LIVE_BUCKETS_AND_REPLAY, params)
        rows = await loaded.fetchall()
        layout = _layout(loaded, wallet_sql.LIVE_BUCKETS_AND_REPLAY)
        buckets, answer = layout.buckets_and_answer(account_id, idempotency_key, rows)
        return Wallet(account, buckets), answer

async def read_wallets(
    driver: Driver, reads: Sequence[WalletRead]
) -> list[tuple[Wallet | None, StoredAnswer | None]]:
    """One READ_WALLETS statement for all `reads`; per read, its wallet (None: no such account)
    and the stored answer for its key."""
    cursor = await driver.execute(wallet_sql.READ_WALLETS, {"requests": _read_requests(reads)})
    rows = await cursor.fetchall()
    return _layout(cursor, wallet_sql.READ_WALLETS).wallets(reads, rows)


async def save_wallets(driver: Driver, documents: list[dict[str, Any]], *, all_or_nothing: bool) -> set[str]:
    """One SAVE_WALLETS statement; the account ids whose version check passed (all, or it raises,
    when all_or_nothing). Raises psycopg.errors.RaiseException if the write's self-check failed."""
    params = {"wallets": _wallets(documents), "all_or_nothing": all_or_nothing}
    cursor = await driver.execute(wallet_sql.SAVE_WALLETS, params)
    row = await cursor.fetchone()
    assert row is not None
    outcome, saved_account_ids = _layout(cursor, wallet_sql.SAVE_WALLETS).outcome(row)
    assert outcome == "saved"
    return set(saved_account_ids)


async def read_and_save_wallets(
    driver: Driver, reads: Sequence[WalletRead], documents: list[dict[str, Any]]
) -> tuple[list[tuple[Wallet | None, StoredAnswer | None]], set[str]]:
    """read_wallets and save_wallets (not all-or-nothing) in one READ_AND_SAVE_WALLETS statement.
    The reads see the database as it was before this statement's writes."""
    params = {"requests": _read_requests(reads), "wallets": _wallets(documents), "all_or_nothing": False}
    cursor = await driver.execute(wallet_sql.READ_AND_SAVE_WALLETS, params)
    rows = await cursor.fetchall()
    layout = _layout(cursor, wallet_sql.READ_AND_SAVE_WALLETS)
    is_outcome = layout.is_outcome
    [outcome_row] = [row for row in rows if is_outcome(row)]
    outcome, saved_account_ids = layout.outcome(outcome_row)
    assert outcome == "saved"
    return layout.wallets(reads, [row for row in rows if not is_outcome(row)]), set(saved_account_ids)


_LAYOUTS: dict[str, RowLayout] = {}  # per statement: where its rows hold each name


def _layout(cursor: psycopg.AsyncCursor, statement: str) -> RowLayout:
    """The statement's row layout, resolved from the cursor's column names the first time."""
    layout = _LAYOUTS.get(statement)
    if layout is None:
        assert cursor.description is not None
        layout = _LAYOUTS[statement] = _CODEC.layout([column.name for column in cursor.description])
    return layout


def _read_requests(reads: Sequence[WalletRead]) -> Jsonb:
    requests = []
    for i, r in enumerate(reads):
        request = {"request": i, "account_id": r.account_id, "idempotency_key": r.idempotency_key, "now": r.now.isoformat()}
        if r.expired_since is not None:
            request["expired_since"] = r.expired_since.isoformat()
        requests.append(request)
    return Jsonb(requests)


def _wallets(documents: list[dict[str, Any]]) -> Jsonb:
    return Jsonb(sorted(documents, key=_by_account))  # accounts are locked in this order


def _by_account(document: dict[str, Any]) -> str:
    return document["account_id"]


def wallet_document(wallet: Wallet, now: datetime, answer: StoredAnswer | None) -> dict[str, Any] | None:
    """The wallet's changes as one element of SAVE_WALLETS' document; None when nothing changed."""
    return _CODEC.document(wallet, now, answer)


def advances_version(document: dict[str, Any]) -> bool:
    """An unlocked write is checked against the account's version, which every write moves."""
    return bool(document["version"] > document["expected_version"])


def require_version_advance(document: dict[str, Any]) -> None:
    if not advances_version(document):
        raise AssertionError(f"an unlocked write of account {document['account_id']} adds no ledger entry")
