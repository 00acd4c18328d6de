"""Stripe's deliveries as an operator sees them (issue 23): the inbox, and reprocessing a recorded one.

Every recorded delivery verified when it arrived (a bad signature is never recorded: webhooks.py),
so its kept payload is what Stripe signed; reprocessing reads that payload again and runs it
through the same handling as a delivery (webhooks.apply_verified), never a body from the caller.
Its effects are the normal path's (wallet changes keyed by the provider's ids: applied once however
often it runs); the audit entry and the record's new outcome commit together after them. A delivery
that was applied when it arrived kept no payload and is not reprocessed (one reprocessed keeps its
payload, and may run again: it applies nothing twice).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from billing.domain.audit import NO_ACCOUNT, Action, AuditEntry
from billing.domain.errors import ActionNotPossible, StripeEventNotFound
from billing.domain.limits import require_account_id
from billing.domain.stripe_inbox import (
    MALFORMED, PROCESSED, InboxPosition, StripeEventRecord, inbox_filter, inbox_page_size, require_stripe_event_id,
)
from billing.service.audit import Acted, action_request, earlier_answer, record_action
from billing.service.dependencies import Dependencies
from billing.service.operator_inputs import decode_instant, decode_token, encode_token
from billing.service.ports import MalformedWebhook, UnitOfWork
from billing.service.webhooks import apply_verified

_TOKEN_KIND = "stripe_inbox"
REPROCESSED_PREFIX = "reprocessed: "


@dataclass(frozen=True)
class InboxPage:
    events: list[StripeEventRecord]
    next_page_token: str


@dataclass(frozen=True)
class Reprocessed:
    event: StripeEventRecord
    audit: AuditEntry
    replayed: bool = False


async def list_stripe_events(deps: Dependencies, outcome: str, user_id: str, page_size: int, page_token: str) -> InboxPage:
    """Newest first; `kept` filters the deliveries an operator must look at."""
    where = inbox_filter(outcome, require_account_id(user_id) if user_id else None)
    size = inbox_page_size(page_size)
    before = decode_page_token(page_token)
    async with deps.storage.reader() as uow:
        rows = await uow.stripe_inbox.page(where, before, size + 1)
    page, more = rows[:size], len(rows) > size
    last = page[-1] if page else None
    return InboxPage(page, encode_page_token(InboxPosition(last.received_at, last.event_id)) if more and last else "")


async def reprocess_stripe_event(
    deps: Dependencies, operator_key_id: str, event_id: str, reason: str, idempotency_key: str,
) -> Reprocessed:
    require_stripe_event_id(event_id)
    request = action_request(Action.REPROCESS_STRIPE_EVENT, operator_key_id, reason, idempotency_key, event_id=event_id)
    earlier = await earlier_answer(deps, request)
    if earlier is not None:
        return Reprocessed(await _record_of(deps, event_id), earlier.audit, replayed=True)
    record = await _record_of(deps, event_id)
    payload = _kept_payload(record)
    if payload is None:
        why = "it was applied when it arrived" if record.outcome == PROCESSED else "it needed no operator"
        raise ActionNotPossible(f"no payload was kept for this event ({why})", field="event_id")
    provider = deps.payment_provider()
    try:
        event = provider.read_verified_event(payload)
    except MalformedWebhook as malformed:
        outcome, account_id, detail = MALFORMED, None, str(malformed)
    else:
        applied = await apply_verified(deps, event)
        outcome, account_id, detail = applied.recorded, applied.account_id, applied.detail

    async def act(uow: UnitOfWork, now: datetime) -> Acted:
        await uow.stripe_inbox.set_outcome(event_id, outcome, account_id, REPROCESSED_PREFIX + detail)
        totals = None
        if account_id is not None:
            wallet, _ = await uow.wallets.read(account_id, now)
            totals = wallet.balance(now).totals if wallet is not None else None
        return Acted(account_id or NO_ACCOUNT, totals, totals, {
            "event_id": event_id, "event_type": record.event_type, "outcome_before": record.outcome,
            "outcome": outcome, "detail": detail,
        })

    result = await record_action(deps, request, act)
    return Reprocessed(await _record_of(deps, event_id), result.audit, result.replayed)


async def _record_of(deps: Dependencies, event_id: str) -> StripeEventRecord:
    async with deps.storage.reader() as uow:
        record = await uow.stripe_inbox.get(event_id)
    if record is None:
        raise StripeEventNotFound(f"no Stripe delivery {event_id!r} was recorded", field="event_id")
    return record


def _kept_payload(record: StripeEventRecord) -> bytes | None:
    if record.payload is not None:
        return json.dumps(record.payload).encode()
    if record.payload_text is not None:
        return record.payload_text.encode()
    return None


def encode_page_token(position: InboxPosition) -> str:
    return encode_token(_TOKEN_KIND, position.received_at.isoformat(), position.event_id)


def decode_page_token(token: str) -> InboxPosition | None:
    parts = decode_token(token, _TOKEN_KIND, 2)
    if parts is None:
        return None
    received_at, event_id = parts
    return InboxPosition(decode_instant(received_at), event_id)
