"""The id of the call being served, for log lines and error answers."""

from __future__ import annotations

import logging
from contextvars import ContextVar

REQUEST_ID_HEADER = "x-request-id"  # Envoy sets it on every request it forwards
REQUEST_ID_LENGTH_MAX = 128
NO_REQUEST = "-"

REQUEST_ID: ContextVar[str] = ContextVar("request_id", default=NO_REQUEST)


class RequestIdLogFilter(logging.Filter):
    """Gives every log record a `request_id` (NO_REQUEST outside a call), for the log format."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:  # a record made for no call says so itself
            record.request_id = REQUEST_ID.get()
        return True
