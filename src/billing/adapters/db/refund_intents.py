"""refund_intents: operator refunds recorded before the provider is called (service/refund_intents.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from billing.adapters.db.driver import Driver
from billing.adapters.db.idempotency_keys import lock_operator_key
from billing.domain.errors import IdempotencyKeyReused
from billing.service.refund_intents import REFUNDED, REQUESTED, RefundIntent

_COLUMNS = ("account_id, intent_id, idempotency_key, request_fingerprint, operator_key_id, payment_id, amount_cents, "
            "reason, payment_amount_cents, refunded_cents_before, state, refund_id, created_at, claimed_until, "
            "completed_at, claim_token")


class PostgresRefundIntents:
    def __init__(self, driver: Driver):
        self._driver = driver

    async def add(self, intent: RefundIntent) -> bool:
        await lock_operator_key(self._driver, intent.idempotency_key)
        entry = await self._driver.execute(
            "SELECT 1 FROM audit_entries WHERE idempotency_key = %s", (intent.idempotency_key,))
        if await entry.fetchone() is not None:  # another action's answer (a refund's would have its intent)
            raise IdempotencyKeyReused("idempotency_key was used for a different request", field="idempotency_key")
        cursor = await self._driver.execute(
            f"INSERT INTO refund_intents ({_COLUMNS}) VALUES ({', '.join(['%s'] * 16)}) "
            "ON CONFLICT (idempotency_key) DO NOTHING RETURNING intent_id",
            (intent.account_id, intent.intent_id, intent.idempotency_key, intent.request_fingerprint,
             intent.operator_key_id, intent.payment_id, intent.amount_cents, intent.reason,
             intent.payment_amount_cents, intent.refunded_cents_before, intent.state, intent.refund_id,
             intent.created_at, intent.claimed_until, intent.completed_at, intent.claim_token),
        )
        return await cursor.fetchone() is not None

    async def by_idempotency_key(self, idempotency_key: str) -> RefundIntent | None:
        cursor = await self._driver.execute(
            f"SELECT {_COLUMNS} FROM refund_intents WHERE idempotency_key = %s", (idempotency_key,))
        row = await cursor.fetchone()
        return None if row is None else RefundIntent(*row)

    async def claim(self, intent: RefundIntent, now: datetime, until: datetime, token: str) -> bool:
        return await self._changed(
            "UPDATE refund_intents SET claimed_until = %s, claim_token = %s WHERE account_id = %s AND intent_id = %s "
            "AND state = %s AND claimed_until <= %s RETURNING intent_id",
            (until, token, intent.account_id, intent.intent_id, REQUESTED, now))

    # The three below act only for the holder of the claim (intent.claim_token): a request whose
    # lease ran out and was taken over cuts nobody's lease short.

    async def release(self, intent: RefundIntent, now: datetime) -> None:
        await self._driver.execute(
            "UPDATE refund_intents SET claimed_until = LEAST(claimed_until, %s) "
            "WHERE account_id = %s AND intent_id = %s AND state = %s AND claim_token = %s",
            (now, intent.account_id, intent.intent_id, REQUESTED, intent.claim_token))

    async def complete(self, intent: RefundIntent, refund_id: str, now: datetime) -> bool:
        # The key's lock before the row's: the audit entry written next takes it, and a duplicate
        # request's add holds it while its insert waits on this row (the other order deadlocks).
        await lock_operator_key(self._driver, intent.idempotency_key)
        return await self._changed(
            "UPDATE refund_intents SET state = %s, refund_id = %s, completed_at = %s "
            "WHERE account_id = %s AND intent_id = %s AND state = %s AND claim_token = %s RETURNING intent_id",
            (REFUNDED, refund_id, now, intent.account_id, intent.intent_id, REQUESTED, intent.claim_token))

    async def remove(self, intent: RefundIntent) -> None:
        await self._driver.execute(
            "DELETE FROM refund_intents WHERE account_id = %s AND intent_id = %s AND state = %s AND claim_token = %s",
            (intent.account_id, intent.intent_id, REQUESTED, intent.claim_token))

    async def _changed(self, sql: str, params: tuple[Any, ...]) -> bool:
        cursor = await self._driver.execute(sql, params)
        return await cursor.fetchone() is not None
