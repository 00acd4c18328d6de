"""The ledger as CSV (RFC 4180): a header, then one line per row, then one last line saying how the
export ended (`# end of export: N rows`, or `# export truncated: ...`): a file without it was cut.
Text cells that a spreadsheet would run as a formula (starting with = + - @, or a tab or carriage
return) get a leading single quote; the numeric columns are written as numbers and left alone."""

from __future__ import annotations

import csv
import io
import json
from datetime import timezone
from typing import Iterable

from billing.domain.console import LedgerLine
from billing.service.operator_ledger import ExportEnd

HEADER = ("event_seq", "occurred_at", "type", "seconds", "balance_after_seconds", "available_after_seconds",
          "expired_before_seconds", "reason", "operation", "bucket_seq", "metadata")
# The last line's start: a row's first cell is always an event_seq (digits), never this.
TRAILER_PREFIX = "# "
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def text_cell(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def _rfc3339(line: LedgerLine) -> str:
    return line.occurred_at.astimezone(timezone.utc).replace(tzinfo=None).isoformat() + "Z"


def csv_lines(lines: Iterable[LedgerLine], header: bool = False) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if header:
        writer.writerow(HEADER)
    for line in lines:
        writer.writerow((
            line.event_seq, _rfc3339(line), text_cell(line.type), line.seconds, line.balance_after_seconds,
            line.available_after_seconds, line.expired_before_seconds, text_cell(line.reason), text_cell(line.operation or ""), line.bucket_seq,
            text_cell(json.dumps(line.metadata, sort_keys=True, separators=(",", ":"), ensure_ascii=False)),
        ))
    return out.getvalue().encode()


def trailer(end: ExportEnd) -> bytes:
    """The export's last line: complete, or truncated at the limit with rows left unsent."""
    if end.truncated:
        text = f"{TRAILER_PREFIX}export truncated: the first {end.rows} rows only (the limit); narrow from_at/to_at"
    else:
        text = f"{TRAILER_PREFIX}end of export: {end.rows} rows"
    return (text + "\r\n").encode()
