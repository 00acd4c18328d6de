"""The refund intents port (refund_intents, migration 0015): an operator's refund is recorded as
asked, in its own committed transaction, before the payment provider is called, and marked done in
the transaction of its audit entry (service/operator_refunds.py).

A 'requested' intent is claimed by the one request carrying it out (claimed_until: a lease); the
lease only keeps two requests from calling the provider at once for one intent. Correctness does
not rest on it: the provider's idempotency key and the intent id in the refund's metadata make a
second call find or return the first refund.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

REQUESTED = "requested"
REFUNDED = "refunded"
INTENT_ID_PREFIX = "rfi_"
METADATA_KEY = "refund_intent_id"  # the refund's metadata at the provider names its intent


@dataclass(frozen=True)
class RefundIntent:
    account_id: str
    intent_id: str
    idempotency_key: str  # the operator's; unique over the table, as the audit trail's
    request_fingerprint: str
    operator_key_id: str
    payment_id: str
    amount_cents: int  # 0: what was not refunded yet when the provider refunds it
    reason: str
    # The payment when the operator asked (the audit entry's detail): what a late retry reports.
    payment_amount_cents: int
    refunded_cents_before: int
    state: str
    refund_id: str | None
    created_at: datetime
    claimed_until: datetime
    completed_at: datetime | None
    # The request holding the lease (a secret of it): release, complete and remove act only for it.
    claim_token: str | None = None


class RefundIntents(Protocol):
    async def add(self, intent: RefundIntent) -> bool:
        """False, writing nothing, when an intent with its idempotency key exists; IdempotencyKeyReused
        when an audit entry (another action) has the key."""
        ...

    async def by_idempotency_key(self, idempotency_key: str) -> RefundIntent | None: ...

    async def claim(self, intent: RefundIntent, now: datetime, until: datetime, token: str) -> bool:
        """Takes a 'requested' intent whose lease has run out, for the holder of `token` (False: it
        is done, or claimed)."""
        ...

    async def release(self, intent: RefundIntent, now: datetime) -> None:
        """Ends this request's lease early (it failed): a retry may claim the intent at once. Only
        while intent.claim_token holds the lease (so for the rest below)."""
        ...

    async def complete(self, intent: RefundIntent, refund_id: str, now: datetime) -> bool:
        """'requested' -> 'refunded' with the provider's refund id; False if it was not 'requested',
        or another request holds the lease now."""
        ...

    async def remove(self, intent: RefundIntent) -> None:
        """Deletes a 'requested' intent the provider refused (no refund exists): the key is free again."""
        ...
