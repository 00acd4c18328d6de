"""Loads and saves the Wallet aggregate: one account row and its live buckets."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, bindparam, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from billing.adapters.db.tables import accounts, buckets, ledger_events
from billing.domain.buckets import Bucket, Source
from billing.domain.wallet import Account, BonusState, Wallet

_live_bucket_join = and_(
    buckets.c.account_id == accounts.c.account_id,
    buckets.c.remaining_seconds > 0,
    or_(buckets.c.expires_at.is_(None), buckets.c.expires_at > bindparam("now")),
)

_BUCKET_COLUMNS = (
    buckets.c.bucket_seq, buckets.c.source, buckets.c.granted_seconds,
    buckets.c.remaining_seconds, buckets.c.granted_at, buckets.c.expires_at,
)

# One round trip: the account and its live buckets.
_load_query = (
    select(accounts, *_BUCKET_COLUMNS)
    .select_from(accounts.outerjoin(buckets, _live_bucket_join))
    .where(accounts.c.account_id == bindparam("account_id"))
)
# The lock is taken by a statement of its own. Under READ COMMITTED, a FOR UPDATE that
# waits for the lock re-reads only the locked row when it gets it: rows joined to it
# (the buckets) would still come from the snapshot taken before the wait, so a queued
# writer would debit remainders another writer had already spent. The load that follows
# the lock is a new statement with a new snapshot, which sees every committed change.
_lock_account_query = (
    select(accounts.c.account_id).where(accounts.c.account_id == bindparam("account_id")).with_for_update()
)

_update_bucket = (
    update(buckets)
    .where(buckets.c.account_id == bindparam("b_account_id"), buckets.c.bucket_seq == bindparam("b_bucket_seq"))
    .values(remaining_seconds=bindparam("b_remaining_seconds"))
)


class WalletRepository:
    def __init__(self, connection: AsyncConnection):
        self._connection = connection

    async def load(self, account_id: str, now: datetime, *, for_update: bool) -> Wallet | None:
        if for_update:
            locked = (await self._connection.execute(_lock_account_query, {"account_id": account_id})).first()
            if locked is None:
                return None
        rows = (await self._connection.execute(_load_query, {"account_id": account_id, "now": now})).all()
        if not rows:
            return None
        account = _account_from_row(rows[0])
        live = [_bucket_from_row(account_id, row) for row in rows if row.bucket_seq is not None]
        return Wallet(account, live)

    async def exists(self, account_id: str) -> bool:
        query = select(accounts.c.account_id).where(accounts.c.account_id == account_id)
        return (await self._connection.execute(query)).first() is not None

    async def add_account(self, account: Account) -> bool:
        """Inserts the account unless it exists; True when this call created it."""
        statement = _insert_account_statement(account)
        return (await self._connection.execute(statement)).first() is not None

    async def save(self, wallet: Wallet, now: datetime) -> None:
        """Writes every change the wallet recorded; the caller's transaction makes it atomic."""
        wallet.assert_ledger_matches_buckets()
        account_id = wallet.account.account_id
        if wallet.new_bucket_seqs:
            await self._connection.execute(
                insert(buckets), [_bucket_values(wallet.bucket(seq)) for seq in wallet.new_bucket_seqs]
            )
        if wallet.changed_bucket_seqs:
            await self._connection.execute(
                _update_bucket,
                [
                    {"b_account_id": account_id, "b_bucket_seq": seq,
                     "b_remaining_seconds": wallet.bucket(seq).remaining_seconds}
                    for seq in wallet.changed_bucket_seqs
                ],
            )
        if wallet.new_entries:
            await self._connection.execute(insert(ledger_events), [_entry_values(e) for e in wallet.new_entries])
        if wallet.account_changed:
            await self._connection.execute(
                update(accounts)
                .where(accounts.c.account_id == account_id)
                .values(_account_values(wallet.account) | {"updated_at": now})
            )


def _insert_account_statement(account: Account):
    values = _account_values(account) | {
        "account_id": account.account_id, "created_at": account.created_at, "updated_at": account.created_at,
    }
    return (
        pg_insert(accounts).values(values)
        .on_conflict_do_nothing(index_elements=[accounts.c.account_id])
        .returning(accounts.c.account_id)
    )


def _account_from_row(row) -> Account:
    return Account(
        account_id=row.account_id,
        plan_key=row.plan_key,
        subscription_status=row.subscription_status,
        created_at=row.created_at,
        last_bucket_seq=row.last_bucket_seq,
        last_event_seq=row.last_event_seq,
        bonus=BonusState(
            last_grant_on=row.bonus_last_grant_on, month=row.bonus_month, used_seconds=row.bonus_used_seconds
        ),
    )


def _account_values(account: Account) -> dict:
    return {
        "plan_key": account.plan_key,
        "subscription_status": account.subscription_status,
        "last_bucket_seq": account.last_bucket_seq,
        "last_event_seq": account.last_event_seq,
        "bonus_last_grant_on": account.bonus.last_grant_on,
        "bonus_month": account.bonus.month,
        "bonus_used_seconds": account.bonus.used_seconds,
    }


def _bucket_from_row(account_id: str, row) -> Bucket:
    return Bucket(
        account_id=account_id,
        bucket_seq=row.bucket_seq,
        source=Source(row.source),
        granted_seconds=row.granted_seconds,
        remaining_seconds=row.remaining_seconds,
        granted_at=row.granted_at,
        expires_at=row.expires_at,
    )


def _bucket_values(bucket: Bucket) -> dict:
    return {
        "account_id": bucket.account_id,
        "bucket_seq": bucket.bucket_seq,
        "source": str(bucket.source),
        "granted_seconds": bucket.granted_seconds,
        "remaining_seconds": bucket.remaining_seconds,
        "granted_at": bucket.granted_at,
        "expires_at": bucket.expires_at,
    }


def _entry_values(entry) -> dict:
    return {
        "account_id": entry.account_id,
        "event_seq": entry.event_seq,
        "type": entry.type,
        "seconds": entry.seconds,
        "reason": entry.reason,
        "bucket_seq": entry.bucket_seq,
        "operation": entry.operation,
        "occurred_at": entry.occurred_at,
        "metadata": dict(entry.metadata),
    }
