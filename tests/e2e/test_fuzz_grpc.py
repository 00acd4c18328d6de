"""Fuzz, gRPC: thousands of hostile calls straight to the server; every reply is one of
ACCEPTABLE_GRPC_CODES, no traceback, and the ledger exactly as before (fuzz_support.untouched_ledger).

Raw bytes with or without a bearer key, then well-formed requests signed badly (HMAC metadata over
the deterministic serialization, bearer keys) -> UNAUTHENTICATED, or with the wrong scope ->
PERMISSION_DENIED. The REST side is test_fuzz.py.
"""

from __future__ import annotations

import collections
import os
import random
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
from hypothesis import strategies as st

from billing.api.access import access_for
from billing.domain.auth import Access
from billing.v1 import accounts_pb2, balance_pb2, billing_service_pb2, catalog_pb2, consumption_pb2, operator_service_pb2
from tests.e2e.fuzz_support import CONNECTIONS, generate
from tests.e2e.fuzz_values import NOBODY
from testkit.signing import default_key

GRPC_BATCHES, GRPC_BATCH_SIZE = 200, 20  # 4,000 calls

# Why each gRPC code is acceptable for a hostile call:
ACCEPTABLE_GRPC_CODES = {
    grpc.StatusCode.INVALID_ARGUMENT,  # undecodable bytes, invalid UTF-8, a field out of its bounds
    grpc.StatusCode.NOT_FOUND,  # a well-formed request for an account that does not exist
    grpc.StatusCode.FAILED_PRECONDITION,  # a state refusal (insufficient time, used token): no effect
    grpc.StatusCode.ALREADY_EXISTS,  # an idempotency key reused with other parameters: no effect
    grpc.StatusCode.RESOURCE_EXHAUSTED,  # a message over the 1 MiB receive limit
    grpc.StatusCode.UNIMPLEMENTED,  # a method name the service does not have
    grpc.StatusCode.UNAUTHENTICATED,  # half the calls carry no key
    grpc.StatusCode.PERMISSION_DENIED,
}

SERVICES = (billing_service_pb2.DESCRIPTOR.services_by_name["BillingService"],
            operator_service_pb2.DESCRIPTOR.services_by_name["OperatorService"])
METHODS = {f"/{service.full_name}/{m.name}": m for service in SERVICES for m in service.methods}  # by gRPC path
STREAMED = {"WatchBalance", "ExportAccountLedger"}  # server streams: read their first message
MESSAGE_CLASSES = [
    accounts_pb2.CreateAccountRequest, accounts_pb2.CreateGrantRequest, accounts_pb2.CreateGrantResponse,
    balance_pb2.EnhancedBalance, balance_pb2.BillingEventHistory, balance_pb2.UsageAnalytics,
    catalog_pb2.PricingCatalog, consumption_pb2.ConsumeRequest, consumption_pb2.ConsumeResponse,
    consumption_pb2.CheckSufficientBatchRequest, consumption_pb2.CheckSufficientBatchResponse,
    billing_service_pb2.GetBalanceRequest, billing_service_pb2.ListEventsRequest, billing_service_pb2.GetUsageRequest,
]
# The methods a decodable hostile request may legitimately succeed on: they change no balance. (The
# webhook lists read; a replay of the failed since a time succeeds on an endpoint of nobody's, which
# neutralize() makes sure of, replaying nothing.)
READ_ONLY = {"GetCatalog", "CreateSessionKey", "ListWebhookEndpoints", "ListWebhookDeliveries",
             "ReplayFailedWebhookDeliveries",
             # the operator console's reads (nothing found for nobody, or service-wide lists)
             "SearchAccounts", "ListAuditEntries", "ListStripeEvents", "ListMigrationRuns", "GetServiceHealth",
             "GetServiceActivity"}


def name_of(method: str) -> str:
    return method.rsplit("/", 1)[1]


def answered_code(method: str, response: bytes) -> grpc.StatusCode:
    """OK, or for ConsumeStream, which answers each message's error as a message on an OK stream
    (issue 24), that error's code: judged as the unary call's status would be."""
    if name_of(method) != "ConsumeStream":
        return grpc.StatusCode.OK
    answer = consumption_pb2.ConsumeStreamResponse.FromString(response)
    return grpc.StatusCode[answer.error.code] if answer.HasField("error") else grpc.StatusCode.OK


def _request_class(method: str):
    from google.protobuf import message_factory

    return message_factory.GetMessageClass(METHODS[method].input_type)


@st.composite
def wrong_typed_message(draw) -> bytes:
    """A message of another type, filled with hostile values where it has strings and numbers."""
    cls = draw(st.sampled_from(MESSAGE_CLASSES))
    return _some_scalar_fields_set(draw, cls(), text_max=300).SerializeToString()


def _some_scalar_fields_set(draw, message, text_max: int):
    """Sets a random subset of the message's scalar fields to values from their whole range."""
    for f in message.DESCRIPTOR.fields:
        if f.is_repeated or f.type == f.TYPE_MESSAGE or not draw(st.booleans()):
            continue
        if f.type == f.TYPE_STRING:
            setattr(message, f.name, draw(st.text(max_size=text_max)))
        elif f.type in (f.TYPE_INT32, f.TYPE_INT64):
            bits = 31 if f.type == f.TYPE_INT32 else 63
            setattr(message, f.name, draw(st.integers(-(2**bits), 2**bits - 1)))
        elif f.type == f.TYPE_BOOL:
            setattr(message, f.name, draw(st.booleans()))
        elif f.type == f.TYPE_DOUBLE:
            setattr(message, f.name, draw(st.floats()))
    return message


GRPC_PAYLOADS = st.one_of(
    st.binary(max_size=300),
    wrong_typed_message(),
    st.tuples(wrong_typed_message(), st.binary(max_size=20)).map(lambda p: p[0] + p[1]),  # trailing garbage
    st.sampled_from([b"\x0a\x02\xff\xfe", b"\x0a\x80\x80\x80\x80\x10", b"\x12\x05\x0a\x03\xc0\xaf\x00", b"\xff" * 10]),
)


def neutralize(method: str, payload: bytes) -> bytes:
    """Keeps a hostile payload hostile: when it happens to decode as the method's request with a
    valid user_id, that id becomes one that cannot exist (fz-...), or an invalid one for
    CreateAccount, the one call that would create it. Unknown fields are kept."""
    if method not in METHODS:
        return payload
    cls = _request_class(method)
    try:
        message = cls.FromString(payload)
    except Exception:
        return payload
    name = name_of(method)
    if name == "ConsumeStream":  # its user is the nested consume's
        if message.HasField("consume"):
            inner = neutralize("/billing.v1.BillingService/Consume", message.consume.SerializeToString())
            message.consume.CopyFrom(consumption_pb2.ConsumeRequest.FromString(inner))
        return message.SerializeToString()
    if name == "ReplayFailedWebhookDeliveries":  # only an endpoint that cannot exist
        message.endpoint_id = "fz-" + message.endpoint_id[:50]
        return message.SerializeToString()
    if name == "CreateWebhookEndpoint":  # never a URL the service may send to
        message.url = "fz:" + message.url
        return message.SerializeToString()
    if name in ("OperatorRevokeKey", "ReprocessStripeEvent"):  # only a key or an event that cannot exist
        field = "key_id" if name == "OperatorRevokeKey" else "event_id"
        setattr(message, field, "fz-" + getattr(message, field)[:50])
        return message.SerializeToString()
    if "user_id" not in cls.DESCRIPTOR.fields_by_name:
        return payload
    from billing.domain.errors import InvalidArgument
    from billing.domain.limits import require_account_id

    try:
        require_account_id(message.user_id)
    except InvalidArgument:
        return payload
    message.user_id = "not valid!" if name == "CreateAccount" else "fz-" + message.user_id[:100]
    return message.SerializeToString()


def test_hostile_grpc_calls_get_client_errors_and_change_nothing(e2e, untouched_ledger):
    channel = grpc.insecure_channel(e2e.grpc_target)
    methods = sorted(METHODS) + ["/billing.v1.BillingService/NoSuchMethod", "/billing.v1.OperatorService/NoSuchMethod"]
    codes: collections.Counter = collections.Counter()
    failures: list[str] = []

    def one(method: str, payload: bytes) -> None:
        call = channel.unary_unary(method)  # bytes in, bytes out
        details = ""
        metadata = default_key().bearer() if hash(payload) % 2 else None  # half of them authenticated
        try:
            code = answered_code(method, call(payload, timeout=20, metadata=metadata))
        except grpc.RpcError as error:
            code = error.code()
            details = error.details()
        codes[code.name] += 1
        if code == grpc.StatusCode.OK and name_of(method) in READ_ONLY:
            return
        if code not in ACCEPTABLE_GRPC_CODES:
            failures.append(f"{method} {payload[:100]!r} -> {code.name} {details}")

    calls = generate(st.tuples(st.sampled_from(methods), GRPC_PAYLOADS), GRPC_BATCHES, GRPC_BATCH_SIZE)
    # And one message over the 1 MiB limit per method.
    calls += [(method, b"\x0a" + b"\xff\xff\x7f" + b"a" * (2 * 1024 * 1024)) for method in sorted(METHODS)]
    executor = ThreadPoolExecutor(CONNECTIONS)
    try:
        list(executor.map(lambda c: one(c[0], neutralize(c[0], c[1])), calls))
    finally:
        executor.shutdown()
        channel.close()
    print(f"\ngRPC fuzz: {sum(codes.values())} calls; codes {dict(codes)}")
    assert sum(codes.values()) >= 4_000
    assert not failures, f"{len(failures)} bad replies, first ones:\n" + "\n".join(failures[:15])


# ---------------------------------------------------------------- gRPC: signatures and scopes

AUTH_GRPC_BATCHES, AUTH_GRPC_BATCH_SIZE = 80, 20  # 1,600 calls
PREFIX = "/billing.v1.BillingService/"
# Every method that needs a key (GetCatalog, HandleStripeWebhook and RedeemConsoleLogin need none).
KEYED_METHODS = sorted(m for m in METHODS if access_for(m, None) is not Access.PUBLIC)
UNAUTHENTICATED_MODES = (
    "garbage_signature", "malformed_signature", "signed_other_request", "signed_other_method", "stale", "future",
    "other_key_id", "unknown_key_id", "no_timestamp", "bearer_wrong_secret", "bearer_user_key", "bearer_malformed",
    "forged_edge_token",
)
DENIED_MODES = ("user_key_for_another_user", "service_key_on_admin_method", "user_key_on_service_method")
AUTH_MODES = UNAUTHENTICATED_MODES + DENIED_MODES + ("admin_signed_hostile",) * 3


@st.composite
def keyed_grpc_call(draw) -> tuple[str, str, bytes, bytes]:
    """(mode, method, request bytes, other request bytes): a well-formed request of the method's own
    type with hostile scalar fields, acting for nobody (an fz- id; CreateAccount: an invalid id)."""
    mode = draw(st.sampled_from(AUTH_MODES))
    if mode == "service_key_on_admin_method":
        method = PREFIX + draw(st.sampled_from(["CreateGrant", "CreateAccount"]))
        if draw(st.booleans()):  # every operator call needs an admin key
            method = draw(st.sampled_from([m for m in KEYED_METHODS if "/billing.v1.OperatorService/" in m]))
    elif mode == "user_key_on_service_method":
        method = PREFIX + "CreateSessionKey"
    else:
        method = draw(st.sampled_from(KEYED_METHODS))
    cls = _request_class(method)
    message = _some_scalar_fields_set(draw, cls(), text_max=40)
    if "user_id" in cls.DESCRIPTOR.fields_by_name:
        message.user_id = "not valid!" if name_of(method) == "CreateAccount" else draw(NOBODY)
    for field in ("key_id", "event_id"):  # the operator's keys and Stripe events: ones that cannot exist
        if field in cls.DESCRIPTOR.fields_by_name and name_of(method) != "ListStripeEvents":
            setattr(message, field, draw(NOBODY))
    if name_of(method) == "CreateAccount" and mode == "service_key_on_admin_method":
        message.plan_key = draw(st.sampled_from(["pro", "starter", "platinum"]))  # a paid plan needs an admin key
    other = cls.FromString(message.SerializeToString())
    if "user_id" in cls.DESCRIPTOR.fields_by_name:
        other.user_id = message.user_id + "x"
    return mode, method, message.SerializeToString(deterministic=True), other.SerializeToString(deterministic=True)


def keyed_metadata(mode: str, method: str, payload: bytes, other: bytes, keys) -> tuple[tuple[str, str], ...]:
    path, now = method, int(time.time())
    admin = keys.admin
    if mode == "garbage_signature":
        return admin.grpc_metadata(path, payload)[:2] + (("x-hmac-signature", os.urandom(32).hex()),)
    if mode == "malformed_signature":
        good = admin.grpc_metadata(path, payload)
        return good[:2] + (("x-hmac-signature", random.choice([good[2][1].upper(), good[2][1][:-1], "", "zz" * 32])),)
    if mode == "signed_other_request":
        return admin.grpc_metadata(path, other if other != payload else payload + b"\x00")
    if mode == "signed_other_method":
        return admin.grpc_metadata(random.choice([m for m in sorted(METHODS) if m != method]), payload)
    if mode in ("stale", "future"):
        offset = random.randint(310, 10**7)  # 10 s past the window: whole seconds, time in flight
        return admin.grpc_metadata(path, payload, now + (offset if mode == "future" else -offset))
    if mode == "other_key_id":
        return ((("x-hmac-key-id", random.choice([keys.service.key_id, keys.user.key_id])),)
                + admin.grpc_metadata(path, payload)[1:])
    if mode == "unknown_key_id":
        return (("x-hmac-key-id", random.choice(["bk_fz_unknown", "", "k" * 300])),) + admin.grpc_metadata(path, payload)[1:]
    if mode == "no_timestamp":
        good = admin.grpc_metadata(path, payload)
        return (good[0], good[2])
    if mode == "bearer_wrong_secret":
        return (("authorization", f"Bearer {admin.key_id}.{keys.service.secret}"),)
    if mode == "bearer_user_key":  # a user key never authenticates as a bearer
        return keys.user.bearer()
    if mode == "bearer_malformed":
        return (("authorization", random.choice(["Bearer ", "Bearer x", f"Bearer {admin.key_id}", f"bearer {admin.key_id}.{admin.secret}",
                                                  f"Basic {admin.key_id}.{admin.secret}", f"Bearer .{admin.secret}"])),)
    if mode == "forged_edge_token":
        return admin.grpc_metadata(path, payload) + (("x-billing-edge-token", os.urandom(16).hex()),)
    if mode == "user_key_for_another_user":
        return keys.user.grpc_metadata(path, payload)
    if mode == "service_key_on_admin_method":
        return random.choice([keys.service.grpc_metadata(path, payload), keys.service.bearer()])
    if mode == "user_key_on_service_method":
        return keys.user.grpc_metadata(path, payload)
    assert mode == "admin_signed_hostile", mode
    return admin.grpc_metadata(path, payload)


def test_signed_grpc_calls_with_bad_signatures_or_scopes_are_refused(e2e, session_keys, untouched_ledger):
    """Direct gRPC callers sign (metadata over the deterministic serialization) or send a bearer key:
    every bad signature is UNAUTHENTICATED, every wrong scope PERMISSION_DENIED, before validation;
    and validly signed hostile requests get client errors as in the unsigned fuzz."""
    channel = grpc.insecure_channel(e2e.grpc_target)
    codes: collections.Counter = collections.Counter()
    failures: list[str] = []

    def one(call: tuple[str, str, bytes, bytes]) -> None:
        mode, method, payload, other = call
        if mode == "user_key_on_service_method":  # for its own user: the scope alone is wrong
            request = _request_class(method).FromString(payload)
            request.user_id = session_keys.user_id
            payload = request.SerializeToString(deterministic=True)
        metadata = keyed_metadata(mode, method, payload, other, session_keys)
        details = ""
        try:
            if name_of(method) in STREAMED:
                stream = channel.unary_stream(method)(payload, timeout=5, metadata=metadata)
                next(iter(stream))
                stream.cancel()
                code = grpc.StatusCode.OK
            else:
                code = answered_code(method, channel.unary_unary(method)(payload, timeout=20, metadata=metadata))
        except grpc.RpcError as error:
            code, details = error.code(), error.details()
        codes[mode, code.name] += 1
        if mode in UNAUTHENTICATED_MODES:
            expected = {grpc.StatusCode.UNAUTHENTICATED}
        elif mode in DENIED_MODES:
            expected = {grpc.StatusCode.PERMISSION_DENIED}
        else:
            expected = ACCEPTABLE_GRPC_CODES | ({grpc.StatusCode.OK} if name_of(method) in READ_ONLY else set())
        if code not in expected:
            failures.append(f"{mode} {method} {payload[:100]!r} metadata={[(k, v[:40]) for k, v in metadata]} -> {code.name} {details}")

    calls = generate(keyed_grpc_call(), AUTH_GRPC_BATCHES, AUTH_GRPC_BATCH_SIZE)
    executor = ThreadPoolExecutor(CONNECTIONS)
    try:
        list(executor.map(one, calls))
    finally:
        executor.shutdown()
        channel.close()
    by_mode = collections.Counter(mode for mode, _ in codes.elements())
    print(f"\nsigned gRPC fuzz: {sum(codes.values())} calls; by mode {dict(by_mode)}")
    assert sum(codes.values()) >= 1_500
    assert set(by_mode) == set(AUTH_MODES), set(AUTH_MODES) - set(by_mode)
    assert not failures, f"{len(failures)} bad replies, first ones:\n" + "\n".join(failures[:15])
