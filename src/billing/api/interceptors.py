"""The gRPC server's interceptor chain: what every BillingService call goes through.

Outermost first (server.py serves them as one LayeredInterceptor, in this order):
0. MetricsInterceptor (when the server has metrics): every call's method, final status code
   and handling time. Outside error translation, so it sees the code the client gets: an
   aborted call by its abort's code, a cancelled one as CANCELLED or DEADLINE_EXCEEDED.
1. RequestIdInterceptor: the call's id (Envoy's x-request-id, or a new one) for every log
   line written while it runs (request_ids.py) and for its error answers.
2. ErrorTranslationInterceptor: the one place errors become statuses (errors.py): the use
   cases' BillingErrors, the adapters' Unavailable, and anything unexpected.
   MalformedRequestInterceptor (malformed.py): a request that does not decode is InvalidArgument.
3. AuthenticationInterceptor (when the server has an Authenticator: the slot signed requests
   fill): the caller's credentials are checked before the servicer runs; a refusal is a
   BillingError, which the layer above translates.
Server-streaming BillingService methods (WatchBalance) go through request id, error translation
and authentication too (wrap_stream; checked before the first message is sent), and so do
bidirectional ones (MeterSession, ConsumeStream; wrap_bidi: authenticated on their first message, which the
caller signs); metrics and the time budget measure unary calls only (a stream lives for minutes). Other streaming methods
(health watch, reflection) pass through untouched.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import re
from time import perf_counter
from typing import Any, AsyncIterator, Awaitable, Callable, Mapping, Protocol

import grpc

from billing.api import errors
from billing.api.access import access_for, acts_for
from billing.api.caller import CALLER_KEY
from billing.api.key_rate_limit import KeyRateLimiter
from billing.api.malformed import MalformedRequestInterceptor
from billing.api.request_ids import REQUEST_ID, REQUEST_ID_HEADER, REQUEST_ID_LENGTH_MAX
from billing.api.rest_binding import require_signed_request_is_this_call
from billing.domain.auth import EDGE_TOKEN_HEADER, SIGNED_BODY_HEADER, Access, ApiKey, require_access
from billing.domain.errors import BillingError, PermissionDenied
from billing.service.ports import Authenticator, Unavailable, outage_log

log = logging.getLogger(__name__)
_SAFE_REQUEST_ID = re.compile(f"[A-Za-z0-9._:-]{{1,{REQUEST_ID_LENGTH_MAX}}}")

Behavior = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
StreamBehavior = Callable[[Any, grpc.aio.ServicerContext], AsyncIterator[Any]]


class _UnaryInterceptor(grpc.aio.ServerInterceptor):
    """Wraps the behaviour of each unary-unary method once per call, of each unary-stream method
    when the layer defines wrap_stream, and of each bidirectional one when it defines wrap_bidi
    (else a stream passes through)."""

    async def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        return self.wrap_handler(await continuation(handler_call_details), handler_call_details)

    def wrap_handler(self, handler: grpc.RpcMethodHandler | None, handler_call_details: grpc.HandlerCallDetails):
        """This layer's handler around `handler` (None: the method is not served)."""
        if handler is None:
            return handler
        if handler.unary_unary is not None:
            return handler._replace(unary_unary=self.wrap(handler.unary_unary, handler_call_details))
        if handler.unary_stream is not None and _is_billing_call(handler_call_details):
            stream = self.wrap_stream(handler.unary_stream, handler_call_details)
            return handler if stream is None else handler._replace(unary_stream=stream)
        if handler.stream_stream is not None and _is_billing_call(handler_call_details):
            bidi = self.wrap_bidi(handler.stream_stream, handler_call_details)
            return handler if bidi is None else handler._replace(stream_stream=bidi)
        return handler

    def wrap(self, behavior: Behavior, details: grpc.HandlerCallDetails) -> Behavior:
        raise NotImplementedError

    def wrap_stream(self, behavior: StreamBehavior, details: grpc.HandlerCallDetails) -> StreamBehavior | None:
        return None

    def wrap_bidi(self, behavior: StreamBehavior, details: grpc.HandlerCallDetails) -> StreamBehavior | None:
        """`behavior` takes the stream of requests (an async iterator) instead of one request."""
        return None


def _is_billing_call(details: grpc.HandlerCallDetails) -> bool:
    return access_for(details.method, None) is not None


def _metadata(details: grpc.HandlerCallDetails) -> dict[str, str]:
    return {key: value for key, value in details.invocation_metadata or () if isinstance(value, str)}


class RpcMetrics(Protocol):
    """Where the metrics interceptor records calls (adapters/metrics.py: Prometheus)."""

    def rpc_observer(self, method: str) -> Callable[[str, float], None]:
        """The recorder of one method (a full gRPC method name, from the server's own handlers):
        called once per call with the status code's name and the handling time in seconds.
        Resolved once per call, so it should be cached by the implementation."""
        ...


class MetricsInterceptor(_UnaryInterceptor):
    def __init__(self, metrics: RpcMetrics):
        self._metrics = metrics

    def wrap(self, behavior: Behavior, details: grpc.HandlerCallDetails) -> Behavior:
        observe = self._metrics.rpc_observer(details.method)

        async def measured(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = perf_counter()
            try:
                response = await behavior(request, context)
            except grpc.aio.AbortError:
                code = context.code()
                observe(code.name if code is not None else "UNKNOWN", perf_counter() - started)
                raise
            except asyncio.CancelledError:
                observe(_cancellation_code(context), perf_counter() - started)
                raise
            except BaseException:
                observe("UNKNOWN", perf_counter() - started)  # what gRPC answers for an escaped exception
                raise
            code = context.code()  # set by the servicer (rare), else None: OK
            observe("OK" if code is None else code.name, perf_counter() - started)
            return response

        return measured


def _cancellation_code(context: grpc.aio.ServicerContext) -> str:
    """The client went away, or its deadline passed (gRPC cancels the handler either way)."""
    remaining = context.time_remaining()
    return "DEADLINE_EXCEEDED" if remaining is not None and remaining <= 0 else "CANCELLED"


class RequestIdInterceptor(_UnaryInterceptor):
    def wrap(self, behavior: Behavior, details: grpc.HandlerCallDetails) -> Behavior:
        request_id = _request_id(details)

        async def with_request_id(request: Any, context: grpc.aio.ServicerContext) -> Any:
            token = REQUEST_ID.set(request_id)
            try:
                return await behavior(request, context)
            finally:
                REQUEST_ID.reset(token)

        return with_request_id

    def wrap_stream(self, behavior: StreamBehavior, details: grpc.HandlerCallDetails) -> StreamBehavior:
        request_id = _request_id(details)

        async def with_request_id(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            # Set for the whole stream: each message's production runs in this generator's context.
            REQUEST_ID.set(request_id)
            async for message in behavior(request, context):
                yield message

        return with_request_id

    def wrap_bidi(self, behavior: StreamBehavior, details: grpc.HandlerCallDetails) -> StreamBehavior:
        return self.wrap_stream(behavior, details)


def _request_id(details: grpc.HandlerCallDetails) -> str:
    sent = _metadata(details).get(REQUEST_ID_HEADER, "")
    # An id from outside is kept only when it is a plain token: it is echoed in response
    # metadata (where gRPC refuses non-ASCII) and written into every log line.
    return sent if _SAFE_REQUEST_ID.fullmatch(sent) else os.urandom(16).hex()


class ErrorTranslationInterceptor(_UnaryInterceptor):
    def wrap(self, behavior: Behavior, details: grpc.HandlerCallDetails) -> Behavior:
        method = details.method

        async def translating(request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                return await behavior(request, context)
            except grpc.aio.AbortError:
                raise
            except Exception as error:
                await _abort_for(error, method, context)

        return translating

    def wrap_stream(self, behavior: StreamBehavior, details: grpc.HandlerCallDetails) -> StreamBehavior:
        method = details.method

        async def translating(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            try:
                async for message in behavior(request, context):
                    yield message
            except grpc.aio.AbortError:
                raise
            except Exception as error:
                await _abort_for(error, method, context)

        return translating

    def wrap_bidi(self, behavior: StreamBehavior, details: grpc.HandlerCallDetails) -> StreamBehavior:
        return self.wrap_stream(behavior, details)


async def _abort_for(error: Exception, method: str, context: grpc.aio.ServicerContext) -> None:
    """Ends the call with the status of `error` (always raises grpc's AbortError)."""
    if isinstance(error, BillingError):
        if type(error) not in errors.STATUS_BY_ERROR:
            log.error("%s has no status in api/errors.py; answered as internal", type(error).__name__)
            await errors.abort_internal(context)
        await errors.abort_with_error(context, error)
    if isinstance(error, Unavailable):
        # Expected while a dependency is down: no traceback, one line per kind per interval.
        kind = outage_kind(error)
        log.warning("%s unavailable in %s: %s", kind, method, str(error).split("\n", 1)[0], extra=outage_log(kind))
        await errors.abort_unavailable(context)
    if type(error) is NotImplementedError:
        # A contract method not built yet: its generated base class raises this (after setting
        # UNIMPLEMENTED on the context, which the abort below would otherwise override with INTERNAL).
        await errors.abort_unimplemented(context, method)
    log.error("unexpected error in %s", method, exc_info=error)
    await errors.abort_internal(context)


_KIND_BY_DRIVER = {"psycopg": "database", "psycopg_pool": "database", "sqlalchemy": "database", "stripe": "payment_provider"}


def outage_kind(error: Unavailable) -> str:
    """What is out: the adapter's word for it, else the driver whose error it wraps."""
    if error.kind:
        return error.kind
    cause = error.__cause__
    driver = type(cause).__module__.split(".", 1)[0] if cause is not None else ""
    return _KIND_BY_DRIVER.get(driver, "dependency")


class AuthenticationInterceptor(_UnaryInterceptor):
    def __init__(
        self, authenticator: Authenticator, count_forbidden: Callable[[], None] | None = None,
        key_limiter: KeyRateLimiter | None = None,
    ):
        self._authenticator = authenticator
        self._count_forbidden = count_forbidden or (lambda: None)
        self._key_limiter = key_limiter

    def wrap_handler(self, handler: grpc.RpcMethodHandler | None, handler_call_details: grpc.HandlerCallDetails):
        handler = super().wrap_handler(handler, handler_call_details)
        checked = handler is not None and (
            handler.unary_unary is not None or handler.unary_stream is not None or handler.stream_stream is not None)
        if handler is not None and not checked and access_for(handler_call_details.method, None):
            # Unary, server-streaming and bidirectional calls are checked here (a bidirectional
            # one on its first message); a client-streaming BillingService method would skip the
            # check, so it is not served until this layer learns to check it (UNIMPLEMENTED).
            return None
        return handler

    def wrap(self, behavior: Behavior, details: grpc.HandlerCallDetails) -> Behavior:
        method, metadata = details.method, _metadata(details)

        async def authenticated(request: Any, context: grpc.aio.ServicerContext) -> Any:
            token = CALLER_KEY.set(await self._require_allowed(method, metadata, request))
            try:
                return await behavior(request, context)
            finally:
                CALLER_KEY.reset(token)

        return authenticated

    def wrap_stream(self, behavior: StreamBehavior, details: grpc.HandlerCallDetails) -> StreamBehavior:
        method, metadata = details.method, _metadata(details)

        async def authenticated(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            await self._require_allowed(method, metadata, request)  # before the first message
            async for message in behavior(request, context):
                yield message

        return authenticated

    def wrap_bidi(self, behavior: StreamBehavior, details: grpc.HandlerCallDetails) -> StreamBehavior:
        method, metadata = details.method, _metadata(details)

        async def authenticated(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            # The first message is what the caller signs (it opens the stream and names the user);
            # nothing reaches the servicer before it is checked.
            first = await anext(aiter(requests), None)
            if first is None:
                return
            key = await self._require_allowed(method, metadata, first)
            rest = requests if key is None or self._key_limiter is None else paced(requests, self._key_limiter, key)
            async for message in behavior(_starting_with(first, rest), context):
                yield message

        return authenticated

    async def _require_allowed(self, method: str, metadata: Mapping[str, str], request: Any) -> ApiKey | None:
        """The key that signed the call; None for a call that needs none."""
        access = access_for(method, request)
        if access is None or access is Access.PUBLIC:
            return None
        key = await self._authenticator.authenticate(
            method, metadata, lambda: request.SerializeToString(deterministic=True)
        )
        if EDGE_TOKEN_HEADER in metadata:  # signed over the REST request: it must be this call
            body = base64.b64decode(metadata.get(SIGNED_BODY_HEADER, ""))
            require_signed_request_is_this_call(method, metadata, request, body)
        try:
            require_access(key, access, acts_for(request))
        except PermissionDenied:
            self._count_forbidden()
            raise
        if self._key_limiter is not None:
            self._key_limiter.check(key)
        return key


async def paced(messages: AsyncIterator[Any], limiter: KeyRateLimiter, key: ApiKey) -> AsyncIterator[Any]:
    """A stream's later messages, each read once the key may spend a token on it (key_rate_limit.py)."""
    async for message in messages:
        await limiter.pace(key)
        yield message


async def _starting_with(first: Any, rest: AsyncIterator[Any]) -> AsyncIterator[Any]:
    yield first
    async for message in rest:
        yield message


class Layer(Protocol):
    """An interceptor of the chain: what it makes of a method's handler (None: not served)."""

    def wrap_handler(
        self, handler: grpc.RpcMethodHandler | None, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None: ...


class LayeredInterceptor(grpc.aio.ServerInterceptor):
    """The layers (outermost first) as the server's one interceptor. gRPC runs each interceptor
    a server has as a coroutine of its own per call, behind a continuation of its own; with six
    layers that was ~40 us of server CPU per call (docs/performance.md). Here the method's handler
    is looked up once and each layer wraps it in turn, innermost first: the same handler as six
    interceptors would make, in one coroutine."""

    def __init__(self, layers: list[Layer]):
        self.layers = tuple(layers)
        self._innermost_first = tuple(reversed(self.layers))

    async def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        for layer in self._innermost_first:
            if handler is None:
                break
            handler = layer.wrap_handler(handler, handler_call_details)
        return handler


def interceptor_chain(
    authenticator: Authenticator | None, metrics: RpcMetrics | None = None,
    count_forbidden: Callable[[], None] | None = None, key_limiter: KeyRateLimiter | None = None,
) -> list[grpc.aio.ServerInterceptor]:
    """Without an authenticator (BILLING_AUTHENTICATION=off) the slot stays empty: a layer that
    lets everyone through would cost every call and check nothing. Likewise without metrics."""
    chain: list[grpc.aio.ServerInterceptor] = [MetricsInterceptor(metrics)] if metrics is not None else []
    chain += [RequestIdInterceptor(), ErrorTranslationInterceptor(), MalformedRequestInterceptor()]
    if authenticator is not None:
        chain.append(AuthenticationInterceptor(authenticator, count_forbidden, key_limiter))
    return chain
