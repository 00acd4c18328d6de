"""webhook_events as the operator's inbox (service/ports.StripeInbox): read a page, one event, and
write what a reprocess made of it."""

from __future__ import annotations

from typing import Any

from billing.adapters.db.driver import Driver
from billing.domain.stripe_inbox import InboxFilter, InboxPosition, StripeEventRecord

_COLUMNS = "event_id, event_type, outcome, account_id, detail, received_at, payload, payload_text"
_NEWEST_FIRST = "received_at DESC, event_id DESC"


class PostgresStripeInbox:
    def __init__(self, driver: Driver):
        self._driver = driver

    async def get(self, event_id: str, *, lock: bool = False) -> StripeEventRecord | None:
        cursor = await self._driver.execute(
            f"SELECT {_COLUMNS} FROM webhook_events WHERE event_id = %s" + (" FOR UPDATE" if lock else ""), (event_id,))
        row = await cursor.fetchone()
        return None if row is None else _record(row)

    async def page(self, where: InboxFilter, before: InboxPosition | None, limit: int) -> list[StripeEventRecord]:
        conditions: list[str] = []
        params: dict[str, Any] = {"limit": limit}
        if where.outcomes is not None:
            conditions.append("outcome = ANY(%(outcomes)s)")
            params["outcomes"] = list(where.outcomes)
        if where.account_id is not None:
            conditions.append("account_id = %(account_id)s")
            params["account_id"] = where.account_id
        if before is not None:
            conditions.append("(received_at, event_id) < (%(before_at)s, %(before_id)s)")
            params.update(before_at=before.received_at, before_id=before.event_id)
        where_sql = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        cursor = await self._driver.execute(
            f"SELECT {_COLUMNS} FROM webhook_events {where_sql} ORDER BY {_NEWEST_FIRST} LIMIT %(limit)s", params)
        return [_record(row) for row in await cursor.fetchall()]

    async def set_outcome(self, event_id: str, outcome: str, account_id: str | None, detail: str) -> None:
        await self._driver.execute(
            "UPDATE webhook_events SET outcome = %s, account_id = %s, detail = %s WHERE event_id = %s",
            (outcome, account_id, detail, event_id),
        )


def _record(row: Any) -> StripeEventRecord:
    event_id, event_type, outcome, account_id, detail, received_at, payload, payload_text = row
    return StripeEventRecord(event_id, event_type, outcome, account_id, detail, received_at, payload, payload_text)
