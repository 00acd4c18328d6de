"""Loads and saves the Wallet aggregate (one account row and its live buckets).

The hot path: plain psycopg with statements from wallet_sql.py (prepared by psycopg
after a few uses). A read is one statement (account, live buckets, stored answer); the
locking path adds SELECT ... FOR UPDATE first. The whole change is one statement, which
the unit of work sends at commit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from billing.adapters.db import wallet_sql
from billing.domain.buckets import Bucket, Source
from billing.domain.idempotency import StoredAnswer
from billing.domain.wallet import Account, BonusState, Wallet


class WalletRepository:
    def __init__(self, driver: psycopg.AsyncConnection):
        self._driver = driver
        self.pending_writes: list[tuple[str, dict[str, Any]]] = []

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
        params = {"account_id": account_id, "now": now, "idempotency_key": idempotency_key}
        rows = await (await self._driver.execute(wallet_sql.READ_WALLET, params)).fetchall()
        account_rows = [row for row in rows if row[0] is not None]
        if not account_rows:
            return None, None
        account = _account_from_row(account_id, account_rows[0])
        live = [_bucket_from_row(account_id, row[8:]) for row in account_rows if row[8] is not None]
        answers = [StoredAnswer(idempotency_key or "", row[14], row[15]) for row in rows if row[0] is None]
        return Wallet(account, live), (answers[0] if answers else None)

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
        wallet.assert_ledger_matches_buckets()
        if not (wallet.new_entries or wallet.account_changed or answer):
            return
        self.pending_writes.append((wallet_sql.SAVE_WALLET, save_parameters(wallet, now, answer)))


def save_parameters(wallet: Wallet, now: datetime, answer: StoredAnswer | None) -> dict[str, Any]:
    account = wallet.account
    new_buckets = [wallet.bucket(seq) for seq in wallet.new_bucket_seqs]
    assert all(b.granted_at == now for b in new_buckets)
    changes = {
        "new_buckets": [
            {"bucket_seq": b.bucket_seq, "source": str(b.source), "granted": b.granted_seconds,
             "remaining": b.remaining_seconds, "expires_at": b.expires_at.isoformat() if b.expires_at else None}
            for b in new_buckets
        ],
        "debits": [{"bucket_seq": seq, "seconds": seconds} for seq, seconds in wallet.debits_of_existing_buckets()],
        "entries": [
            {"type": e.type, "seconds": e.seconds, "reason": e.reason,
             "bucket_seq": e.bucket_seq, "operation": e.operation, "metadata": dict(e.metadata)}
            for e in wallet.new_entries
        ],
    }
    # Entries are numbered in SQL from first_event_seq, in order; the domain numbered them the same way.
    first_event_seq = wallet.loaded_account.last_event_seq + 1
    assert [e.event_seq for e in wallet.new_entries] == list(range(first_event_seq, account.last_event_seq + 1))
    return {
        "account_id": account.account_id,
        "now": now,
        "changes": Jsonb(changes),
        "first_event_seq": first_event_seq,
        "plan_key": account.plan_key,
        "subscription_status": account.subscription_status,
        "last_bucket_seq": account.last_bucket_seq,
        "last_event_seq": account.last_event_seq,
        "expected_last_event_seq": wallet.loaded_account.last_event_seq,
        "bonus_last_grant_on": account.bonus.last_grant_on,
        "bonus_month": account.bonus.month,
        "bonus_used_seconds": account.bonus.used_seconds,
        "idempotency_key": answer.idempotency_key if answer else None,
        "request_fingerprint": answer.request_fingerprint if answer else None,
        "response": Jsonb(answer.response) if answer else None,
    }


def _account_from_row(account_id: str, row) -> Account:
    plan_key, status, created_at, last_bucket_seq, last_event_seq, grant_on, month, used = row[:8]
    return Account(
        account_id=account_id, plan_key=plan_key, subscription_status=status, created_at=created_at,
        last_bucket_seq=last_bucket_seq, last_event_seq=last_event_seq,
        bonus=BonusState(last_grant_on=grant_on, month=month, used_seconds=used),
    )


def _bucket_from_row(account_id: str, row) -> Bucket:
    bucket_seq, source, granted, remaining, granted_at, expires_at = row[:6]
    return Bucket(
        account_id=account_id, bucket_seq=bucket_seq, source=Source(source), granted_seconds=granted,
        remaining_seconds=remaining, granted_at=granted_at, expires_at=expires_at,
    )
