"""ListEvents: the ledger, newest first, a page at a time."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from billing.domain.history import EventRow
from billing.domain.errors import InvalidArgument
from billing.domain.limits import PAGE_TOKEN_LENGTH_MAX, page_size, require_account_id
from billing.service.dependencies import Dependencies
from billing.service.wallet_reading import read_wallet

_TOKEN_PREFIX = "before:"
# ASCII digits only (str.isdigit also accepts "²" and "٣"), at most 18 of them: always a bigint.
_EVENT_SEQ = re.compile(r"[0-9]{1,18}")


@dataclass(frozen=True)
class HistoryPage:
    events: list[EventRow]
    next_page_token: str


def encode_page_token(before_event_seq: int) -> str:
    return base64.urlsafe_b64encode(f"{_TOKEN_PREFIX}{before_event_seq}".encode()).decode()


def decode_page_token(token: str) -> int | None:
    if not token:
        return None
    invalid = InvalidArgument("page_token is not a token this service issued", field="page_token")
    if len(token) > PAGE_TOKEN_LENGTH_MAX:
        raise invalid
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid from None
    if not text.startswith(_TOKEN_PREFIX) or not _EVENT_SEQ.fullmatch(text[len(_TOKEN_PREFIX):]):
        raise invalid
    return int(text[len(_TOKEN_PREFIX):])


async def list_events(deps: Dependencies, account_id: str, limit: int, page_token: str) -> HistoryPage:
    require_account_id(account_id)
    size = page_size(limit)
    before = decode_page_token(page_token)
    # The account's upkeep first, as a balance read does: a period that ended shows its
    # rollover in the history even when nothing else touched the account since.
    await read_wallet(deps, account_id, deps.clock.now())
    async with deps.storage.reader() as uow:
        rows = await uow.history.events_page(account_id, before, size + 1)
    page, more = rows[:size], len(rows) > size
    return HistoryPage(events=page, next_page_token=encode_page_token(page[-1].event_seq) if more else "")
