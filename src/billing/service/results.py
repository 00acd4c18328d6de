"""Plain results of the write use cases; stored as their idempotent answers by service/answer_codec.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from billing.domain.balance import BalanceTotals


@dataclass(frozen=True)
class TakenFromBucket:
    source: str
    seconds: int
    expires_at: datetime | None


@dataclass(frozen=True)
class ConsumeResult:
    user_id: str
    operation: str
    consumed_seconds: int
    taken: tuple[TakenFromBucket, ...]
    totals: BalanceTotals
    idempotency_key: str
    replayed: bool = False


@dataclass(frozen=True)
class GrantResult:
    user_id: str
    source: str
    seconds: int
    totals: BalanceTotals
    idempotency_key: str
    replayed: bool = False


@dataclass(frozen=True)
class HoldView:
    """A hold as callers see it (the contract's Hold)."""

    hold_id: str
    user_id: str
    operation: str
    held_seconds: int
    committed_seconds: int
    state: str  # open | settled | expired
    expires_at: datetime


@dataclass(frozen=True)
class HoldResult:
    hold: HoldView
    totals: BalanceTotals
    replayed: bool = False


@dataclass(frozen=True)
class OpenHolds:
    user_id: str
    holds: tuple[HoldView, ...]  # oldest first
    totals: BalanceTotals
