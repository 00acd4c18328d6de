"""The api_keys table: created by `billing keys create`, revoked by `billing keys revoke`, read
by every server replica in full every few seconds (adapters/hmac_auth.py keeps the copy)."""

from __future__ import annotations

from datetime import datetime

from billing.adapters.db.driver import Driver
from billing.domain.auth import ApiKey, Scope

_COLUMNS = "key_id, scope, user_id, expires_at, revoked_at"


class PostgresApiKeys:
    def __init__(self, driver: Driver):
        self._driver = driver

    async def add(self, key: ApiKey, now: datetime) -> None:
        await self._driver.execute(
            "INSERT INTO api_keys (key_id, scope, user_id, created_at, expires_at) VALUES (%s, %s, %s, %s, %s)",
            (key.key_id, str(key.scope), key.user_id, now, key.expires_at),
        )

    async def revoke(self, key_id: str, now: datetime) -> bool:
        """True when the key existed and was not revoked yet."""
        cursor = await self._driver.execute(
            "UPDATE api_keys SET revoked_at = %s WHERE key_id = %s AND revoked_at IS NULL", (now, key_id)
        )
        return cursor.rowcount == 1

    async def usable(self, now: datetime) -> list[ApiKey]:
        """Every key neither revoked nor expired (a few thousand at most: keys are per service
        and per admin; browsers use session keys, which have no row)."""
        cursor = await self._driver.execute(
            f"SELECT {_COLUMNS} FROM api_keys WHERE revoked_at IS NULL AND expires_at > %s", (now,)
        )
        return [
            ApiKey(key_id=key_id, scope=Scope(scope), user_id=user_id, expires_at=expires_at, revoked_at=revoked_at)
            for key_id, scope, user_id, expires_at, revoked_at in await cursor.fetchall()
        ]

    async def get(self, key_id: str, *, lock: bool = False) -> ApiKey | None:
        cursor = await self._driver.execute(
            f"SELECT {_COLUMNS} FROM api_keys WHERE key_id = %s" + (" FOR UPDATE" if lock else ""), (key_id,))
        row = await cursor.fetchone()
        if row is None:
            return None
        key_id, scope, user_id, expires_at, revoked_at = row
        return ApiKey(key_id=key_id, scope=Scope(scope), user_id=user_id, expires_at=expires_at, revoked_at=revoked_at)
