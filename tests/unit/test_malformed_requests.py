"""Requests that do not decode: INVALID_ARGUMENT naming the field (api/malformed.py)."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

import grpc
import pytest

from billing.api.interceptors import ErrorTranslationInterceptor
from billing.api.malformed import MalformedRequest, MalformedRequestInterceptor, invalid_utf8_field, tolerant_deserializer
from billing.v1 import billing_service_pb2, consumption_pb2, metered_sessions_pb2
from tests.support.grpc_context import AbortingContext

BAD = b"\xff\xfe"


def _string_field(number: int, value: bytes) -> bytes:
    return bytes([number << 3 | 2, len(value)]) + value


def test_the_walk_names_the_string_field_holding_invalid_utf8():
    request = _string_field(1, b"ok") + _string_field(2, BAD)
    assert invalid_utf8_field(consumption_pb2.ConsumeRequest.DESCRIPTOR, request) == "operation"


def test_nested_and_repeated_fields_are_named_by_path():
    good = _string_field(1, b"build")
    bad = _string_field(1, b"\xc0\xaf")  # overlong encoding of "/"
    request = _string_field(1, b"u") + _string_field(2, good) + _string_field(2, good) + _string_field(2, bad)
    descriptor = consumption_pb2.CheckSufficientBatchRequest.DESCRIPTOR
    assert invalid_utf8_field(descriptor, request) == "operations[2].operation"


@pytest.mark.parametrize("data", [b"\xff\xff\xff", b"\x0a\x05ab", b"\x0b", b"\x80" * 20, b""])
def test_broken_bytes_name_no_field(data):
    assert invalid_utf8_field(consumption_pb2.ConsumeRequest.DESCRIPTOR, data) is None


def test_the_tolerant_deserializer_marks_instead_of_raising():
    deserialize = tolerant_deserializer(consumption_pb2.ConsumeRequest.FromString)
    assert deserialize(_string_field(1, b"alice")).user_id == "alice"
    marked = deserialize(_string_field(1, BAD))
    assert isinstance(marked, MalformedRequest) and marked.field == "user_id"
    garbage = deserialize(b"\xff\xff\xff")
    assert isinstance(garbage, MalformedRequest) and garbage.field is None
    assert "billing.v1.ConsumeRequest" in garbage.message


async def test_a_malformed_request_is_invalid_argument_with_a_400_body_and_no_log_line(caplog):
    method = "/billing.v1.BillingService/Consume"
    called = []

    async def consume(request, context):
        called.append(request)

    registered = grpc.unary_unary_rpc_method_handler(
        consume, request_deserializer=consumption_pb2.ConsumeRequest.FromString,
    )
    call_details = SimpleNamespace(method=method, invocation_metadata=())

    async def continuation(_):
        return registered

    handler = await MalformedRequestInterceptor().intercept_service(continuation, call_details)
    behavior = ErrorTranslationInterceptor().wrap(handler.unary_unary, call_details)
    request = handler.request_deserializer(_string_field(1, BAD))
    context = AbortingContext()
    with caplog.at_level(logging.DEBUG), pytest.raises(grpc.aio.AbortError):
        await behavior(request, context)
    code, message, metadata = context.aborted
    assert code == grpc.StatusCode.INVALID_ARGUMENT and message == "user_id is not valid UTF-8"
    assert metadata["x-http-status"] == "400"
    assert json.loads(metadata["x-error-json"])["field"] == "user_id"
    assert not called and not caplog.records
    # A request that decodes goes through.
    await behavior(handler.request_deserializer(_string_field(1, b"alice")), context)
    assert called[0].user_id == "alice"


def test_the_billing_methods_streaming_their_requests_are_bidirectional():
    """The interceptor handles unary, server-streaming and bidirectional methods; a
    client-streaming one (many requests, one answer) would need its own wrapper."""
    service = billing_service_pb2.DESCRIPTOR.services_by_name["BillingService"]
    assert [m.name for m in service.methods if m.client_streaming] == ["MeterSession", "ConsumeStream"]
    assert all(m.server_streaming for m in service.methods if m.client_streaming)


async def test_a_malformed_message_on_a_bidirectional_stream_ends_it_as_invalid_argument():
    method = "/billing.v1.BillingService/MeterSession"
    seen = []

    async def session(requests, context):
        async for request in requests:
            seen.append(request)
            yield request

    registered = grpc.stream_stream_rpc_method_handler(
        session, request_deserializer=metered_sessions_pb2.MeterSessionRequest.FromString)
    call_details = SimpleNamespace(method=method, invocation_metadata=())

    async def continuation(_):
        return registered

    handler = await MalformedRequestInterceptor().intercept_service(continuation, call_details)
    behavior = ErrorTranslationInterceptor().wrap_bidi(handler.stream_stream, call_details)
    good = metered_sessions_pb2.MeterSessionRequest(report=metered_sessions_pb2.MeterSessionReport(elapsed_seconds=1))

    async def requests():
        yield handler.request_deserializer(good.SerializeToString())
        yield handler.request_deserializer(b"\xff\xff\xff")
        yield handler.request_deserializer(good.SerializeToString())

    context = AbortingContext()
    with pytest.raises(grpc.aio.AbortError):
        async for _ in behavior(requests(), context):
            pass
    assert context.aborted[0] == grpc.StatusCode.INVALID_ARGUMENT
    assert seen == [good]  # the message after the malformed one is never read
