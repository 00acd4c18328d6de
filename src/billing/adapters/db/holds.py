"""Holds on PostgreSQL (domain/hold.py): read with the change that uses them, written at its commit.

put() queues, as payments do: a hold's bucket reservations travel in the wallet's own write, and
the hold row follows it in the same transaction (flush).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence

from psycopg.types.json import Jsonb

from billing.adapters.db.driver import Driver
from billing.domain.hold import HeldPart, Hold, HoldState

_COLUMNS = (
    "hold_id, operation, state, held_seconds, committed_seconds, expired_seconds, requested_seconds, "
    "requested_ttl_seconds, parts, created_at, expires_at, settled_at"
)
# Every open hold of the account (at most OPEN_HOLDS_MAX), and the one asked for by id whatever its state.
_OPEN_AND_ONE = f"""
SELECT {_COLUMNS} FROM holds
WHERE account_id = %(account_id)s AND (state = 'open' OR hold_id = %(hold_id)s)
"""
_UPSERT = f"""
INSERT INTO holds (account_id, {_COLUMNS}, updated_at)
VALUES (%(account_id)s, %(hold_id)s, %(operation)s, %(state)s, %(held_seconds)s, %(committed_seconds)s,
        %(expired_seconds)s, %(requested_seconds)s, %(requested_ttl_seconds)s, %(parts)s, %(created_at)s,
        %(expires_at)s, %(settled_at)s, %(updated_at)s)
ON CONFLICT (account_id, hold_id) DO UPDATE SET
  state = EXCLUDED.state, held_seconds = EXCLUDED.held_seconds, committed_seconds = EXCLUDED.committed_seconds,
  expired_seconds = EXCLUDED.expired_seconds, parts = EXCLUDED.parts, expires_at = EXCLUDED.expires_at,
  settled_at = EXCLUDED.settled_at, updated_at = EXCLUDED.updated_at
"""


class PostgresHolds:
    def __init__(self, driver: Driver):
        self._driver = driver
        self.pending: list[tuple[Hold, datetime]] = []

    async def open_and_one(self, account_id: str, hold_id: str | None) -> list[Hold]:
        cursor = await self._driver.execute(_OPEN_AND_ONE, {"account_id": account_id, "hold_id": hold_id})
        return [_decode(account_id, row) for row in await cursor.fetchall()]

    async def put(self, hold: Hold, now: datetime) -> None:
        self.pending.append((hold, now))

    async def flush(self) -> None:
        pending, self.pending = self.pending, []
        for hold, now in pending:
            await self._driver.execute(_UPSERT, _encode(hold, now))


def _decode(account_id: str, row: Sequence[Any]) -> Hold:
    (hold_id, operation, state, held, committed, expired, requested, requested_ttl, parts, created_at, expires_at,
     settled_at) = row
    return Hold(
        account_id=account_id, hold_id=hold_id, operation=operation, held_seconds=held, committed_seconds=committed,
        state=HoldState(state), created_at=created_at, expires_at=expires_at, requested_seconds=requested,
        requested_ttl_seconds=requested_ttl, parts=tuple(HeldPart(seq, seconds) for seq, seconds in parts),
        settled_at=settled_at, expired_seconds=expired,
    )


def _encode(hold: Hold, now: datetime) -> dict[str, Any]:
    return {
        "account_id": hold.account_id, "hold_id": hold.hold_id, "operation": hold.operation, "state": str(hold.state),
        "held_seconds": hold.held_seconds, "committed_seconds": hold.committed_seconds,
        "expired_seconds": hold.expired_seconds, "requested_seconds": hold.requested_seconds,
        "requested_ttl_seconds": hold.requested_ttl_seconds,
        "parts": Jsonb([[part.bucket_seq, part.seconds] for part in hold.parts]),
        "created_at": hold.created_at, "expires_at": hold.expires_at, "settled_at": hold.settled_at, "updated_at": now,
    }
