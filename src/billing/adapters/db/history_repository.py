"""Read models over the ledger: event history pages and usage sums."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import cast, func, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import Date

from billing.adapters.db.tables import ledger_events
from billing.domain.wallet import EventType


@dataclass(frozen=True)
class EventRow:
    event_seq: int
    type: str
    seconds: int
    reason: str
    occurred_at: datetime
    metadata: dict[str, Any]


@dataclass(frozen=True)
class DailyOperationUsage:
    day: date
    operation: str
    seconds: int  # positive: seconds consumed


class HistoryRepository:
    def __init__(self, connection: AsyncConnection):
        self._connection = connection

    async def events_page(self, account_id: str, before_event_seq: int | None, limit: int) -> list[EventRow]:
        """Newest first; at most `limit` events with event_seq < before_event_seq."""
        query = select(
            ledger_events.c.event_seq, ledger_events.c.type, ledger_events.c.seconds, ledger_events.c.reason,
            ledger_events.c.occurred_at, ledger_events.c.metadata,
        ).where(ledger_events.c.account_id == account_id)
        if before_event_seq is not None:
            query = query.where(ledger_events.c.event_seq < before_event_seq)
        query = query.order_by(ledger_events.c.event_seq.desc()).limit(limit)
        rows = (await self._connection.execute(query)).all()
        return [EventRow(r.event_seq, r.type, r.seconds, r.reason, r.occurred_at, r.metadata) for r in rows]

    async def consumption_by_day(self, account_id: str, since: datetime, until: datetime) -> list[DailyOperationUsage]:
        day = cast(func.timezone("UTC", ledger_events.c.occurred_at), Date).label("day")
        query = (
            select(day, ledger_events.c.operation, func.sum(-ledger_events.c.seconds).label("seconds"))
            .where(
                ledger_events.c.account_id == account_id,
                ledger_events.c.type == EventType.CONSUMPTION,
                ledger_events.c.occurred_at >= since,
                ledger_events.c.occurred_at < until,
            )
            .group_by(day, ledger_events.c.operation)
        )
        rows = (await self._connection.execute(query)).all()
        return [DailyOperationUsage(r.day, r.operation, int(r.seconds)) for r in rows]
