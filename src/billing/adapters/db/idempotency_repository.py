"""Stored first answers of write requests, keyed by (account, idempotency key)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from billing.adapters.db.tables import idempotency_records


@dataclass(frozen=True)
class StoredResponse:
    request_fingerprint: str
    response: dict[str, Any]


class IdempotencyRepository:
    def __init__(self, connection: AsyncConnection):
        self._connection = connection

    async def get(self, account_id: str, key: str) -> StoredResponse | None:
        row = (
            await self._connection.execute(
                select(idempotency_records.c.request_fingerprint, idempotency_records.c.response).where(
                    idempotency_records.c.account_id == account_id,
                    idempotency_records.c.idempotency_key == key,
                )
            )
        ).first()
        return None if row is None else StoredResponse(row.request_fingerprint, row.response)

    async def put(self, account_id: str, key: str, fingerprint: str, response: dict[str, Any], now: datetime) -> None:
        # Written in the same transaction as the effect, under the account's lock, so a
        # concurrent duplicate waits for it and then finds it.
        await self._connection.execute(
            insert(idempotency_records).values(
                account_id=account_id, idempotency_key=key, request_fingerprint=fingerprint,
                response=response, created_at=now,
            )
        )
