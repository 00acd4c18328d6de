"""Log lines: one JSON object per line with the call's request id; a failed call logs once."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from types import SimpleNamespace

import grpc
import pytest

from billing.api.interceptors import ErrorTranslationInterceptor, RequestIdInterceptor
from billing.api.logs import JsonLogFormatter, OutageLogThrottle, log_handler, rfc3339_utc, write_outage_summaries
from billing.api.request_ids import REQUEST_ID
from billing.service.ports import Unavailable

RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


@pytest.fixture
def captured():
    """The server's handler (api/logs.py) on the root logger, writing to a buffer."""
    stream = io.StringIO()
    handler = log_handler("json")
    handler.setStream(stream)  # type: ignore[attr-defined]
    root = logging.getLogger()
    saved_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(saved_level)


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


class Context:
    async def abort(self, code, message, trailing_metadata=()):
        raise grpc.aio.AbortError()


def chain(behavior, request_id: str):
    call = SimpleNamespace(method="/billing.v1.BillingService/Consume", invocation_metadata=(("x-request-id", request_id),))
    return RequestIdInterceptor().wrap(ErrorTranslationInterceptor().wrap(behavior, call), call)


def test_a_line_is_one_json_object_with_the_fields(captured):
    logging.getLogger("billing.test").warning("a %s with\na newline", "message")
    [entry] = lines(captured)
    assert set(entry) == {"timestamp", "level", "logger", "message", "request_id"}
    assert RFC3339_UTC.match(entry["timestamp"])
    assert (entry["level"], entry["logger"], entry["message"]) == ("WARNING", "billing.test", "a message with\na newline")
    assert entry["request_id"] is None  # outside a call
    assert captured.getvalue().count("\n") == 1


def test_the_timestamp_is_rfc3339_utc():
    assert rfc3339_utc(1_757_000_000.25) == "2025-09-04T15:33:20.250Z"


async def test_a_successful_call_writes_no_line_and_an_outage_writes_one_with_its_id_and_no_traceback(captured):
    async def fine(request, context):
        return "ok"

    async def down(request, context):
        raise Unavailable("connection refused\nsecond line of the driver's message", kind="database")

    await chain(fine, "req-ok")(None, Context())
    assert captured.getvalue() == ""

    with pytest.raises(grpc.aio.AbortError):
        await chain(down, "req-7")(None, Context())
    [entry] = lines(captured)
    assert entry["request_id"] == "req-7" and entry["level"] == "WARNING" and entry["outage"] == "database"
    assert "exception" not in entry and "connection refused" in entry["message"]
    assert "second line" not in entry["message"]
    assert captured.getvalue().count("\n") == 1
    assert REQUEST_ID.get() == "-"


async def test_an_unexpected_error_still_writes_its_traceback(captured):
    async def broken(request, context):
        raise KeyError("bug")

    with pytest.raises(grpc.aio.AbortError):
        await chain(broken, "req-8")(None, Context())
    [entry] = lines(captured)
    assert entry["level"] == "ERROR" and "Traceback" in entry["exception"]


async def test_a_burst_of_10000_outage_errors_writes_under_100_lines_and_no_traceback(captured):
    """Issue 19, item 6: a 21 s database stop at 1,000 requests/s wrote 21,026 lines with
    tracebacks. Two kinds, the real clock: however long the burst takes, a few lines per interval."""
    async def down(request, context):
        raise Unavailable("connection refused", kind="database")

    async def provider_down(request, context):
        raise Unavailable("Stripe: connection error")

    for n in range(10_000):
        with pytest.raises(grpc.aio.AbortError):
            await chain(down if n % 2 else provider_down, f"req-{n}")(None, Context())
    [throttle] = [h for h in logging.getLogger().handlers if isinstance(h, OutageLogThrottle)]
    throttle.close()  # the summaries of the open intervals
    written = lines(captured)
    assert len(written) < 100
    assert all("exception" not in entry and "Traceback" not in entry["message"] for entry in written)
    assert {entry["outage"] for entry in written} == {"database", "dependency"}
    assert sum(entry.get("count", 1) for entry in written) == 10_000


def test_the_request_id_comes_from_the_context_variable_without_the_filter():
    token = REQUEST_ID.set("req-9")
    try:
        record = logging.LogRecord("billing.x", logging.INFO, __file__, 1, "hello", None, None)
        assert json.loads(JsonLogFormatter().format(record))["request_id"] == "req-9"
    finally:
        REQUEST_ID.reset(token)


def test_the_text_format_stays_for_a_terminal():
    stream = io.StringIO()
    handler = log_handler("text")
    handler.setStream(stream)  # type: ignore[attr-defined]
    handler.handle(logging.LogRecord("billing.x", logging.INFO, __file__, 1, "hello", None, None))
    assert stream.getvalue().rstrip().endswith("INFO billing.x [-] hello")


# ---------------------------------------------------------------- the outage throttle, by its own clock


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def throttled():
    stream = io.StringIO()
    target = logging.StreamHandler(stream)
    target.setFormatter(JsonLogFormatter())
    clock = Clock()
    return OutageLogThrottle(target, interval_seconds=5.0, clock=clock), clock, stream


def record(message: str, kind: str | None = "database", exc: BaseException | None = None) -> logging.LogRecord:
    made = logging.LogRecord("billing.x", logging.WARNING, __file__, 1, message, None,
                             (type(exc), exc, exc.__traceback__) if exc else None)
    if kind is not None:
        made.outage = kind
    return made


def test_the_first_outage_of_an_interval_is_written_at_once_without_its_traceback(throttled):
    throttle, clock, stream = throttled
    try:
        raise OSError("refused")
    except OSError as error:
        throttle.handle(record("db down", exc=error))
    [entry] = lines(stream)
    assert entry["message"] == "db down" and entry["outage"] == "database" and "exception" not in entry


def test_the_rest_of_the_interval_is_one_line_with_a_count_when_it_is_over(throttled):
    throttle, clock, stream = throttled
    throttle.handle(record("first"))
    for second in range(1, 5):
        clock.now = second
        throttle.handle(record(f"again at {second}"))
    assert len(lines(stream)) == 1  # still inside the interval
    clock.now = 5.0
    throttle.handle(record("next interval"))
    first, summary, opening = lines(stream)
    assert summary["count"] == 4 and "4 more database outage lines in the last 5s" in summary["message"]
    assert "again at 4" in summary["message"] and summary["request_id"] is None
    assert opening["message"] == "next interval"


def test_kinds_are_counted_apart_and_other_records_pass_untouched(throttled):
    throttle, clock, stream = throttled
    for kind in ("database", "payment_provider", "database", "payment_provider", "database"):
        throttle.handle(record(kind, kind=kind))
    throttle.handle(record("an ordinary warning", kind=None))
    throttle.handle(record("another ordinary warning", kind=None))
    assert [entry["message"] for entry in lines(stream)] == [
        "database", "payment_provider", "an ordinary warning", "another ordinary warning"]
    throttle.close()
    counts = {entry["outage"]: entry["count"] for entry in lines(stream)[4:]}
    assert counts == {"database": 2, "payment_provider": 1}


def test_an_interval_with_one_outage_writes_no_summary_and_a_quiet_one_is_written_by_the_next_record(throttled):
    throttle, clock, stream = throttled
    throttle.handle(record("alone"))
    clock.now = 60.0
    throttle.handle(record("later, ordinary", kind=None))
    throttle.flush()
    assert [entry["message"] for entry in lines(stream)] == ["alone", "later, ordinary"]
    throttle.handle(record("second outage"))
    throttle.handle(record("same interval"))
    clock.now = 66.0
    throttle.flush()
    assert lines(stream)[-1]["count"] == 1


def test_the_text_format_throttles_too():
    handler = log_handler("text")
    assert isinstance(handler, OutageLogThrottle)


def test_the_pools_reconnection_warnings_count_as_database_outage_lines(throttled):
    throttle, clock, stream = throttled
    for _ in range(3):
        throttle.handle(logging.LogRecord("psycopg.pool", logging.WARNING, __file__, 1, "error connecting", None, None))
    throttle.close()
    first, summary = lines(stream)
    assert first["outage"] == "database" and summary["count"] == 2


def test_a_kind_with_a_burst_writes_that_many_lines_an_interval_then_counts(throttled):
    """Refused webhook deliveries: each one a line, up to the burst; a flood is one more line."""
    throttle, clock, stream = throttled
    for n in range(250):
        made = record(f"webhook refused {n}", kind="webhook_refused")
        made.log_burst = 100
        throttle.handle(made)
    assert len(lines(stream)) == 100
    throttle.close()
    summary = lines(stream)[-1]
    assert summary["count"] == 150 and "webhook refused 249" in summary["message"]


async def test_after_a_quiet_spell_the_count_comes_out_within_an_interval_without_another_record(throttled):
    """write_outage_summaries (the server runs it): the count of an outage followed by silence is written
    at most one interval after its interval ended, not with the next record, whenever that comes."""
    throttle, clock, stream = throttled
    logger = logging.Logger("outage-summaries-test")
    logger.addHandler(throttle)
    clock.now = 1.0
    throttle.handle(record("db down"))
    clock.now = 2.0
    throttle.handle(record("still down"))  # counted: its interval ends at 6
    written_at: list[tuple[float, int]] = []

    async def sleep(seconds: float) -> None:
        written_at.append((clock.now, len(lines(stream))))
        if len(written_at) == 4:
            raise asyncio.CancelledError  # the server stopping
        clock.now += seconds

    with pytest.raises(asyncio.CancelledError):
        await write_outage_summaries(5.0, logger, sleep)
    # 1 line at 2 and at 7 (the task's first look: the interval is over, the count is written), then quiet.
    assert written_at == [(2.0, 1), (7.0, 2), (12.0, 2), (17.0, 2)]
    first, summary = lines(stream)
    assert summary["count"] == 1 and "1 more database outage lines in the last 6s" in summary["message"]


class _BrokenSession:
    """A metered session whose stream broke and whose last report cannot be persisted."""

    def __init__(self, error: Exception):
        self._error = error

    async def broken(self) -> None:
        raise self._error


async def test_sessions_broken_by_a_database_outage_write_outage_lines_not_a_traceback_each(captured):
    """A PostgreSQL restart under 200 metered sessions broke each one that persisted meanwhile; every
    one wrote its traceback (issue 21's faults test). They are outage lines now, throttled like the rest."""
    from billing.api.meter_session import _shielded_break

    for _ in range(200):
        await _shielded_break(_BrokenSession(Unavailable("the database is unreachable", kind="database")))
    [throttle] = [h for h in logging.getLogger().handlers if isinstance(h, OutageLogThrottle)]
    throttle.close()
    written = lines(captured)
    assert len(written) <= 2 and all(entry["outage"] == "database" for entry in written)
    assert all("exception" not in entry for entry in written)
    assert sum(entry.get("count", 1) for entry in written) == 200


async def test_a_session_that_cannot_persist_for_another_reason_keeps_its_traceback(captured):
    from billing.api.meter_session import _shielded_break

    await _shielded_break(_BrokenSession(KeyError("bug")))
    [entry] = lines(captured)
    assert entry["level"] == "WARNING" and "Traceback" in entry["exception"] and "outage" not in entry
