"""Payments, the provider's customers of accounts, and handled webhook deliveries."""

from __future__ import annotations

import json
from datetime import datetime

from psycopg.types.json import Jsonb

from billing.adapters.db.driver import Driver
from billing.domain.auto_topup import RESEND_PENDING_AFTER
from billing.domain.payments import Payment
from billing.service.provider_events import DeliveryLookup, PlanChange

_PAYMENT_COLUMNS = (
    "kind, item_key, bucket_seq, amount_cents, currency, granted_seconds, paid_at, refunded_cents, "
    "refund_target_seconds, refund_removed_seconds, refund_unrecoverable_seconds"
)
# A stored payload is kept for an operator, not forever large: beyond this, the first part.
JSONB_DEPTH_MAX = 64  # Stripe's events nest about 6 deep
PAYLOAD_KEPT_BYTES = 256 * 1024


class PostgresPayments:
    """put() queues: a payment names the bucket its credit creates, which the unit of work
    writes at commit; the queued payments follow it there (flush)."""

    def __init__(self, driver: Driver):
        self._driver = driver
        self.pending: list[Payment] = []

    async def get(self, account_id: str, payment_id: str) -> Payment | None:
        cursor = await self._driver.execute(
            f"SELECT {_PAYMENT_COLUMNS} FROM payments WHERE account_id = %s AND payment_id = %s",
            (account_id, payment_id),
        )
        row = await cursor.fetchone()
        if row is None:
            return None
        (kind, item_key, bucket_seq, amount_cents, currency, granted_seconds, paid_at, refunded_cents,
         target, removed, unrecoverable) = row
        return Payment(
            account_id=account_id, payment_id=payment_id, kind=kind, item_key=item_key, bucket_seq=bucket_seq,
            amount_cents=amount_cents, currency=currency, granted_seconds=granted_seconds, paid_at=paid_at,
            refunded_cents=refunded_cents, refund_target_seconds=target, refund_removed_seconds=removed,
            refund_unrecoverable_seconds=unrecoverable,
        )

    async def put(self, payment: Payment) -> None:
        self.pending.append(payment)

    async def flush(self) -> None:
        pending, self.pending = self.pending, []
        for payment in pending:
            await self._write(payment)

    async def _write(self, payment: Payment) -> None:
        p = payment
        await self._driver.execute(
            f"INSERT INTO payments (account_id, payment_id, {_PAYMENT_COLUMNS}, updated_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now()) "
            "ON CONFLICT (account_id, payment_id) DO UPDATE SET refunded_cents = EXCLUDED.refunded_cents, "
            "refund_target_seconds = EXCLUDED.refund_target_seconds, "
            "refund_removed_seconds = EXCLUDED.refund_removed_seconds, "
            "refund_unrecoverable_seconds = EXCLUDED.refund_unrecoverable_seconds, updated_at = now()",
            (p.account_id, p.payment_id, p.kind, p.item_key, p.bucket_seq, p.amount_cents, p.currency,
             p.granted_seconds, p.paid_at, p.refunded_cents, p.refund_target_seconds, p.refund_removed_seconds,
             p.refund_unrecoverable_seconds),
        )


class PostgresPaymentProfiles:
    def __init__(self, driver: Driver):
        self._driver = driver

    async def customer_of(self, account_id: str) -> str | None:
        return await self._one("SELECT customer_id FROM payment_profiles WHERE account_id = %s", account_id)

    async def subscription_of(self, account_id: str) -> str | None:
        return await self._one("SELECT subscription_id FROM payment_profiles WHERE account_id = %s", account_id)

    async def account_of_customer(self, customer_id: str) -> str | None:
        return await self._one("SELECT account_id FROM payment_customers WHERE customer_id = %s", customer_id)

    async def add_customer(self, account_id: str, customer_id: str, now: datetime) -> None:
        await self._driver.execute(
            "INSERT INTO payment_profiles (account_id, customer_id, updated_at) VALUES (%s, %s, %s) "
            "ON CONFLICT (account_id) DO NOTHING",
            (account_id, customer_id, now),
        )
        await self._driver.execute(
            "INSERT INTO payment_customers (customer_id, account_id, created_at) VALUES (%s, %s, %s) "
            "ON CONFLICT (customer_id) DO NOTHING",
            (customer_id, account_id, now),
        )

    async def claim_payment(self, payment_id: str, account_id: str, now: datetime) -> str:
        cursor = await self._driver.execute(
            "WITH claimed AS (INSERT INTO payment_owners (payment_id, account_id, created_at) VALUES (%s, %s, %s) "
            "ON CONFLICT (payment_id) DO NOTHING RETURNING account_id) "
            "SELECT account_id FROM claimed UNION ALL SELECT account_id FROM payment_owners WHERE payment_id = %s",
            (payment_id, account_id, now, payment_id),
        )
        row = await cursor.fetchone()
        if row is not None:
            return str(row[0])
        # Another transaction claimed it after this statement's snapshot was taken: read it now.
        owner = await self._one("SELECT account_id FROM payment_owners WHERE payment_id = %s", payment_id)
        assert owner is not None, "a payment either was claimed now or had an owner"
        return owner

    async def set_subscription(self, account_id: str, subscription_id: str | None, now: datetime) -> None:
        await self._driver.execute(
            "UPDATE payment_profiles SET subscription_id = %s, updated_at = %s WHERE account_id = %s",
            (subscription_id, now, account_id),
        )

    async def _one(self, query: str, key: str) -> str | None:
        cursor = await self._driver.execute(query, (key,))
        row = await cursor.fetchone()
        return None if row is None else row[0]


class PostgresPlanChanges:
    def __init__(self, driver: Driver):
        self._driver = driver

    async def add(self, change: PlanChange) -> None:
        await self._driver.execute(
            "INSERT INTO plan_changes (account_id, price_id, subscription_id, from_plan_key, to_plan_key, currency, "
            "from_price_cents, period_start, period_end, resume_cancellation, requested_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (account_id, price_id) DO NOTHING",
            (change.account_id, change.price_id, change.subscription_id, change.from_plan_key, change.to_plan_key,
             change.currency, change.from_price_cents, change.period_start, change.period_end,
             change.resume_cancellation, change.requested_at),
        )

    async def get(self, account_id: str, price_id: str) -> PlanChange | None:
        cursor = await self._driver.execute(
            "SELECT account_id, price_id, subscription_id, from_plan_key, to_plan_key, currency, from_price_cents, "
            "period_start, period_end, resume_cancellation, requested_at FROM plan_changes "
            "WHERE account_id = %s AND price_id = %s",
            (account_id, price_id),
        )
        row = await cursor.fetchone()
        return None if row is None else PlanChange(*row)

    async def claim(self, account_id: str, price_id: str, invoice_id: str) -> bool:
        cursor = await self._driver.execute(
            "UPDATE plan_changes SET invoice_id = %s WHERE account_id = %s AND price_id = %s "
            "AND (invoice_id IS NULL OR invoice_id = %s) RETURNING 1",
            (invoice_id, account_id, price_id, invoice_id),
        )
        return await cursor.fetchone() is not None


class PostgresProviderEventInbox:
    def __init__(self, driver: Driver):
        self._driver = driver

    async def outcome_of(self, event_id: str) -> str | None:
        cursor = await self._driver.execute("SELECT outcome FROM webhook_events WHERE event_id = %s", (event_id,))
        row = await cursor.fetchone()
        return None if row is None else row[0]

    async def lookup(self, event_id: str, customer_id: str | None) -> DeliveryLookup:
        cursor = await self._driver.execute(
            "SELECT (SELECT outcome FROM webhook_events WHERE event_id = %s), "
            "(SELECT account_id FROM payment_customers WHERE customer_id = %s)",
            (event_id, customer_id),
        )
        row = await cursor.fetchone()
        assert row is not None, "two scalar subqueries make one row"
        return DeliveryLookup(row[0], row[1])

    async def record(
        self, event_id: str, event_type: str, outcome: str, account_id: str | None, detail: str, now: datetime,
        payload: bytes | None = None,
    ) -> None:
        document, text = _kept_payload(payload)
        await self._driver.execute(
            "INSERT INTO webhook_events (event_id, event_type, outcome, account_id, detail, payload, payload_text, "
            "received_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (event_id) DO NOTHING",
            (event_id, event_type, outcome, account_id, detail, document, text, now),
        )


def _kept_payload(payload: bytes | None) -> tuple[Jsonb | None, str | None]:
    """JSON when PostgreSQL can hold it as jsonb (an operator can query it); else its text, NULs
    and invalid UTF-8 replaced. jsonb refuses \\u0000 and lone surrogates, and a document nested
    deeper than the server's stack: those are kept as text, never a failed insert (a 500)."""
    if payload is None:
        return None, None
    kept = payload[:PAYLOAD_KEPT_BYTES]
    text = kept.decode("utf-8", "replace").replace("\x00", "\ufffd")
    try:
        document = json.loads(kept)
        # Lone surrogates raise here, and NaN/Infinity (which jsonb refuses) with allow_nan=False.
        json.dumps(document, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (ValueError, RecursionError):
        return None, text
    if b"\\u0000" in kept or _depth(document) > JSONB_DEPTH_MAX:
        return None, text
    return Jsonb(document), None


def _depth(document: object) -> int:
    deepest, level = 0, [(document, 1)]
    while level:
        value, depth = level.pop()
        deepest = max(deepest, depth)
        if isinstance(value, dict):
            level.extend((child, depth + 1) for child in value.values())
        elif isinstance(value, list):
            level.extend((child, depth + 1) for child in value)
    return deepest


# Closing due: the partial index accounts_period_closing. Rollover warnings: rollover buckets
# with seconds left in their last week that the account has not warned about. Auto top-up: an
# attempt to send again, or a retry after a failure (the partial index accounts_topup_waiting).
ACCOUNTS_DUE = """
SELECT account_id FROM (
  SELECT account_id FROM accounts
  WHERE subscription_closes_at <= %(now)s AND account_id > %(after)s
  UNION
  SELECT b.account_id FROM buckets b JOIN accounts a ON a.account_id = b.account_id
  WHERE b.source = 'rollover' AND b.remaining_seconds > 0 AND b.expires_at > %(now)s
    AND b.expires_at <= %(warn_before)s AND b.bucket_seq > a.subscription_rollover_warned_seq
    AND b.account_id > %(after)s
  UNION
  SELECT account_id FROM accounts
  WHERE (topup_pending_since IS NOT NULL OR topup_retry_at IS NOT NULL) AND topup_enabled
    AND coalesce(topup_retry_at, topup_pending_since + %(resend_after)s) <= %(now)s AND account_id > %(after)s
  UNION
  SELECT account_id FROM accounts
  WHERE holds_next_expiry_at <= %(now)s AND account_id > %(after)s
  UNION
  SELECT account_id FROM accounts
  WHERE credit_notice_at <= %(now)s AND account_id > %(after)s
) due
ORDER BY account_id
LIMIT %(limit)s
"""


class PostgresUpkeepQueue:
    def __init__(self, driver: Driver):
        self._driver = driver

    async def accounts_due(self, now: datetime, warn_before: datetime, after_account_id: str, limit: int) -> list[str]:
        params = {"now": now, "warn_before": warn_before, "after": after_account_id, "limit": limit,
                  "resend_after": RESEND_PENDING_AFTER}
        rows = await (await self._driver.execute(ACCOUNTS_DUE, params)).fetchall()
        return [row[0] for row in rows]
