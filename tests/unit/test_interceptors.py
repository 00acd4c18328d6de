"""The interceptor chain: request ids, error translation, and the authentication slot."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

import grpc
import pytest

from billing.api.interceptors import (
    AuthenticationInterceptor, ErrorTranslationInterceptor, LayeredInterceptor, RequestIdInterceptor,
)
from billing.api.request_ids import REQUEST_ID, RequestIdLogFilter
from billing.domain.errors import AccountNotFound, Unauthenticated
from tests.support.grpc_context import AbortingContext

METHOD = "/billing.v1.BillingService/GetBalance"


def details(**metadata: str) -> SimpleNamespace:
    return SimpleNamespace(method=METHOD, invocation_metadata=tuple(metadata.items()))


def chain(behavior, call_details, authenticator=None):
    """The server's order: request id, then error translation, then authentication."""
    if authenticator is not None:
        behavior = AuthenticationInterceptor(authenticator).wrap(behavior, call_details)
    behavior = ErrorTranslationInterceptor().wrap(behavior, call_details)
    return RequestIdInterceptor().wrap(behavior, call_details)


async def test_the_id_envoy_sent_names_every_log_line_of_the_call_and_its_error_body(caplog):
    logger = logging.getLogger("billing.test")
    caplog.handler.addFilter(RequestIdLogFilter())

    async def get_balance(request, context):
        logger.warning("looking up the account")
        raise AccountNotFound("no account for user_id 'x'", field="user_id")

    context = AbortingContext()
    with caplog.at_level(logging.WARNING), pytest.raises(grpc.aio.AbortError):
        await chain(get_balance, details(**{"x-request-id": "req-42"}))(None, context)

    assert [r.request_id for r in caplog.records] == ["req-42"]
    code, _, metadata = context.aborted
    assert code == grpc.StatusCode.NOT_FOUND
    assert json.loads(metadata["x-error-json"])["request_id"] == "req-42"
    assert metadata["x-request-id"] == "req-42"
    assert REQUEST_ID.get() == "-"  # reset after the call


async def test_a_call_without_an_id_gets_a_new_one_and_unsafe_ids_are_replaced():
    seen = []

    async def behavior(request, context):
        seen.append(REQUEST_ID.get())

    await chain(behavior, details())(None, AbortingContext())
    for unsafe in ("bad\nid", "café", "a b", "x]" , "y" * 129):
        await chain(behavior, details(**{"x-request-id": unsafe}))(None, AbortingContext())
    assert all(len(request_id) == 32 for request_id in seen) and len(set(seen)) == len(seen)


async def test_an_unexpected_error_is_internal_with_no_detail_leaked():
    async def behavior(request, context):
        raise RuntimeError("secret detail")

    context = AbortingContext()
    with pytest.raises(grpc.aio.AbortError):
        await chain(behavior, details())(None, context)
    code, message, metadata = context.aborted
    assert code == grpc.StatusCode.INTERNAL and "secret" not in message + metadata["x-error-json"]


async def test_a_method_not_built_yet_is_501_unimplemented_not_internal():
    async def generated_base(request, context):  # as the generated *Servicer base class's method ends
        raise NotImplementedError("Method not implemented!")

    context = AbortingContext()
    with pytest.raises(grpc.aio.AbortError):
        await chain(generated_base, details())(None, context)
    code, message, metadata = context.aborted
    assert code == grpc.StatusCode.UNIMPLEMENTED and "GetBalance" in message
    assert metadata["x-http-status"] == "501"
    assert json.loads(metadata["x-error-json"])["error"] == "UNIMPLEMENTED"


async def test_a_refused_caller_never_reaches_the_servicer():
    ran = []

    class RefuseEveryone:
        async def authenticate(self, method, metadata, serialized):
            raise Unauthenticated(f"{method} refused")

    async def behavior(request, context):
        ran.append(True)

    context = AbortingContext()
    with pytest.raises(grpc.aio.AbortError):
        await chain(behavior, details(), RefuseEveryone())(SimpleNamespace(user_id="u"), context)
    assert ran == [] and context.aborted[0] == grpc.StatusCode.UNAUTHENTICATED


async def test_a_non_ascii_request_id_is_replaced_since_it_goes_back_in_metadata():
    seen = []

    async def get_balance(request, context):
        seen.append(REQUEST_ID.get())

    await chain(get_balance, details(**{"x-request-id": "[MH\u00fcZ"}))(None, AbortingContext())
    assert seen[0] != "[MH\u00fcZ" and seen[0].isascii()


class _Refusing:
    async def authenticate(self, method, metadata, serialized):
        raise Unauthenticated("request signature missing, expired or invalid")


async def test_a_server_streaming_billing_method_is_authenticated_before_its_first_message():
    sent = []

    async def stream(request, context):
        sent.append("first")
        yield 1

    async def continuation(details):
        return grpc.unary_stream_rpc_method_handler(stream)

    billing = SimpleNamespace(method="/billing.v1.BillingService/WatchBalance", invocation_metadata=())
    handler = await AuthenticationInterceptor(_Refusing()).intercept_service(continuation, billing)
    with pytest.raises(Unauthenticated):
        async for _ in handler.unary_stream(SimpleNamespace(user_id="alice"), AbortingContext()):
            pass
    assert sent == []


async def test_a_streaming_error_is_translated_like_a_unary_one():
    async def stream(request, context):
        raise AccountNotFound("no account for user_id 'x'", field="user_id")
        yield  # an async generator

    billing = SimpleNamespace(method="/billing.v1.BillingService/WatchBalance", invocation_metadata=())
    behavior = ErrorTranslationInterceptor().wrap_stream(stream, billing)
    context = AbortingContext()
    with pytest.raises(grpc.aio.AbortError):
        async for _ in behavior(None, context):
            pass
    assert context.aborted[0] == grpc.StatusCode.NOT_FOUND


async def test_a_client_streaming_billing_method_is_not_served_without_an_authentication_check():
    async def stream(request_iterator, context):
        return 1

    class NeverCalled:
        async def authenticate(self, method, metadata, serialized):
            raise AssertionError("not reached")

    interceptor = AuthenticationInterceptor(NeverCalled())

    async def continuation(details):
        return grpc.stream_unary_rpc_method_handler(stream)

    billing = SimpleNamespace(method="/billing.v1.BillingService/Upload", invocation_metadata=())
    health = SimpleNamespace(method="/grpc.health.v1.Health/Watch", invocation_metadata=())
    for served in (interceptor, LayeredInterceptor([interceptor])):
        assert await served.intercept_service(continuation, billing) is None  # UNIMPLEMENTED
        assert await served.intercept_service(continuation, health) is not None  # health stays open
