"""Read models of the ledger the history use cases return."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any


@dataclass(frozen=True)
class EventRow:
    event_seq: int
    type: str
    seconds: int  # signed: credits positive, debits negative
    reason: str
    occurred_at: datetime
    metadata: dict[str, Any]


@dataclass(frozen=True)
class DailyOperationUsage:
    day: date
    operation: str
    seconds: int  # positive: seconds consumed
