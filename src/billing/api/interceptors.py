"""The gRPC server's interceptor chain: what every BillingService call goes through.

Outermost first (server.py passes them in this order):
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
Streaming methods (health watch, reflection) pass through untouched.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import re
from time import perf_counter
from typing import Any, Awaitable, Callable, Mapping, Protocol

import grpc

from billing.api import errors
from billing.api.access import access_for, acts_for
from billing.api.malformed import MalformedRequestInterceptor
from billing.api.request_ids import REQUEST_ID, REQUEST_ID_HEADER, REQUEST_ID_MAX_LENGTH
from billing.api.rest_binding import require_signed_request_is_this_call
from billing.domain.auth import EDGE_TOKEN_HEADER, SIGNED_BODY_HEADER, Access, require_access
from billing.domain.errors import BillingError, PermissionDenied
from billing.service.ports import Authenticator, Unavailable

log = logging.getLogger(__name__)
_SAFE_REQUEST_ID = re.compile(f"[A-Za-z0-9._:-]{{1,{REQUEST_ID_MAX_LENGTH}}}")

Behavior = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]


class _UnaryInterceptor(grpc.aio.ServerInterceptor):
    """Wraps the behaviour of each unary-unary method once per call."""

    async def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        return handler._replace(unary_unary=self.wrap(handler.unary_unary, handler_call_details))

    def wrap(self, behavior: Behavior, details: grpc.HandlerCallDetails) -> Behavior:
        raise NotImplementedError


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
        sent = _metadata(details).get(REQUEST_ID_HEADER, "")
        # An id from outside is kept only when it is a plain token: it is echoed in response
        # metadata (where gRPC refuses non-ASCII) and written into every log line.
        request_id = sent if _SAFE_REQUEST_ID.fullmatch(sent) else os.urandom(16).hex()

        async def with_request_id(request: Any, context: grpc.aio.ServicerContext) -> Any:
            token = REQUEST_ID.set(request_id)
            try:
                return await behavior(request, context)
            finally:
                REQUEST_ID.reset(token)

        return with_request_id


class ErrorTranslationInterceptor(_UnaryInterceptor):
    def wrap(self, behavior: Behavior, details: grpc.HandlerCallDetails) -> Behavior:
        method = details.method

        async def translating(request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                return await behavior(request, context)
            except BillingError as error:
                if type(error) not in errors.STATUS_BY_ERROR:
                    log.error("%s has no status in api/errors.py; answered as internal", type(error).__name__)
                    await errors.abort_internal(context)
                await errors.abort_with_error(context, error)
            except grpc.aio.AbortError:
                raise
            except Unavailable:
                log.warning("unavailable in %s", method, exc_info=True)
                await errors.abort_unavailable(context)
            except Exception:
                log.exception("unexpected error in %s", method)
                await errors.abort_internal(context)

        return translating


class AuthenticationInterceptor(_UnaryInterceptor):
    def __init__(self, authenticator: Authenticator, count_forbidden: Callable[[], None] | None = None):
        self._authenticator = authenticator
        self._count_forbidden = count_forbidden or (lambda: None)

    async def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await super().intercept_service(continuation, handler_call_details)
        if handler is not None and handler.unary_unary is None and access_for(handler_call_details.method, None):
            # Only unary calls are checked here: a streaming BillingService method would skip the
            # check, so it is not served until this layer learns to check it (UNIMPLEMENTED).
            return None
        return handler

    def wrap(self, behavior: Behavior, details: grpc.HandlerCallDetails) -> Behavior:
        method, metadata = details.method, _metadata(details)

        async def authenticated(request: Any, context: grpc.aio.ServicerContext) -> Any:
            access = access_for(method, request)
            if access is not None and access is not Access.PUBLIC:
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
            return await behavior(request, context)

        return authenticated


def interceptor_chain(
    authenticator: Authenticator | None, metrics: RpcMetrics | None = None,
    count_forbidden: Callable[[], None] | None = None,
) -> list[grpc.aio.ServerInterceptor]:
    """Without an authenticator (BILLING_AUTHENTICATION=off) the slot stays empty: a layer that
    lets everyone through would cost every call and check nothing. Likewise without metrics."""
    chain: list[grpc.aio.ServerInterceptor] = [MetricsInterceptor(metrics)] if metrics is not None else []
    chain += [RequestIdInterceptor(), ErrorTranslationInterceptor(), MalformedRequestInterceptor()]
    if authenticator is not None:
        chain.append(AuthenticationInterceptor(authenticator, count_forbidden))
    return chain
