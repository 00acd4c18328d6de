"""Requests that do not decode are INVALID_ARGUMENT naming the field, not UNKNOWN with a traceback.

gRPC decodes a request before any interceptor's behaviour runs; a DecodeError there (bytes that
are not the method's message, or a string field holding invalid UTF-8) used to end the call as
UNKNOWN, log a traceback per call, and over REST become a 500 carrying the decoder's text. Envoy's
transcoder passes path segments and query values through as bytes, so `/v1/billing/balance/%FF`
reached the server as exactly such a string field.

MalformedRequestInterceptor swaps each unary method's deserializer for one that never raises: on
failure it returns a MalformedRequest (which field, if a string field held the bad UTF-8), and
the method's behaviour raises InvalidArgument for it, which the error translation layer answers
(400 over REST, with the field). Nothing is logged. It sits right inside error translation, so
any layer after it (authentication) sees only decoded requests.
"""

from __future__ import annotations

import logging
from typing import Any, AsyncIterator, Awaitable, Callable

import grpc
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from billing.api.access import access_for
from billing.domain.errors import InvalidArgument

Behavior = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
Deserializer = Callable[[bytes], Any]
NESTING_DEPTH_MAX = 16  # our request messages nest two deep; the walk stops well past that


class MalformedRequest:
    """What the deserializer returns instead of raising."""

    __slots__ = ("message", "field")

    def __init__(self, message: str, field: str | None):
        self.message = message
        self.field = field

    @classmethod
    def of(cls, descriptor: Descriptor | None, data: bytes) -> "MalformedRequest":
        field = invalid_utf8_field(descriptor, data) if descriptor is not None else None
        if field is not None:
            return cls(f"{field} is not valid UTF-8", field)
        name = descriptor.full_name if descriptor is not None else "request"
        return cls(f"the request is not a valid {name} message", None)


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def invalid_utf8_field(descriptor: Descriptor, data: bytes, depth: int = 0) -> str | None:
    """The path (`user_id`, `operations[2].operation`) of the first string field in the wire bytes
    holding invalid UTF-8, or None (not that kind of failure, or bytes too broken to walk)."""
    if depth > NESTING_DEPTH_MAX:
        return None
    seen: dict[int, int] = {}
    pos = 0
    try:
        while pos < len(data):
            key, pos = _varint(data, pos)
            number, wire_type = key >> 3, key & 7
            if wire_type == 0:
                _, pos = _varint(data, pos)
            elif wire_type == 1:
                pos += 8
            elif wire_type == 5:
                pos += 4
            elif wire_type == 2:
                length, pos = _varint(data, pos)
                chunk, pos = data[pos:pos + length], pos + length
                if len(chunk) < length:
                    return None
                field = descriptor.fields_by_number.get(number)
                if field is None:
                    continue
                name = field.name
                if field.is_repeated:
                    index = seen.get(number, 0)
                    seen[number] = index + 1
                    name = f"{name}[{index}]"
                if field.type == FieldDescriptor.TYPE_STRING:
                    try:
                        chunk.decode("utf-8")
                    except UnicodeDecodeError:
                        return name
                elif field.type == FieldDescriptor.TYPE_MESSAGE:
                    inner = invalid_utf8_field(field.message_type, chunk, depth + 1)
                    if inner is not None:
                        return f"{name}.{inner}"
            else:  # groups (none in our protos) or garbage
                return None
    except ValueError:
        return None
    return None


def tolerant_deserializer(deserialize: Deserializer) -> Deserializer:
    """`deserialize` (a generated Message.FromString), returning a MalformedRequest instead of raising."""
    message_class = getattr(deserialize, "__self__", None)
    descriptor = getattr(message_class, "DESCRIPTOR", None)

    def deserialize_or_mark(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception:  # DecodeError, or anything else the decoder raises on hostile bytes
            return MalformedRequest.of(descriptor, data)

    return deserialize_or_mark


def _refusing_malformed(behavior: Behavior) -> Behavior:
    async def refuse_malformed(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if type(request) is MalformedRequest:
            raise InvalidArgument(request.message, field=request.field)
        return await behavior(request, context)

    return refuse_malformed


def _refusing_malformed_stream(behavior: Callable[[Any, grpc.aio.ServicerContext], AsyncIterator[Any]]):
    async def refuse_malformed(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        if type(request) is MalformedRequest:
            raise InvalidArgument(request.message, field=request.field)
        async for message in behavior(request, context):
            yield message

    return refuse_malformed


def _refusing_malformed_bidi(behavior: Callable[[Any, grpc.aio.ServicerContext], AsyncIterator[Any]]):
    async def refuse_malformed(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        async for message in behavior(_decoded(requests), context):
            yield message

    return refuse_malformed


async def _decoded(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """A stream's messages; the first that did not decode ends it as InvalidArgument."""
    async for request in requests:
        if type(request) is MalformedRequest:
            raise InvalidArgument(request.message, field=request.field)
        yield request


class _QuietInvalidMetadata(logging.Filter):
    """grpc logs a traceback at ERROR for every metadata value that is not UTF-8 (any request
    header with such bytes, which Envoy forwards as metadata) and then passes the value on as
    bytes, which the service ignores. A client's fault, so one DEBUG line without the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage().startswith("Invalid encoding on"):
            record.levelno, record.levelname, record.exc_info, record.exc_text = logging.DEBUG, "DEBUG", None, None
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


_GRPC_LOGGER = logging.getLogger("grpc._cython.cygrpc")


def quiet_invalid_metadata_logs() -> None:
    if not any(isinstance(f, _QuietInvalidMetadata) for f in _GRPC_LOGGER.filters):
        _GRPC_LOGGER.addFilter(_QuietInvalidMetadata())


class MalformedRequestInterceptor(grpc.aio.ServerInterceptor):
    """Unary methods and BillingService's streaming ones (health watch and reflection
    stream: left alone). The tolerant
    deserializer is built once per method and deserializer; each call only rewraps the behaviour."""

    def __init__(self) -> None:
        self._deserializers: dict[tuple[str, Any], Deserializer] = {}
        quiet_invalid_metadata_logs()

    async def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        return self.wrap_handler(await continuation(handler_call_details), handler_call_details)

    def wrap_handler(self, handler: grpc.RpcMethodHandler | None, handler_call_details: grpc.HandlerCallDetails):
        if handler is None or handler.request_deserializer is None:
            return handler
        is_billing = access_for(handler_call_details.method, None) is not None
        billing_stream = handler.unary_stream is not None and is_billing
        billing_bidi = handler.stream_stream is not None and is_billing
        if handler.unary_unary is None and not billing_stream and not billing_bidi:
            return handler
        key = (handler_call_details.method, handler.request_deserializer)
        deserializer = self._deserializers.get(key)
        if deserializer is None:
            deserializer = self._deserializers[key] = tolerant_deserializer(handler.request_deserializer)
        if handler.unary_unary is not None:
            return handler._replace(
                request_deserializer=deserializer, unary_unary=_refusing_malformed(handler.unary_unary)
            )
        if billing_bidi:
            return handler._replace(
                request_deserializer=deserializer, stream_stream=_refusing_malformed_bidi(handler.stream_stream)
            )
        return handler._replace(
            request_deserializer=deserializer, unary_stream=_refusing_malformed_stream(handler.unary_stream)
        )
