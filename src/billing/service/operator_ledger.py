"""ListAccountLedger and ExportAccountLedger: an account's ledger as an operator reads it, every row
with the ledger's running sum after it (over all the account's rows, whatever the filter), what was
available after it and what expired before it (expiry writes no row: domain/expiry_timeline.py), so
"where did my minutes go" reads off the page. Paged by the ledger's own order (event_seq)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import AsyncIterator, Sequence

from billing.domain.console import LedgerFilter, LedgerLine, RunningAnchor
from billing.domain.errors import AccountNotFound, InvalidArgument
from billing.domain.limits import require_account_id
from billing.domain.wallet import EventType
from billing.service.dependencies import Dependencies
from billing.service.operator_inputs import bounded, decode_token, encode_token

LEDGER_PAGE_DEFAULT, LEDGER_PAGE_MAX = 50, 200
LEDGER_TYPES = frozenset(value for name, value in vars(EventType).items() if name.isupper())
TYPES_MAX = len(LEDGER_TYPES)
TYPE_ECHO_CHARACTERS_MAX = 40  # longer than every ledger type
NEWEST_FIRST, OLDEST_FIRST = "newest_first", "oldest_first"
EXPORT_CHUNK_ROWS = 1000
EXPORT_ROWS_MAX = 1_000_000
_TOKEN_KIND = "ledger"


@dataclass(frozen=True)
class LedgerPage:
    lines: list[LedgerLine]
    next_page_token: str
    # Expired after the account's newest row (whatever the filter) up to the read's instant.
    expired_since_last_row_seconds: int = 0


@dataclass(frozen=True)
class ExportEnd:
    """How an export ended: every row sent, or cut at EXPORT_ROWS_MAX with rows left."""

    rows: int
    truncated: bool


@dataclass(frozen=True)
class ExportChunk:
    lines: list[LedgerLine]
    end: ExportEnd | None = None  # on the last chunk only


def ledger_filter(types: Sequence[str], from_at: datetime | None, to_at: datetime | None, order: str = "") -> LedgerFilter:
    if len(types) > TYPES_MAX:
        raise InvalidArgument(f"types may name at most {TYPES_MAX} types", field="types")
    unknown = sorted(set(types) - LEDGER_TYPES)
    if unknown:
        shown = unknown[0][:TYPE_ECHO_CHARACTERS_MAX]  # the caller's text, echoed bounded
        raise InvalidArgument(f"types: {shown!r} is not a ledger type ({', '.join(sorted(LEDGER_TYPES))})",
                              field="types")
    if from_at is not None and to_at is not None and to_at <= from_at:
        raise InvalidArgument("to_at must be after from_at", field="to_at")
    if order not in ("", NEWEST_FIRST, OLDEST_FIRST):
        raise InvalidArgument(f"order must be {NEWEST_FIRST} or {OLDEST_FIRST}", field="order")
    return LedgerFilter(tuple(sorted(set(types))), from_at, to_at, oldest_first=order == OLDEST_FIRST)


def _order(where: LedgerFilter) -> str:
    return OLDEST_FIRST if where.oldest_first else NEWEST_FIRST


def _after(token: str, where: LedgerFilter) -> int | None:
    parts = decode_token(token, _TOKEN_KIND, 2)
    if parts is None:
        return None
    order, seq = parts
    if order != _order(where) or not seq.isascii() or not seq.isdigit() or len(seq) > 18:
        raise InvalidArgument("page_token is not a token of this listing (its order differs)", field="page_token")
    return int(seq)


async def list_account_ledger(
    deps: Dependencies, account_id: str, types: Sequence[str], from_at: datetime | None, to_at: datetime | None,
    page_size: int, page_token: str, order: str,
) -> LedgerPage:
    require_account_id(account_id)
    where = ledger_filter(types, from_at, to_at, order)
    size = bounded(page_size, "page_size", LEDGER_PAGE_DEFAULT, LEDGER_PAGE_MAX)
    after = _after(page_token, where)
    read = await deps.console_reads().ledger_page(account_id, where, after, size + 1)
    if read is None:
        raise AccountNotFound(f"no account for user_id {account_id!r}", field="user_id")
    page, more = read.lines[:size], len(read.lines) > size
    token = encode_token(_TOKEN_KIND, _order(where), str(page[-1].event_seq)) if more else ""
    since_last_row = read.expired.expired_between(read.newest_row_at, deps.clock.now())
    return LedgerPage(page, token, since_last_row)


async def export_account_ledger(
    deps: Dependencies, account_id: str, types: Sequence[str], from_at: datetime | None, to_at: datetime | None,
    chunk_rows: int = EXPORT_CHUNK_ROWS, rows_max: int = EXPORT_ROWS_MAX,
) -> AsyncIterator[ExportChunk]:
    """Oldest first, a chunk of rows at a time (keyset reads: one chunk in memory), at most `rows_max`
    rows; the last chunk says how it ended (every row, or truncated with rows left). Each chunk's
    running sum starts from the previous chunk's last row; each read asks one row more than it keeps,
    so the end is known without an empty read."""
    require_account_id(account_id)
    assert 0 < chunk_rows and 0 < rows_max
    where = ledger_filter(types, from_at, to_at, OLDEST_FIRST)
    reads = deps.console_reads()
    after: int | None = None
    anchor: RunningAnchor | None = None
    sent = 0
    while True:
        wanted = min(chunk_rows, rows_max - sent)
        read = await reads.ledger_page(account_id, where, after, wanted + 1, anchor)
        if read is None:
            raise AccountNotFound(f"no account for user_id {account_id!r}", field="user_id")
        lines, more = read.lines[:wanted], len(read.lines) > wanted
        sent += len(lines)
        if not more or sent >= rows_max:
            yield ExportChunk(lines, ExportEnd(sent, truncated=more))
            return
        yield ExportChunk(lines)
        last = lines[-1]
        after, anchor = last.event_seq, RunningAnchor(last.event_seq, last.balance_after_seconds)
