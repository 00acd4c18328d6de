"""console_logins: one-time sign-in codes, by digest (service/ports.ConsoleLogins)."""

from __future__ import annotations

from datetime import datetime

from billing.adapters.db.driver import Driver
from billing.domain.auth import ApiKey, Scope


class PostgresConsoleLogins:
    def __init__(self, driver: Driver):
        self._driver = driver

    async def add(self, code_digest: bytes, key_id: str, now: datetime, expires_at: datetime) -> None:
        await self._driver.execute(
            "INSERT INTO console_logins (code_digest, key_id, created_at, expires_at) VALUES (%s, %s, %s, %s)",
            (code_digest, key_id, now, expires_at),
        )

    async def redeem(self, code_digest: bytes, now: datetime) -> ApiKey | None:
        # One statement: of two redeems of one code, the row lock lets one update it; the other
        # re-reads it redeemed and gets nothing.
        cursor = await self._driver.execute(
            "UPDATE console_logins c SET redeemed_at = %(now)s FROM api_keys k "
            "WHERE c.code_digest = %(digest)s AND c.redeemed_at IS NULL AND c.expires_at > %(now)s "
            "AND k.key_id = c.key_id AND k.revoked_at IS NULL AND k.expires_at > %(now)s "
            "RETURNING k.key_id, k.scope, k.user_id, k.expires_at",
            {"digest": code_digest, "now": now},
        )
        row = await cursor.fetchone()
        if row is None:
            return None
        key_id, scope, user_id, expires_at = row
        return ApiKey(key_id=key_id, scope=Scope(scope), user_id=user_id, expires_at=expires_at)
