"""The gRPC server's interceptor chain: what every BillingService call goes through.

Outermost first (server.py passes them in this order):
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

import logging
import os
from typing import Any, Awaitable, Callable, Mapping

import grpc

from billing.api import errors
from billing.api.malformed import MalformedRequestInterceptor
from billing.api.request_ids import REQUEST_ID, REQUEST_ID_HEADER, REQUEST_ID_MAX_LENGTH
from billing.domain.errors import BillingError
from billing.service.ports import Authenticator, Unavailable

log = logging.getLogger(__name__)

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


class RequestIdInterceptor(_UnaryInterceptor):
    def wrap(self, behavior: Behavior, details: grpc.HandlerCallDetails) -> Behavior:
        sent = _metadata(details).get(REQUEST_ID_HEADER, "")
        # An id from outside is kept only when it is a sane token: it ends up in every log line, and
        # in the reply's metadata, which must be ASCII (x-request-id: [MH\xfcZ was a 500).
        sane = 0 < len(sent) <= REQUEST_ID_MAX_LENGTH and sent.isascii() and sent.isprintable()
        request_id = sent if sane else os.urandom(16).hex()

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
    def __init__(self, authenticator: Authenticator):
        self._authenticator = authenticator

    def wrap(self, behavior: Behavior, details: grpc.HandlerCallDetails) -> Behavior:
        method, metadata = details.method, _metadata(details)

        async def authenticated(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await self._authenticator.authenticate(method, metadata)
            return await behavior(request, context)

        return authenticated


def interceptor_chain(authenticator: Authenticator | None) -> list[grpc.aio.ServerInterceptor]:
    """Without an authenticator (until signed requests land) the slot stays empty: a layer that
    lets everyone through would cost every call and check nothing."""
    chain: list[grpc.aio.ServerInterceptor] = [
        RequestIdInterceptor(), ErrorTranslationInterceptor(), MalformedRequestInterceptor(),
    ]
    if authenticator is not None:
        chain.append(AuthenticationInterceptor(authenticator))
    return chain
