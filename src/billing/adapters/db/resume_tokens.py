"""Single-use resume tokens, stored by hash."""

from __future__ import annotations

import hashlib
from datetime import datetime

from billing.adapters.db.driver import Driver

from billing.domain.resume_tokens import ResumeTokenRecord, forget_before


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class PostgresResumeTokens:
    def __init__(self, driver: Driver):
        self._driver = driver

    async def add(self, account_id: str, token: str, operation: str, seconds: int, now: datetime, expires_at: datetime) -> None:
        """Stores a new token, and forgets the account's long-expired ones (no cleanup job needed)."""
        await self._driver.execute(
            "DELETE FROM resume_tokens WHERE account_id = %s AND expires_at <= %s", (account_id, forget_before(now))
        )
        await self._driver.execute(
            "INSERT INTO resume_tokens (account_id, token_sha256, operation, seconds, created_at, expires_at) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            (account_id, token_sha256(token), operation, seconds, now, expires_at),
        )

    async def get(self, account_id: str, token: str) -> ResumeTokenRecord | None:
        cursor = await self._driver.execute(
            "SELECT operation, expires_at, used_at FROM resume_tokens "
            "WHERE account_id = %s AND token_sha256 = %s",
            (account_id, token_sha256(token)),
        )
        row = await cursor.fetchone()
        return None if row is None else ResumeTokenRecord(*row)

    async def mark_used(self, account_id: str, token: str, now: datetime) -> None:
        cursor = await self._driver.execute(
            "UPDATE resume_tokens SET used_at = %s WHERE account_id = %s AND token_sha256 = %s AND used_at IS NULL",
            (now, account_id, token_sha256(token)),
        )
        # The caller holds the account lock and checked the token: anything else is a bug.
        if cursor.rowcount != 1:
            raise RuntimeError("resume token was used concurrently")
