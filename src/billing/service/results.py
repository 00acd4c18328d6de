"""Plain results the use cases return, and the JSON form idempotent replays are stored in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

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


def _time_to_json(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _time_from_json(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def totals_to_json(totals: BalanceTotals) -> dict[str, Any]:
    return {
        "total_seconds": totals.total_seconds,
        "paid_seconds": totals.paid_seconds,
        "bonus_seconds": totals.bonus_seconds,
        "next_expiry_at": _time_to_json(totals.next_expiry_at),
    }


def totals_from_json(raw: dict[str, Any]) -> BalanceTotals:
    return BalanceTotals(
        total_seconds=raw["total_seconds"],
        paid_seconds=raw["paid_seconds"],
        bonus_seconds=raw["bonus_seconds"],
        next_expiry_at=_time_from_json(raw["next_expiry_at"]),
    )


def consume_result_to_json(result: ConsumeResult) -> dict[str, Any]:
    return {
        "user_id": result.user_id,
        "operation": result.operation,
        "consumed_seconds": result.consumed_seconds,
        "taken": [
            {"source": t.source, "seconds": t.seconds, "expires_at": _time_to_json(t.expires_at)}
            for t in result.taken
        ],
        "totals": totals_to_json(result.totals),
        "idempotency_key": result.idempotency_key,
    }


def consume_result_from_json(raw: dict[str, Any], *, replayed: bool) -> ConsumeResult:
    return ConsumeResult(
        user_id=raw["user_id"],
        operation=raw["operation"],
        consumed_seconds=raw["consumed_seconds"],
        taken=tuple(
            TakenFromBucket(t["source"], t["seconds"], _time_from_json(t["expires_at"])) for t in raw["taken"]
        ),
        totals=totals_from_json(raw["totals"]),
        idempotency_key=raw["idempotency_key"],
        replayed=replayed,
    )


def grant_result_to_json(result: GrantResult) -> dict[str, Any]:
    return {
        "user_id": result.user_id,
        "source": result.source,
        "seconds": result.seconds,
        "totals": totals_to_json(result.totals),
        "idempotency_key": result.idempotency_key,
    }


def grant_result_from_json(raw: dict[str, Any], *, replayed: bool) -> GrantResult:
    return GrantResult(
        user_id=raw["user_id"],
        source=raw["source"],
        seconds=raw["seconds"],
        totals=totals_from_json(raw["totals"]),
        idempotency_key=raw["idempotency_key"],
        replayed=replayed,
    )
