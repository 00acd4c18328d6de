"""audit_entries: the operator actions' trail (service/ports.AuditTrail). An entry is inserted on the
transaction of the change it records; its idempotency key is unique over the table, so a second
request with the same key writes nothing (and its transaction rolls its change back). A refund
intent holds its key too (adapters/db/idempotency_keys.py): an entry of another request under it is
refused (IdempotencyKeyReused), so the refund's own entry can still be written when it completes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from billing.adapters.db.driver import Driver
from billing.adapters.db.idempotency_keys import lock_operator_key
from billing.domain.audit import AuditEntry, AuditFilter, AuditPosition, detail_json
from billing.domain.balance import BalanceTotals
from billing.domain.errors import IdempotencyKeyReused

_COLUMNS = ("account_id, audit_id, action, operator_key_id, reason, created_at, before_totals, after_totals, "
            "detail, idempotency_key, request_fingerprint")
_NEWEST_FIRST = "created_at DESC, audit_id DESC"


class PostgresAuditTrail:
    def __init__(self, driver: Driver):
        self._driver = driver

    async def add(self, entry: AuditEntry) -> bool:
        await lock_operator_key(self._driver, entry.idempotency_key)
        held = await self._driver.execute(
            "SELECT 1 FROM refund_intents WHERE idempotency_key = %s AND request_fingerprint <> %s",
            (entry.idempotency_key, entry.request_fingerprint))
        if await held.fetchone() is not None:
            raise IdempotencyKeyReused("idempotency_key was used for a different request (a refund)",
                                       field="idempotency_key")
        cursor = await self._driver.execute(
            f"INSERT INTO audit_entries ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s) "
            "ON CONFLICT (idempotency_key) DO NOTHING RETURNING audit_id",
            (entry.account_id, entry.audit_id, entry.action, entry.operator_key_id, entry.reason, entry.created_at,
             _totals_json(entry.before), _totals_json(entry.after), entry.detail_json, entry.idempotency_key,
             entry.request_fingerprint),
        )
        return await cursor.fetchone() is not None

    async def by_idempotency_key(self, idempotency_key: str) -> AuditEntry | None:
        cursor = await self._driver.execute(
            f"SELECT {_COLUMNS} FROM audit_entries WHERE idempotency_key = %s", (idempotency_key,))
        row = await cursor.fetchone()
        return None if row is None else _entry(row)

    async def page(self, where: AuditFilter, before: AuditPosition | None, limit: int) -> list[AuditEntry]:
        conditions: list[str] = []
        params: dict[str, Any] = {"limit": limit}
        for column, value in (("account_id", where.account_id), ("action", where.action),
                              ("operator_key_id", where.operator_key_id)):
            if value is not None:
                conditions.append(f"{column} = %({column})s")
                params[column] = value
        if where.from_at is not None:
            conditions.append("created_at >= %(from_at)s")
            params["from_at"] = where.from_at
        if where.to_at is not None:
            conditions.append("created_at < %(to_at)s")
            params["to_at"] = where.to_at
        if before is not None:
            # The first bound is the index's; the row comparison settles ties of created_at.
            conditions.append("created_at <= %(before_at)s AND (created_at, audit_id) < (%(before_at)s, %(before_id)s)")
            params.update(before_at=before.created_at, before_id=before.audit_id)
        where_sql = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        cursor = await self._driver.execute(
            f"SELECT {_COLUMNS} FROM audit_entries {where_sql} ORDER BY {_NEWEST_FIRST} LIMIT %(limit)s", params)
        return [_entry(row) for row in await cursor.fetchall()]


def _totals_json(totals: BalanceTotals | None) -> Jsonb | None:
    if totals is None:
        return None
    return Jsonb({
        "total_seconds": totals.total_seconds, "paid_seconds": totals.paid_seconds,
        "bonus_seconds": totals.bonus_seconds, "held_seconds": totals.held_seconds,
        "next_expiry_at": totals.next_expiry_at.isoformat() if totals.next_expiry_at else None,
    })


def _totals(document: Any) -> BalanceTotals | None:
    if document is None:
        return None
    expiry = document.get("next_expiry_at")
    return BalanceTotals(
        total_seconds=document["total_seconds"], paid_seconds=document["paid_seconds"],
        bonus_seconds=document["bonus_seconds"], held_seconds=document.get("held_seconds", 0),
        next_expiry_at=datetime.fromisoformat(expiry) if expiry else None,
    )


def _entry(row: Any) -> AuditEntry:
    (account_id, audit_id, action, operator_key_id, reason, created_at, before, after, detail, key,
     fingerprint) = row
    return AuditEntry(
        audit_id=audit_id, account_id=account_id, action=action, operator_key_id=operator_key_id, reason=reason,
        created_at=created_at, before=_totals(before), after=_totals(after), detail_json=detail_json(detail),
        idempotency_key=key, request_fingerprint=fingerprint,
    )
