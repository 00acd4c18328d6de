"""The outbox's deliveries on PostgreSQL (service/webhook_sender_ports.py OutboundQueue), shared by every replica.

Only the head of each (account, endpoint) line is ever due: a delivery is written with
next_attempt_at = now when nothing earlier of its line is pending, else 'infinity' (waiting its
turn), and the record that finishes a delivery (delivered or failed for good) makes the next one of
its line due. So the claim is one scan of the partial index webhook_deliveries_due for
next_attempt_at <= now, whatever the backlog of waiting deliveries, and other lines flow on.

The claim leases with next_attempt_at itself (= lease_until): a leased delivery is not due until its
lease runs out, then any sender claims it again. `FOR UPDATE SKIP LOCKED`: claimers never wait on
each other; the lease is committed before the send.

Dispatch and the records that finish a delivery are the two writers of a line's turn: they exclude
each other with one advisory lock (the dispatcher's exclusive, a record's shared, so records never
wait for each other), so a delivery written while its predecessor finishes is never left waiting
for a turn that already passed. Dispatching is one statement per batch: one dispatcher at a time,
across replicas, is plenty; it takes each account's undispatched events whole (a batch never cuts
an account's events, which would hand the turn to a later one), with FOR UPDATE and not SKIP LOCKED:
under the advisory lock nothing is there to skip, and skipping a row could cut an account's events.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from billing.adapters.db.delivery_lines import TURN_LOCK
from billing.adapters.db.unit_of_work import DRIVER_OUTAGES
from billing.domain.delivery_outcomes import DELIVERED, ERROR_TEXT_MAX, PENDING, AttemptResult, Outcome
from billing.service.ports import Unavailable
from billing.service.webhook_sender_ports import ClaimedDelivery, EndpointShares


# How many due deliveries a claim looks at for each one it may take: room for the ones of endpoints
# with little room left (the window cuts them) without reading far past the batch.
CLAIM_SCAN_FACTOR = 4

_DISPATCH = """
WITH accounts_first AS (
  SELECT DISTINCT account_id FROM (
    SELECT account_id FROM outbound_events WHERE NOT dispatched ORDER BY created_at LIMIT %(limit)s
  ) oldest
), batch AS (
  SELECT o.account_id, o.seq, o.event_id, o.type, o.created_at
  FROM outbound_events o JOIN accounts_first a ON a.account_id = o.account_id
  WHERE NOT o.dispatched
  FOR UPDATE OF o
), marked AS (
  UPDATE outbound_events o SET dispatched = true FROM batch b
  WHERE o.account_id = b.account_id AND o.seq = b.seq
  RETURNING o.seq
), targets AS (
  SELECT b.account_id, b.seq, b.event_id, b.type, e.endpoint_id,
         row_number() OVER (PARTITION BY b.account_id, e.endpoint_id ORDER BY b.seq) AS place
  FROM batch b JOIN webhook_endpoints e
    ON e.deleted_at IS NULL AND e.created_at <= b.created_at
   AND (cardinality(e.event_types) = 0 OR b.type = ANY(e.event_types))
), inserted AS (
  INSERT INTO webhook_deliveries (account_id, endpoint_id, seq, event_id, event_type, status, attempts,
                                  next_attempt_at, created_at, updated_at)
  SELECT t.account_id, t.endpoint_id, t.seq, t.event_id, t.type, 'pending', 0,
         CASE WHEN t.place = 1 AND NOT EXISTS (
                SELECT 1 FROM webhook_deliveries p
                WHERE p.account_id = t.account_id AND p.endpoint_id = t.endpoint_id AND p.status = 'pending')
              THEN %(now)s ELSE 'infinity'::timestamptz END,
         %(now)s, %(now)s
  FROM targets t
  ON CONFLICT DO NOTHING
  RETURNING 1
)
SELECT (SELECT count(*) FROM marked) AS events, (SELECT count(*) FROM inserted) AS deliveries
"""

# Due deliveries, oldest due first, at most `room` of each endpoint: its share of this sender's slots
# (per_endpoint, or failing_per_endpoint while it fails) less what this sender has in flight to it,
# so an endpoint that hangs for its whole timeout holds a few slots and the other endpoints flow on.
# Endpoints with no room left (a failing one at its 2 included) are left out of the scan itself, else
# their old due heads would fill it and the window keep none; the window over the locked candidates
# cuts the rest (rows locked and not taken are free again when this short transaction ends).
_CLAIM = """
WITH busy AS (
  SELECT * FROM unnest(%(busy_endpoints)s::text[], %(busy_counts)s::int[]) AS b(endpoint_id, in_flight)
), candidates AS (
  SELECT d.account_id, d.endpoint_id, d.seq, d.next_attempt_at, e.failing_since IS NOT NULL AS failing
  FROM webhook_deliveries d
  JOIN webhook_endpoints e ON e.endpoint_id = d.endpoint_id AND e.enabled AND e.deleted_at IS NULL
  LEFT JOIN busy b ON b.endpoint_id = d.endpoint_id
  WHERE d.status = 'pending' AND d.next_attempt_at <= %(now)s AND d.endpoint_id <> ALL(%(full_endpoints)s::text[])
    AND coalesce(b.in_flight, 0)
        < CASE WHEN e.failing_since IS NOT NULL THEN %(failing_per_endpoint)s ELSE %(per_endpoint)s END
  ORDER BY d.next_attempt_at
  LIMIT %(scan)s
  FOR UPDATE OF d SKIP LOCKED
), ranked AS (
  SELECT c.*, row_number() OVER (PARTITION BY c.endpoint_id ORDER BY c.next_attempt_at, c.account_id, c.seq) AS place
  FROM candidates c
), due AS (
  SELECT r.account_id, r.endpoint_id, r.seq FROM ranked r LEFT JOIN busy b ON b.endpoint_id = r.endpoint_id
  WHERE r.place <= CASE WHEN r.failing THEN %(failing_per_endpoint)s ELSE %(per_endpoint)s END - coalesce(b.in_flight, 0)
  ORDER BY r.next_attempt_at
  LIMIT %(limit)s
)
UPDATE webhook_deliveries w
SET lease_until = %(lease_until)s, next_attempt_at = %(lease_until)s, updated_at = %(now)s
FROM due, outbound_events o, webhook_endpoints e
WHERE w.account_id = due.account_id AND w.endpoint_id = due.endpoint_id AND w.seq = due.seq
  AND o.account_id = w.account_id AND o.seq = w.seq AND e.endpoint_id = w.endpoint_id
RETURNING w.account_id, w.endpoint_id, w.seq, w.event_id, w.event_type, o.created_at, o.payload, w.attempts,
          e.url, e.secret, e.previous_secret, e.previous_secret_until, e.failing_since
"""

_FINISH_ATTEMPT = """
UPDATE webhook_deliveries
SET status = %(status)s, attempts = attempts + 1, next_attempt_at = %(next_attempt_at)s, lease_until = NULL,
    last_status_code = %(status_code)s, last_error = %(error)s, updated_at = %(now)s, finished_at = %(finished_at)s
WHERE account_id = %(account_id)s AND endpoint_id = %(endpoint_id)s AND seq = %(seq)s
  AND status = 'pending' AND lease_until = %(lease_until)s
RETURNING attempts
"""

_ADD_ATTEMPT = """
INSERT INTO webhook_attempts (account_id, endpoint_id, seq, attempt, attempted_at, status_code, latency_ms,
                              response_excerpt, error)
VALUES (%(account_id)s, %(endpoint_id)s, %(seq)s, %(attempt)s, %(now)s, %(status_code)s, %(latency_ms)s,
        %(excerpt)s, %(error)s)
"""

# The first pending delivery of the line takes its turn, if it is waiting (the line's order is its
# seq; the primary key's index walks it). The first, not the next after the finished one: a replayed
# earlier event goes before the later ones; and only a waiting one: one due or in flight keeps its time.
_NEXT_TURN = """
UPDATE webhook_deliveries SET next_attempt_at = %(now)s, updated_at = %(now)s
WHERE (account_id, endpoint_id, seq) = (
  SELECT account_id, endpoint_id, seq FROM webhook_deliveries
  WHERE account_id = %(account_id)s AND endpoint_id = %(endpoint_id)s AND status = 'pending'
  ORDER BY seq LIMIT 1)
  AND next_attempt_at = 'infinity'::timestamptz
"""


_ENDPOINT_SUCCEEDED = """
UPDATE webhook_endpoints SET failing_since = NULL, updated_at = %(now)s
WHERE endpoint_id = %(endpoint_id)s AND failing_since IS NOT NULL
"""

_ENDPOINT_FAILING = """
UPDATE webhook_endpoints SET failing_since = %(now)s, updated_at = %(now)s
WHERE endpoint_id = %(endpoint_id)s AND failing_since IS NULL
"""

_ENDPOINT_DISABLED = """
UPDATE webhook_endpoints SET enabled = false, disabled_reason = %(reason)s, updated_at = %(now)s
WHERE endpoint_id = %(endpoint_id)s AND enabled
"""


class PostgresOutboundQueue:
    def __init__(self, pool: AsyncConnectionPool):
        self._pool = pool

    async def dispatch(self, now: datetime, limit: int) -> tuple[int, int]:
        try:
            async with self._pool.connection() as connection:
                async with connection.transaction():
                    await connection.execute("SELECT pg_advisory_xact_lock(%s)", (TURN_LOCK,))
                    cursor = await connection.execute(_DISPATCH, {"now": now, "limit": limit})
                    row = await cursor.fetchone()
        except DRIVER_OUTAGES as outage:
            raise Unavailable(str(outage), kind="database") from outage
        assert row is not None
        return int(row[0]), int(row[1])

    async def claim(self, now: datetime, lease_until: datetime, limit: int, shares: EndpointShares) -> list[ClaimedDelivery]:
        busy = dict(shares.in_flight)
        full = [endpoint for endpoint, count in busy.items() if count >= shares.per_endpoint]
        params = {
            "now": now, "lease_until": lease_until, "limit": limit, "scan": limit * CLAIM_SCAN_FACTOR,
            "busy_endpoints": list(busy), "busy_counts": list(busy.values()), "full_endpoints": full,
            "per_endpoint": shares.per_endpoint, "failing_per_endpoint": shares.failing_per_endpoint,
        }
        try:
            async with self._pool.connection() as connection:
                async with connection.transaction():
                    cursor = connection.cursor(row_factory=dict_row)
                    await cursor.execute(_CLAIM, params)
                    rows = await cursor.fetchall()
        except DRIVER_OUTAGES as outage:
            raise Unavailable(str(outage), kind="database") from outage
        claimed = [_claimed(row, now, lease_until) for row in rows]
        claimed.sort(key=lambda delivery: (delivery.account_id, delivery.seq))
        return claimed

    async def record(self, delivery: ClaimedDelivery, result: AttemptResult, outcome: Outcome, now: datetime) -> bool:
        key = {"account_id": delivery.account_id, "endpoint_id": delivery.endpoint_id, "seq": delivery.seq}
        error = result.error[:ERROR_TEXT_MAX] if result.error else None
        final = outcome.status != PENDING
        try:
            async with self._pool.connection() as connection:
                async with connection.transaction():
                    if final:
                        await connection.execute("SELECT pg_advisory_xact_lock_shared(%s)", (TURN_LOCK,))
                    cursor = await connection.execute(_FINISH_ATTEMPT, key | {
                        "status": outcome.status, "status_code": result.status_code, "error": error, "now": now,
                        "next_attempt_at": outcome.next_attempt_at or now, "lease_until": delivery.lease_until,
                        "finished_at": now if final else None,
                    })
                    row = await cursor.fetchone()
                    if row is None:  # the lease ran out and another sender holds it: this attempt is not ours
                        return False
                    await connection.execute(_ADD_ATTEMPT, key | {
                        "attempt": row[0], "now": now, "status_code": result.status_code,
                        "latency_ms": result.latency_ms, "excerpt": result.excerpt, "error": error,
                    })
                    if final:
                        await connection.execute(_NEXT_TURN, key | {"now": now})
                    endpoint = {"endpoint_id": delivery.endpoint_id, "now": now}
                    if outcome.status == DELIVERED:
                        await connection.execute(_ENDPOINT_SUCCEEDED, endpoint)
                    elif outcome.endpoint_failing:
                        await connection.execute(_ENDPOINT_FAILING, endpoint)
                    if outcome.disable_reason:
                        await connection.execute(_ENDPOINT_DISABLED, endpoint | {"reason": outcome.disable_reason})
        except DRIVER_OUTAGES as outage:
            raise Unavailable(str(outage), kind="database") from outage
        return True


def _claimed(row: dict[str, Any], now: datetime, lease_until: datetime) -> ClaimedDelivery:
    secrets: tuple[str, ...] = (row["secret"],)
    previous_until = row["previous_secret_until"]
    if row["previous_secret"] and previous_until is not None and previous_until > now:
        secrets += (row["previous_secret"],)
    return ClaimedDelivery(
        account_id=row["account_id"], endpoint_id=row["endpoint_id"], seq=row["seq"], event_id=row["event_id"],
        event_type=row["event_type"], created_at=row["created_at"], payload=row["payload"], attempts=row["attempts"],
        url=row["url"], secrets=secrets, failing_since=row["failing_since"], lease_until=lease_until,
    )
