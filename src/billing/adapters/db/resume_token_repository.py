"""Single-use resume tokens, stored by hash."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from billing.adapters.db.tables import resume_tokens


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class ResumeTokenRecord:
    operation: str
    seconds: int
    expires_at: datetime
    used_at: datetime | None


class ResumeTokenRepository:
    def __init__(self, connection: AsyncConnection):
        self._connection = connection

    async def add(self, account_id: str, token: str, operation: str, seconds: int, now: datetime, expires_at: datetime) -> None:
        await self._connection.execute(
            insert(resume_tokens).values(
                account_id=account_id, token_sha256=token_sha256(token), operation=operation,
                seconds=seconds, created_at=now, expires_at=expires_at,
            )
        )

    async def get(self, account_id: str, token: str) -> ResumeTokenRecord | None:
        row = (
            await self._connection.execute(
                select(resume_tokens).where(
                    resume_tokens.c.account_id == account_id,
                    resume_tokens.c.token_sha256 == token_sha256(token),
                )
            )
        ).first()
        if row is None:
            return None
        return ResumeTokenRecord(row.operation, row.seconds, row.expires_at, row.used_at)

    async def mark_used(self, account_id: str, token: str, now: datetime) -> None:
        await self._connection.execute(
            update(resume_tokens)
            .where(resume_tokens.c.account_id == account_id, resume_tokens.c.token_sha256 == token_sha256(token))
            .values(used_at=now)
        )
