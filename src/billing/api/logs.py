"""Log lines: one JSON object per line (BILLING_LOG_FORMAT=json, the default) or text for a terminal.

Every line names the call it was written for (request_ids.py). The server writes no line for a
call that succeeds and one for a call that fails unexpectedly or on an outage (the interceptor
chain's error translation), its traceback inside that line. What is logged is the message,
never a request body or a credential: log the field's name, not its value.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, Awaitable, Callable, TextIO

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
        outage_kind, outage_count = getattr(record, "outage", None), getattr(record, "outage_count", None)
        if isinstance(outage_kind, str):
            entry["outage"] = outage_kind
            if isinstance(outage_count, int):
                entry["count"] = outage_count
        if record.exc_info:
            if not record.exc_text:
                record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=True, default=str)


def log_handler(log_format: str, stream: TextIO | None = None) -> logging.Handler:
    """A stderr handler (or `stream`'s: the real stderr, when fd 2 is captured by
    api/foreign_output.py) in the given format ("json" or "text"), outage lines throttled."""
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdLogFilter())
    handler.setFormatter(JsonLogFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    return OutageLogThrottle(handler)


# ---------------------------------------------------------------- outages: one line per kind per interval

OUTAGE_INTERVAL_SECONDS = 5.0
# Libraries' loggers whose warnings are outages: the pool's reconnection attempts.
OUTAGE_LOGGERS = {"psycopg.pool": "database"}


class OutageLogThrottle(logging.Handler):
    """Wraps the process' handler. An outage record (service.ports.outage_log) is written at once when it is
    the first of its kind in an interval, without its traceback; the others of that interval are
    counted, and written as one line ("N more ... in the last Xs") when the interval is over, at the
    next record of any kind, when the handler is flushed or closed, or by write_outage_summaries (the
    server runs it: after a quiet spell the count is not left waiting for the next record). Every other record passes
    untouched. A 21 s database stop at 1,000 requests/s wrote 21,026 lines with tracebacks (~50 MB);
    this writes about two per kind per interval."""

    def __init__(self, target: logging.Handler, interval_seconds: float = OUTAGE_INTERVAL_SECONDS,
                 clock: Callable[[], float] = time.monotonic):
        super().__init__()
        assert interval_seconds > 0
        self._target = target
        self._interval_seconds = interval_seconds
        self._clock = clock
        self._windows: dict[str, _OutageWindow] = {}

    def emit(self, record: logging.LogRecord) -> None:
        now = self._clock()
        self._write_finished_windows(now)
        kind = getattr(record, "outage", None) or _library_outage(record)
        if not isinstance(kind, str):
            self._target.handle(record)
            return
        window = self._windows.get(kind)
        if window is None:
            window = self._windows[kind] = _OutageWindow(opened_at=now, last=record)
        elif window.written >= getattr(record, "log_burst", 1):
            window.more += 1
            window.last = record
            return
        window.written += 1
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        self._target.handle(record)

    def setStream(self, stream: Any) -> Any:  # as logging.StreamHandler's, for tests
        return getattr(self._target, "setStream")(stream)

    def flush(self) -> None:
        self.write_due_summaries()
        self._target.flush()

    def write_due_summaries(self) -> None:
        """The count lines of the intervals that are over."""
        self.acquire()
        try:
            self._write_finished_windows(self._clock())
        finally:
            self.release()

    def close(self) -> None:
        self.acquire()
        try:
            self._write_finished_windows(None)
        finally:
            self.release()
        self._target.close()
        super().close()

    def _write_finished_windows(self, now: float | None) -> None:
        """now=None: every window is finished (closing)."""
        for kind, window in list(self._windows.items()):
            elapsed = (now if now is not None else self._clock()) - window.opened_at
            if now is not None and elapsed < self._interval_seconds:
                continue
            del self._windows[kind]
            if window.more:
                self._target.handle(_summary(kind, window, elapsed))


async def write_outage_summaries(
    interval_seconds: float = OUTAGE_INTERVAL_SECONDS, logger: logging.Logger | None = None,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> None:
    """Until cancelled: every interval, the count lines of the throttles on `logger` (the root's) whose
    interval is over. A count comes out at most about one interval after its interval ended, even when
    nothing is logged after an outage (it used to wait for the next record: hours, on a quiet server)."""
    while True:
        await sleep(interval_seconds)
        for handler in (logger or logging.getLogger()).handlers:
            if isinstance(handler, OutageLogThrottle):
                handler.write_due_summaries()


def _library_outage(record: logging.LogRecord) -> str | None:
    kind = OUTAGE_LOGGERS.get(record.name)
    if kind is None or record.levelno > logging.WARNING:
        return None
    record.outage = kind  # the line says which outage it counts in
    return kind


class _OutageWindow:
    __slots__ = ("opened_at", "written", "more", "last")

    def __init__(self, opened_at: float, last: logging.LogRecord):
        self.opened_at = opened_at
        self.written = 0
        self.more = 0
        self.last = last


def _summary(kind: str, window: _OutageWindow, elapsed_seconds: float) -> logging.LogRecord:
    last = window.last
    summary = logging.makeLogRecord({
        "name": last.name, "levelno": last.levelno, "levelname": last.levelname,
        "msg": "%d more %s outage lines in the last %.0fs (the last: %s)",
        "args": (window.more, kind, elapsed_seconds, _first_line(last.getMessage())),
        "outage": kind, "outage_count": window.more,
    })
    summary.request_id = NO_REQUEST  # a count over many calls belongs to none of them
    return summary


def _first_line(text: str) -> str:
    return text.split("\n", 1)[0][:500]
