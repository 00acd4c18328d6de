"""Loads and saves the Wallet aggregate (one account row and its live buckets).

The hot path: plain psycopg with statements from wallet_sql.py (prepared by psycopg
after a few uses). A read is one statement (account, live buckets, stored answer) for one
wallet or several; the locking path adds SELECT ... FOR UPDATE first. The whole change,
of one wallet or several, is one statement, which the unit of work sends at commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Sequence

import psycopg
from psycopg.types.json import Jsonb

from billing.adapters.db import wallet_sql
from billing.domain.buckets import Bucket, Source
from billing.domain.idempotency import StoredAnswer
from billing.domain.wallet import Account, BonusState, Wallet


class WalletRepository:
    def __init__(self, driver: psycopg.AsyncConnection):
        self._driver = driver
        self.pending_wallets: list[dict[str, Any]] = []  # documents for SAVE_WALLETS, sent at commit

    async def exists(self, account_id: str) -> bool:
        cursor = await self._driver.execute("SELECT 1 FROM accounts WHERE account_id = %s", (account_id,))
        return await cursor.fetchone() is not None

    async def add_account(self, account: Account) -> bool:
        """Inserts the account unless it exists; True when this call created it."""
        cursor = await self._driver.execute(
            "INSERT INTO accounts (account_id, plan_key, subscription_status, created_at, updated_at) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (account_id) DO NOTHING RETURNING 1",
            (account.account_id, account.plan_key, account.subscription_status, account.created_at, account.created_at),
        )
        return await cursor.fetchone() is not None

    async def read(
        self, account_id: str, now: datetime, idempotency_key: str | None = None
    ) -> tuple[Wallet | None, StoredAnswer | None]:
        """Lock-free, one statement: the wallet and any stored answer for the key."""
        [loaded] = await read_wallets(self._driver, [WalletRead(account_id, now, idempotency_key)])
        return loaded

    async def lock_and_load(
        self, account_id: str, now: datetime, idempotency_key: str | None = None
    ) -> tuple[Wallet | None, StoredAnswer | None]:
        """Locks the account, then reads its live buckets and any stored answer for the key."""
        params = {"account_id": account_id, "now": now, "idempotency_key": idempotency_key}
        account_row = await (await self._driver.execute(wallet_sql.LOCK_ACCOUNT, params)).fetchone()
        if account_row is None:
            return None, None
        account = _account_from_row(account_id, account_row)
        buckets, answer = [], None
        loaded = await self._driver.execute(wallet_sql.LIVE_BUCKETS_AND_REPLAY, params)
        for row in await loaded.fetchall():
            if row[0] is not None:
                buckets.append(_bucket_from_row(account_id, row))
            else:
                answer = StoredAnswer(idempotency_key or "", row[6], row[7])
        return Wallet(account, buckets), answer

    def save(self, wallet: Wallet, now: datetime, answer: StoredAnswer | None = None) -> None:
        """Queues the wallet's changes (and the idempotent answer) for the unit of work's commit."""
        document = wallet_document(wallet, now, answer)
        if document is not None:
            self.pending_wallets.append(document)


@dataclass(frozen=True)
class WalletRead:
    account_id: str
    now: datetime
    idempotency_key: str | None = None


async def read_wallets(
    driver: psycopg.AsyncConnection, reads: Sequence[WalletRead]
) -> list[tuple[Wallet | None, StoredAnswer | None]]:
    """One READ_WALLETS statement for all `reads`; per read, its wallet (None: no such account)
    and the stored answer for its key."""
    rows = await (await driver.execute(wallet_sql.READ_WALLETS, {"requests": _read_requests(reads)})).fetchall()
    return _loaded_wallets(reads, rows)


async def save_wallets(driver: psycopg.AsyncConnection, documents: list[dict[str, Any]], *, all_or_nothing: bool) -> set[str]:
    """One SAVE_WALLETS statement; the account ids whose version check passed (all, or it raises,
    when all_or_nothing). Raises psycopg.errors.RaiseException if the write's self-check failed."""
    params = {"wallets": _wallets(documents), "all_or_nothing": all_or_nothing}
    row = await (await driver.execute(wallet_sql.SAVE_WALLETS, params)).fetchone()
    assert row is not None and row[1] == "saved"
    return set(row[0])


async def read_and_save_wallets(
    driver: psycopg.AsyncConnection, reads: Sequence[WalletRead], documents: list[dict[str, Any]]
) -> tuple[list[tuple[Wallet | None, StoredAnswer | None]], set[str]]:
    """read_wallets and save_wallets (not all-or-nothing) in one READ_AND_SAVE_WALLETS statement.
    The reads see the database as it was before this statement's writes."""
    params = {"requests": _read_requests(reads), "wallets": _wallets(documents), "all_or_nothing": False}
    rows = await (await driver.execute(wallet_sql.READ_AND_SAVE_WALLETS, params)).fetchall()
    outcomes = [row for row in rows if row[0] == _OUTCOME_ROW]
    assert len(outcomes) == 1 and outcomes[0][15] == "saved"
    return _loaded_wallets(reads, [row for row in rows if row[0] != _OUTCOME_ROW]), set(outcomes[0][16])


_OUTCOME_ROW = -1  # READ_AND_SAVE_WALLETS' row with the write's outcome, after the reads' rows


def _read_requests(reads: Sequence[WalletRead]) -> Jsonb:
    return Jsonb([
        {"request": i, "account_id": r.account_id, "idempotency_key": r.idempotency_key, "now": r.now.isoformat()}
        for i, r in enumerate(reads)
    ])


def _wallets(documents: list[dict[str, Any]]) -> Jsonb:
    return Jsonb(sorted(documents, key=_by_account))  # accounts are locked in this order


def _loaded_wallets(reads: Sequence[WalletRead], rows) -> list[tuple[Wallet | None, StoredAnswer | None]]:
    accounts: dict[int, Account] = {}
    buckets: dict[int, list[Bucket]] = {}
    answers: dict[int, StoredAnswer] = {}
    for row in rows:
        request, read = row[0], reads[row[0]]
        if row[1] is None:
            answers[request] = StoredAnswer(read.idempotency_key or "", row[15], row[16])
            continue
        if request not in accounts:
            accounts[request] = _account_from_row(read.account_id, row[1:9])
            buckets[request] = []
        if row[9] is not None:
            buckets[request].append(_bucket_from_row(read.account_id, row[9:15]))
    return [
        (Wallet(accounts[i], buckets[i]) if i in accounts else None, answers.get(i) if i in accounts else None)
        for i in range(len(reads))
    ]


def _by_account(document: dict[str, Any]) -> str:
    return document["account_id"]


def wallet_document(wallet: Wallet, now: datetime, answer: StoredAnswer | None) -> dict[str, Any] | None:
    """The wallet's changes as one element of SAVE_WALLETS' document; None when nothing changed."""
    wallet.assert_ledger_matches_buckets()
    if not (wallet.new_entries or wallet.account_changed or answer):
        return None
    account = wallet.account
    new_buckets = [wallet.bucket(seq) for seq in wallet.new_bucket_seqs]
    assert all(b.granted_at == now for b in new_buckets)
    # Entries are numbered in SQL from first_event_seq, in order; the domain numbered them the same way.
    first_event_seq = wallet.loaded_account.last_event_seq + 1
    assert [e.event_seq for e in wallet.new_entries] == list(range(first_event_seq, account.last_event_seq + 1))
    return {
        "account_id": account.account_id,
        "now": now.isoformat(),
        "expected_last_event_seq": wallet.loaded_account.last_event_seq,
        "first_event_seq": first_event_seq,
        "plan_key": account.plan_key,
        "subscription_status": account.subscription_status,
        "last_bucket_seq": account.last_bucket_seq,
        "last_event_seq": account.last_event_seq,
        "bonus_last_grant_on": _iso_or_none(account.bonus.last_grant_on),
        "bonus_month": _iso_or_none(account.bonus.month),
        "bonus_used_seconds": account.bonus.used_seconds,
        "new_buckets": [
            {"bucket_seq": b.bucket_seq, "source": str(b.source), "granted": b.granted_seconds,
             "remaining": b.remaining_seconds, "expires_at": _iso_or_none(b.expires_at)}
            for b in new_buckets
        ],
        "debits": [{"bucket_seq": seq, "seconds": seconds} for seq, seconds in wallet.debits_of_existing_buckets()],
        "entries": [
            {"type": e.type, "seconds": e.seconds, "reason": e.reason,
             "bucket_seq": e.bucket_seq, "operation": e.operation, "metadata": dict(e.metadata)}
            for e in wallet.new_entries
        ],
        "idempotency_key": answer.idempotency_key if answer else None,
        "request_fingerprint": answer.request_fingerprint if answer else None,
        "response": answer.response if answer else None,
    }


def require_version_advance(document: dict[str, Any]) -> None:
    """An unlocked write is checked against the account's last_event_seq alone: a change that
    did not move it (no ledger entry) would pass the check of a reader of the older version."""
    if document["last_event_seq"] <= document["expected_last_event_seq"]:
        raise AssertionError(f"an optimistic write of account {document['account_id']} adds no ledger entry")


def _iso_or_none(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _account_from_row(account_id: str, row) -> Account:
    plan_key, status, created_at, last_bucket_seq, last_event_seq, grant_on, month, used = row[:8]
    return Account(
        account_id=account_id, plan_key=plan_key, subscription_status=status, created_at=created_at,
        last_bucket_seq=last_bucket_seq, last_event_seq=last_event_seq,
        bonus=BonusState(last_grant_on=grant_on, month=month, used_seconds=used),
    )


_SOURCES = {source.value: source for source in Source}  # Source(text) goes through EnumMeta.__call__


def _bucket_from_row(account_id: str, row) -> Bucket:
    bucket_seq, source, granted, remaining, granted_at, expires_at = row[:6]
    return Bucket(
        account_id=account_id, bucket_seq=bucket_seq, source=_SOURCES[source], granted_seconds=granted,
        remaining_seconds=remaining, granted_at=granted_at, expires_at=expires_at,
    )
