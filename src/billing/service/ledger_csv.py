"""The ledger as CSV (RFC 4180): a header, then one line per row. Text cells that a spreadsheet
would run as a formula (starting with = + - @, or a tab or carriage return) get a leading single
quote; the numeric columns are written as numbers and left alone."""

from __future__ import annotations

import csv
import io
import json
from datetime import timezone
from typing import Iterable

from billing.domain.console import LedgerLine

HEADER = ("event_seq", "occurred_at", "type", "seconds", "balance_after_seconds", "reason", "operation",
          "bucket_seq", "metadata")
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
            text_cell(line.reason), text_cell(line.operation or ""), line.bucket_seq,
            text_cell(json.dumps(line.metadata, sort_keys=True, separators=(",", ":"), ensure_ascii=False)),
        ))
    return out.getvalue().encode()
