"""Webhook endpoints and the delivery log on PostgreSQL (issue 22's admin surface; ports
WebhookEndpoints and DeliveryLog).

Every read of the log is index-friendly: for each status asked for (one, or all three) a range of
an index ordered by created_at (webhook_deliveries_by_endpoint, _by_account or _by_status, per the
filter), the ranges merged newest first and cut at the page's size; attempts come for the page's
deliveries only, by primary key. Replays go by webhook_deliveries_by_event and _by_status (or
_by_endpoint).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from billing.adapters.db.driver import Driver
from billing.adapters.db.delivery_lines import LOCK_LINES, REHEAD_LINES, TURN_LOCK
from billing.domain.webhook_endpoints import (
    DELIVERY_STATUSES, Delivery, DeliveryAttempt, DeliveryFilter, DeliveryPosition, WebhookEndpoint,
)

_ENDPOINT_COLUMNS = (
    "endpoint_id, url, event_types, description, enabled, disabled_reason, secret, previous_secret, "
    "previous_secret_until, failing_since, created_at, updated_at, deleted_at"
)
_DELIVERY_COLUMNS = (
    "account_id, endpoint_id, seq, event_id, event_type, status, attempts, "
    "NULLIF(next_attempt_at, 'infinity'::timestamptz) AS next_attempt_at, "  # waiting for its turn: no time yet
    "last_status_code, last_error, created_at, finished_at"
)
_NEWEST_FIRST = "created_at DESC, account_id DESC, endpoint_id DESC, seq DESC"
# Back to pending, waiting: REHEAD_LINES then gives each line its turn in seq order.
_REPLAYED = ("status = 'pending', next_attempt_at = 'infinity'::timestamptz, finished_at = NULL, lease_until = NULL, "
             "updated_at = %(now)s")
_REPLAYED_LINES = "RETURNING d.account_id, d.endpoint_id"
_ENDPOINT_ALIVE = "EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.endpoint_id = d.endpoint_id AND e.deleted_at IS NULL)"


class PostgresWebhookEndpoints:
    def __init__(self, driver: Driver):
        self._driver = driver

    async def add(self, endpoint: WebhookEndpoint) -> None:
        e = endpoint
        await self._driver.execute(
            f"INSERT INTO webhook_endpoints ({_ENDPOINT_COLUMNS}) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (e.endpoint_id, e.url, list(e.event_types), e.description, e.enabled, e.disabled_reason, e.secret,
             e.previous_secret, e.previous_secret_until, e.failing_since, e.created_at, e.updated_at, e.deleted_at),
        )

    async def get(self, endpoint_id: str, *, lock: bool = False) -> WebhookEndpoint | None:
        cursor = await self._driver.execute(
            f"SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE endpoint_id = %s" + (" FOR UPDATE" if lock else ""),
            (endpoint_id,),
        )
        row = await cursor.fetchone()
        return None if row is None else _endpoint(row)

    async def listed(self) -> list[WebhookEndpoint]:
        cursor = await self._driver.execute(
            f"SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE deleted_at IS NULL ORDER BY created_at, endpoint_id"
        )
        return [_endpoint(row) for row in await cursor.fetchall()]

    async def put(self, endpoint: WebhookEndpoint) -> None:
        e = endpoint
        await self._driver.execute(
            "UPDATE webhook_endpoints SET enabled = %s, disabled_reason = %s, failing_since = %s, secret = %s, "
            "previous_secret = %s, previous_secret_until = %s, deleted_at = %s, updated_at = %s WHERE endpoint_id = %s",
            (e.enabled, e.disabled_reason, e.failing_since, e.secret, e.previous_secret, e.previous_secret_until,
             e.deleted_at, e.updated_at, e.endpoint_id),
        )

    async def fail_pending_deliveries(self, endpoint_id: str, reason: str, now: datetime) -> int:
        await self._driver.execute("SELECT pg_advisory_xact_lock(%s)", (TURN_LOCK,))  # no dispatch meanwhile
        cursor = await self._driver.execute(
            "UPDATE webhook_deliveries SET status = 'failed', last_error = %s, finished_at = %s, lease_until = NULL, "
            "updated_at = %s WHERE endpoint_id = %s AND status = 'pending'",
            (reason, now, now, endpoint_id),
        )
        return cursor.rowcount


class PostgresDeliveryLog:
    def __init__(self, driver: Driver):
        self._driver = driver

    async def page(self, where: DeliveryFilter, before: DeliveryPosition | None, limit: int) -> list[Delivery]:
        conditions = ["status = %(status_{i})s"]
        params: dict[str, Any] = {"limit": limit}
        if where.endpoint_id is not None:
            conditions.append("endpoint_id = %(endpoint_id)s")
            params["endpoint_id"] = where.endpoint_id
        if where.account_id is not None:
            conditions.append("account_id = %(account_id)s")
            params["account_id"] = where.account_id
        if before is not None:
            # The first bound is the index's; the row comparison settles ties of created_at.
            conditions.append("created_at <= %(before_at)s AND (created_at, account_id, endpoint_id, seq) < "
                              "(%(before_at)s, %(before_account)s, %(before_endpoint)s, %(before_seq)s)")
            params.update(before_at=before.created_at, before_account=before.account_id,
                          before_endpoint=before.endpoint_id, before_seq=before.seq)
        statuses = (where.status,) if where.status is not None else DELIVERY_STATUSES
        ranges = []
        for i, status in enumerate(statuses):
            params[f"status_{i}"] = status
            condition = " AND ".join(conditions).replace("{i}", str(i))
            ranges.append(f"(SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries WHERE {condition} "
                          f"ORDER BY {_NEWEST_FIRST} LIMIT %(limit)s)")
        cursor = await self._driver.execute(
            f"SELECT {_DELIVERY_COLUMNS} FROM ({' UNION ALL '.join(ranges)}) AS log ORDER BY {_NEWEST_FIRST} "
            "LIMIT %(limit)s",
            params,
        )
        rows = await cursor.fetchall()
        attempts = await self._attempts([(r[0], r[1], r[2]) for r in rows])
        return [_delivery(row, attempts.get((row[0], row[1], row[2]), ())) for row in rows]

    async def _attempts(self, keys: list[tuple[str, str, int]]) -> dict[tuple[str, str, int], tuple[DeliveryAttempt, ...]]:
        if not keys:
            return {}
        cursor = await self._driver.execute(
            "SELECT a.account_id, a.endpoint_id, a.seq, a.attempt, a.attempted_at, a.status_code, a.latency_ms, "
            "a.response_excerpt, a.error FROM webhook_attempts a "
            "JOIN unnest(%s::text[], %s::text[], %s::bigint[]) AS k(account_id, endpoint_id, seq) "
            "ON (a.account_id, a.endpoint_id, a.seq) = (k.account_id, k.endpoint_id, k.seq) "
            "ORDER BY a.account_id, a.endpoint_id, a.seq, a.attempt",
            ([k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys]),
        )
        found: dict[tuple[str, str, int], list[DeliveryAttempt]] = {}
        for account_id, endpoint_id, seq, attempt, at, status_code, latency_ms, excerpt, error in await cursor.fetchall():
            found.setdefault((account_id, endpoint_id, seq), []).append(
                DeliveryAttempt(attempt, at, status_code, latency_ms, excerpt, error))
        return {key: tuple(value) for key, value in found.items()}

    async def replay_event(self, event_id: str, now: datetime) -> int | None:
        cursor = await self._driver.execute(
            "SELECT EXISTS (SELECT 1 FROM webhook_deliveries WHERE event_id = %s)", (event_id,))
        row = await cursor.fetchone()
        if row is None or not row[0]:
            return None
        await self._driver.execute("SELECT pg_advisory_xact_lock(%s)", (TURN_LOCK,))  # no dispatch or record meanwhile
        cursor = await self._driver.execute(
            f"UPDATE webhook_deliveries d SET {_REPLAYED} "
            f"WHERE d.event_id = %(event_id)s AND d.status <> 'pending' AND {_ENDPOINT_ALIVE} {_REPLAYED_LINES}",
            {"event_id": event_id, "now": now},
        )
        return await self._rehead(await cursor.fetchall(), now)

    async def replay_failed(self, since: datetime, endpoint_id: str | None, now: datetime, limit: int) -> int:
        of_endpoint = "AND d.endpoint_id = %(endpoint_id)s" if endpoint_id is not None else ""
        await self._driver.execute("SELECT pg_advisory_xact_lock(%s)", (TURN_LOCK,))  # no dispatch or record meanwhile
        cursor = await self._driver.execute(
            f"UPDATE webhook_deliveries d SET {_REPLAYED} FROM ("
            "  SELECT p.account_id, p.endpoint_id, p.seq FROM webhook_deliveries p"
            f"  WHERE p.status = 'failed' AND p.created_at >= %(since)s {of_endpoint.replace('d.', 'p.')}"
            f"    AND {_ENDPOINT_ALIVE.replace('d.endpoint_id', 'p.endpoint_id')}"
            "  ORDER BY p.created_at LIMIT %(limit)s FOR UPDATE OF p SKIP LOCKED"
            ") AS picked WHERE (d.account_id, d.endpoint_id, d.seq) = (picked.account_id, picked.endpoint_id, picked.seq)"
            f" {_REPLAYED_LINES}",
            {"since": since, "endpoint_id": endpoint_id, "now": now, "limit": limit},
        )
        return await self._rehead(await cursor.fetchall(), now)

    async def _rehead(self, lines: list[Any], now: datetime) -> int:
        if lines:
            params = {"account_ids": [line[0] for line in lines], "endpoint_ids": [line[1] for line in lines], "now": now}
            await self._driver.execute(LOCK_LINES, params)
            await self._driver.execute(REHEAD_LINES, params)
        return len(lines)


def _endpoint(row: Any) -> WebhookEndpoint:
    (endpoint_id, url, event_types, description, enabled, disabled_reason, secret, previous_secret,
     previous_secret_until, failing_since, created_at, updated_at, deleted_at) = row
    return WebhookEndpoint(
        endpoint_id=endpoint_id, url=url, event_types=tuple(event_types), description=description, enabled=enabled,
        disabled_reason=disabled_reason, secret=secret, previous_secret=previous_secret,
        previous_secret_until=previous_secret_until, failing_since=failing_since, created_at=created_at,
        updated_at=updated_at, deleted_at=deleted_at,
    )


def _delivery(row: Any, attempts: tuple[DeliveryAttempt, ...]) -> Delivery:
    (account_id, endpoint_id, seq, event_id, event_type, status, attempt_count, next_attempt_at, last_status_code,
     last_error, created_at, finished_at) = row
    return Delivery(
        account_id=account_id, endpoint_id=endpoint_id, seq=seq, event_id=event_id, event_type=event_type,
        status=status, attempts=attempt_count, next_attempt_at=next_attempt_at if status == "pending" else None,
        last_status_code=last_status_code, last_error=last_error, created_at=created_at, finished_at=finished_at,
        attempt_log=attempts,
    )
