"""Log lines: one JSON object per line (BILLING_LOG_FORMAT=json, the default) or text for a terminal.

Every line names the call it was written for (request_ids.py). The server writes no line for a
call that succeeds and one for a call that fails unexpectedly or on an outage (the interceptor
chain's error translation), its traceback inside that line. What is logged is the message,
never a request body or a credential: log the field's name, not its value.
"""

from __future__ import annotations

import json
import logging
import time

from billing.api.request_ids import NO_REQUEST, REQUEST_ID, RequestIdLogFilter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def rfc3339_utc(created: float) -> str:
    """`2025-09-01T12:34:56.789Z`: RFC 3339, UTC, milliseconds."""
    seconds = int(created)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int((created - seconds) * 1000):03d}Z"


class JsonLogFormatter(logging.Formatter):
    """timestamp, level, logger, message, request_id (null outside a call), and `exception`
    (the traceback's text) when the record carries one. json.dumps escapes every newline, so
    a record is one line whatever its message or traceback holds."""

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
        entry: dict[str, object] = {
            "timestamp": rfc3339_utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": None if request_id == NO_REQUEST else request_id,
        }
        if record.exc_info:
            if not record.exc_text:
                record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=True, default=str)


def log_handler(log_format: str) -> logging.Handler:
    """A stderr handler in the given format ("json" or "text")."""
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdLogFilter())
    handler.setFormatter(JsonLogFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    return handler
