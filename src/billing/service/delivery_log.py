"""The webhook delivery log on the admin surface (issue 22): read it, a page at a time, and replay.

Replay puts finished deliveries (delivered or failed) back to pending, due now, with their attempts
kept: the attempt log stays whole and numbered, and the sender's retry schedule goes on from the
attempts already made (a delivery that had used up its retries gets one more try). A replayed
delivery goes out in its place in the account's order: later events of that account and endpoint
wait for it. Deliveries of a deleted endpoint are not replayed.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime

from billing.domain.errors import InvalidArgument, WebhookEventNotFound
from billing.domain.limits import require_account_id
from billing.domain.webhook_endpoints import (
    REPLAY_BATCH_MAX, Delivery, DeliveryFilter, DeliveryPosition, deliveries_page_size, require_delivery_status,
    require_endpoint_id, require_event_id,
)
from billing.service.dependencies import Dependencies

PAGE_TOKEN_LENGTH_MAX = 512
_TOKEN_VERSION = "d1"


@dataclass(frozen=True)
class DeliveryPage:
    deliveries: list[Delivery]
    next_page_token: str


@dataclass(frozen=True)
class Replayed:
    replayed: int
    more: bool = False  # replay_failed: the batch was full, call again for the rest


def encode_page_token(position: DeliveryPosition) -> str:
    text = json.dumps([_TOKEN_VERSION, position.created_at.isoformat(), position.account_id, position.endpoint_id,
                       position.seq], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_page_token(token: str) -> DeliveryPosition | None:
    if not token:
        return None
    invalid = InvalidArgument("page_token is not a token this service issued", field="page_token")
    if len(token) > PAGE_TOKEN_LENGTH_MAX:
        raise invalid
    try:
        version, created_at, account_id, endpoint_id, seq = json.loads(
            base64.urlsafe_b64decode((token + "=" * (-len(token) % 4)).encode()).decode())
        position = DeliveryPosition(datetime.fromisoformat(created_at), account_id, endpoint_id, seq)
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError):
        raise invalid from None
    if (version != _TOKEN_VERSION or position.created_at.tzinfo is None or not isinstance(account_id, str)
            or not isinstance(endpoint_id, str) or not isinstance(seq, int) or isinstance(seq, bool)):
        raise invalid
    return position


async def list_deliveries(
    deps: Dependencies, endpoint_id: str, user_id: str, status: str, limit: int, page_token: str,
) -> DeliveryPage:
    """Newest first; each filter optional (empty: any)."""
    where = DeliveryFilter(
        endpoint_id=require_endpoint_id(endpoint_id) if endpoint_id else None,
        account_id=require_account_id(user_id) if user_id else None,
        status=require_delivery_status(status) if status else None,
    )
    size = deliveries_page_size(limit)
    before = decode_page_token(page_token)
    async with deps.storage.reader() as uow:
        rows = await uow.delivery_log.page(where, before, size + 1)
    page, more = rows[:size], len(rows) > size
    return DeliveryPage(page, encode_page_token(page[-1].position) if more else "")


async def replay_event(deps: Dependencies, event_id: str) -> Replayed:
    require_event_id(event_id)
    async with deps.storage.transaction() as uow:
        replayed = await uow.delivery_log.replay_event(event_id, deps.clock.now())
        if replayed is None:
            raise WebhookEventNotFound(f"no delivery of event {event_id}", field="event_id")
        await uow.commit()
    return Replayed(replayed)


async def replay_failed(deps: Dependencies, since: datetime | None, endpoint_id: str) -> Replayed:
    """At most REPLAY_BATCH_MAX failed deliveries created since `since`, oldest first; `more` when
    there may be others (the next call takes them: the replayed ones are pending by then)."""
    if since is None:
        raise InvalidArgument("since is required", field="since")
    if endpoint_id:
        require_endpoint_id(endpoint_id)
    async with deps.storage.transaction() as uow:
        replayed = await uow.delivery_log.replay_failed(since, endpoint_id or None, deps.clock.now(), REPLAY_BATCH_MAX)
        await uow.commit()
    return Replayed(replayed, more=replayed == REPLAY_BATCH_MAX)
