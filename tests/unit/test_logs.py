"""Log lines: one JSON object per line with the call's request id; a failed call logs once."""

from __future__ import annotations

import io
import json
import logging
import re
from types import SimpleNamespace

import grpc
import pytest

from billing.api.interceptors import ErrorTranslationInterceptor, RequestIdInterceptor
from billing.api.logs import JsonLogFormatter, log_handler, rfc3339_utc
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


async def test_a_successful_call_writes_no_line_and_a_failed_one_writes_one_with_its_id_and_traceback(captured):
    async def fine(request, context):
        return "ok"

    async def down(request, context):
        raise Unavailable("connection refused\nsecond line of the driver's message")

    await chain(fine, "req-ok")(None, Context())
    assert captured.getvalue() == ""

    with pytest.raises(grpc.aio.AbortError):
        await chain(down, "req-7")(None, Context())
    [entry] = lines(captured)
    assert entry["request_id"] == "req-7" and entry["level"] == "WARNING"
    assert "Traceback" in entry["exception"] and "second line of the driver's message" in entry["exception"]
    assert captured.getvalue().count("\n") == 1
    assert REQUEST_ID.get() == "-"


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
