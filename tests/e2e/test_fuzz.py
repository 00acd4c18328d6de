"""Fuzz: >= 10,000 hostile REST requests through Envoy and thousands of hostile gRPC calls; every
reply is a 4xx JSON error (gRPC: one of ACCEPTABLE_GRPC_CODES), never 5xx, no traceback in the
server log, and the ledger (and webhook, payment, key and auto top-up rows) is exactly as before
each fuzz test (`billing verify` passes).

The cases (fuzz_cases.py) are invalid by construction, so a 2xx is a failure too. Hypothesis draws
batches; each batch goes out over a pool of persistent HTTP/1.1 connections (a connection that
Envoy closes, as it does after a transcoder 400, is reopened; an SSE reply is read with a short
timeout, since a valid one never ends). Every REST path the protos bind (google.api.http) must have
fuzz cases: a new RPC without them fails the test. Generation is derandomized (the same cases each
run); BILLING_FUZZ_RANDOM=1 draws new ones.

gRPC: raw bytes with or without a bearer key, then well-formed requests signed badly (HMAC metadata
over the deterministic serialization, bearer keys) -> UNAUTHENTICATED, or with the wrong scope -> PERMISSION_DENIED.
Two tests on a real account: an exact replay of a signed write has no second effect, the same
signature over anything else is 401; and a validly signed stream starts as text/event-stream.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import http.client
import json
import os
import random
import re
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import grpc
import psycopg
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from bench.http1_client import ProtocolError, parse_http_response
from billing.adapters.db.invariants import find_violations_in_database
from billing.api.access import access_for
from billing.domain.auth import Access
from billing.settings import libpq_url
from billing.v1 import accounts_pb2, balance_pb2, billing_service_pb2, catalog_pb2, consumption_pb2
from tests.e2e.fuzz_cases import NOBODY, REST_CASES, HttpCase
from tests.e2e.helpers import create_account, grant, new_user
from tests.support.processes import REPO_ROOT
from tests.support.signing import SigningKey, default_key

REST_BATCHES, REST_BATCH_SIZE = 550, 20  # 11,000 requests
GRPC_BATCHES, GRPC_BATCH_SIZE = 200, 20  # 4,000 calls
CONNECTIONS = 8
STREAM_READ_TIMEOUT = 3.0  # an SSE reply that has not ended by then is an open stream
DERANDOMIZE = os.environ.get("BILLING_FUZZ_RANDOM", "") != "1"

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



# How each case is signed, by a hash of the case: validation is fuzzed behind authentication,
# and authentication itself with missing, forged, stale and wrongly scoped signatures.
SIGNINGS = ("admin", "admin", "none", "user_key_of_another_user", "garbage_signature", "stale_timestamp")
KEYS: dict[str, SigningKey] = {}  # the session's user key (acts for a user no case names) and service key


def prepare(case: HttpCase) -> HttpCase:
    signing = case.signing or SIGNINGS[hash(case.wire()) % len(SIGNINGS)]
    if signing == "none":
        return case
    if signing.startswith("replay:"):
        return _replayed(case, signing)
    target = case.target.decode("utf-8", "surrogateescape")
    key = KEYS["user"] if signing == "user_key_of_another_user" else default_key()
    stamp = int(time.time()) - (3600 if signing == "stale_timestamp" else 0)
    signed = key.rest_headers(case.method, target, case.body, timestamp=stamp)
    if signing == "garbage_signature":
        signed["X-HMAC-Signature"] = os.urandom(32).hex()
    return _with_headers(case, signed)


def _with_headers(case: HttpCase, signed: dict[str, str]) -> HttpCase:
    headers = tuple((name.encode(), value.encode()) for name, value in signed.items())
    return dataclasses.replace(case, headers=case.headers + headers)


def _replayed(case: HttpCase, signing: str) -> HttpCase:
    """The admin key's signature over case.signed_over, sent with the case's (other) request."""
    assert case.signed_over is not None
    method, target, body = case.signed_over
    _, how, arg = (signing.split(":") + [""])[:3]
    now = int(time.time())
    stamp = now + int(arg) if how == "offset" else now
    signed = default_key().rest_headers(method, target.decode(), body, timestamp=stamp)
    if how == "timestamp":  # signed now, sent with another timestamp inside the window
        signed["X-HMAC-Timestamp"] = str(now + int(arg))
    if how == "key_id":
        signed["X-HMAC-Key-Id"] = {"service": KEYS["service"].key_id, "user": KEYS["user"].key_id, "empty": "",
                                   "unknown": "k_fz_unknown", "long": "k" * 300}[arg]
    return _with_headers(case, signed)


# ---------------------------------------------------------------- a keep-alive HTTP/1.1 pool


class Connection:
    def __init__(self, port: int):
        self.port = port
        self.sock: socket.socket | None = None

    def exchange(self, request: bytes, stream: bool = False) -> tuple[int, bytes, bytes]:
        """(status, head, body); reconnects once if the kept-alive socket was closed under us.
        stream: an SSE request, whose valid reply never ends: read with a short timeout."""
        for attempt in (0, 1):
            if self.sock is None:
                self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=20)
            self.sock.settimeout(STREAM_READ_TIMEOUT if stream else 20)
            try:
                return self._exchange(request)
            except (ConnectionError, ProtocolError, EOFError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _exchange(self, request: bytes) -> tuple[int, bytes, bytes]:
        assert self.sock is not None
        try:
            self.sock.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass  # Envoy answered and closed before reading everything (431, 413): read the reply
        buffer = bytearray()
        while True:
            parsed = parse_http_response(buffer)
            if parsed is not None:
                status, body, used, keep_alive = parsed
                head = bytes(buffer[:buffer.find(b"\r\n\r\n")]).lower()
                if not keep_alive or used != len(buffer):
                    self.close()
                return status, head, body
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    raise
                self.close()  # a reply that does not end (an open stream): its head is enough
                status = int(bytes(buffer[:buffer.find(b"\r\n")]).split()[1])
                return status, bytes(buffer[:end]).lower(), b"<no end within %.0f s>" % STREAM_READ_TIMEOUT
            if not chunk:
                raise EOFError("connection closed before a full reply")
            buffer += chunk

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


class Pool:
    """Admin paths go to the internal listener, as a backend sends them; the rest to the browser's."""

    def __init__(self, ports: tuple[int, int], size: int):
        self.local = threading.local()
        self.ports = ports
        self.executor = ThreadPoolExecutor(size)
        self.connections: list[Connection] = []

    def _connection(self, internal: bool) -> Connection:
        if not hasattr(self.local, "conns"):
            self.local.conns = [Connection(port) for port in self.ports]
            self.connections.extend(self.local.conns)
        return self.local.conns[1 if internal else 0]

    def send_all(self, cases: list[HttpCase]) -> list[tuple[HttpCase, int, bytes, bytes]]:
        def one(case: HttpCase):
            wire = prepare(case).wire()
            stream = case.target.split(b"?")[0].endswith(b"/stream")
            return (case, *self._connection(case.target.startswith(b"/v1/billing/admin/")).exchange(wire, stream))

        return list(self.executor.map(one, cases))

    def close(self) -> None:
        self.executor.shutdown()
        for conn in self.connections:
            conn.close()


# ---------------------------------------------------------------- the oracle


def rest_failure(case: HttpCase, status: int, head: bytes, body: bytes) -> str | None:
    """Why this reply is wrong, or None."""
    if not 400 <= status < 500:
        return f"status {status}"
    if case.expect is not None and status not in case.expect:
        return f"status {status}, expected one of {sorted(case.expect)}"
    if b"\r\ncontent-type: application/json" not in head:
        return "not application/json"
    try:
        document = json.loads(body)
    except ValueError:
        return "body is not JSON"
    if not (isinstance(document, dict) and isinstance(document.get("error"), str)
            and document.get("http_status") == status and isinstance(document.get("message"), str)):
        return "body is not the error shape"
    return None


def _describe(case: HttpCase, status: int, body: bytes, why: str) -> str:
    return (f"[{case.family}{' ' + case.signing if case.signing else ''}] {case.method} {case.target[:200]!r} headers={[(n, v[:60]) for n, v in case.headers]} "
            f"body={case.body[:200]!r} -> {status} {body[:300]!r}: {why}")


# ---------------------------------------------------------------- the ledger before and after


def ledger_snapshot(database_url: str) -> tuple:
    with psycopg.connect(libpq_url(database_url)) as connection:
        return connection.execute(
            "SELECT (SELECT count(*) FROM accounts), (SELECT count(*) FROM buckets),"
            " (SELECT count(*) FROM ledger_events), (SELECT coalesce(sum(seconds), 0) FROM ledger_events),"
            " (SELECT count(*) FROM idempotency_records), (SELECT count(*) FROM resume_tokens),"
            " (SELECT count(*) FROM webhook_events), (SELECT count(*) FROM payments),"
            " (SELECT count(*) FROM payment_profiles), (SELECT count(*) FROM payment_customers),"
            " (SELECT count(*) FROM api_keys),"
            " (SELECT md5(coalesce(string_agg(concat_ws('|', account_id, topup_enabled, topup_threshold_seconds,"
            "  topup_package_key, topup_currency), ',' ORDER BY account_id), '')) FROM accounts)"
        ).fetchone()


@pytest.fixture
def untouched_ledger(e2e):
    """Asserts, after each fuzz test, that the ledger did not move and its invariants hold."""
    before = ledger_snapshot(e2e.database_url)
    tracebacks = e2e.server.stderr_log.read_text(errors="replace").count("Traceback")
    yield
    assert ledger_snapshot(e2e.database_url) == before
    assert asyncio.run(find_violations_in_database(e2e.database_url)) == []
    log = e2e.server.stderr_log.read_text(errors="replace")
    assert log.count("Traceback") == tracebacks, log[-5000:]


# ---------------------------------------------------------------- REST


def generate(strategy, batches: int, batch_size: int) -> list:
    """Hypothesis draws the cases (derandomized unless BILLING_FUZZ_RANDOM=1); they are sent
    afterwards, all at once over the pool: drawing is the slow part, small batches keep it cheap
    (large ones overrun Hypothesis' buffer and are redrawn)."""
    drawn: list = []

    @settings(max_examples=batches, deadline=None, derandomize=DERANDOMIZE, database=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(st.lists(strategy, min_size=batch_size, max_size=batch_size))
    def draw(batch: list) -> None:
        drawn.extend(batch)

    draw()
    return drawn


# Every REST path the protos bind (google.api.http), as (method, path regex): each must be fuzzed.
HTTP_RULE = re.compile(r'\b(get|put|post|delete|patch)\s*:\s*"([^"]+)"')


def proto_routes() -> list[tuple[str, re.Pattern[bytes]]]:
    routes = []
    for proto in sorted((REPO_ROOT / "protos" / "billing" / "v1").glob("*.proto")):
        for verb, template in HTTP_RULE.findall(proto.read_text()):
            pattern = re.sub(r"\\\{[^}]*\\\}", "[^/?]+", re.escape(template))
            routes.append((verb.upper(), re.compile(pattern.encode())))
    return routes


def uncovered_routes(cases: list[HttpCase], minimum: int = 20) -> list[str]:
    counts = collections.Counter()
    routes = proto_routes()
    for case in cases:
        path = case.target.split(b"?")[0]
        for method, pattern in routes:
            if case.method == method and pattern.fullmatch(path):
                counts[method, pattern.pattern] += 1
    return [f"{method} {pattern.pattern.decode()} ({counts[method, pattern.pattern]} cases)"
            for method, pattern in routes if counts[method, pattern.pattern] < minimum]


def test_the_route_list_is_read_from_every_rpc_with_an_http_binding():
    from google.api import annotations_pb2

    bound = [m for m in SERVICE.methods if m.GetOptions().HasExtension(annotations_pb2.http)]
    assert len(proto_routes()) == len(bound) >= 18, [r[1].pattern for r in proto_routes()]


def test_hostile_rest_requests_get_4xx_json_errors_and_change_nothing(e2e, session_keys, untouched_ledger):
    KEYS.update(user=session_keys.user, service=session_keys.service)
    cases = generate(REST_CASES, REST_BATCHES, REST_BATCH_SIZE)
    assert not (missing := uncovered_routes(cases)), f"REST paths from the protos without fuzz cases: {missing}"
    pool = Pool((e2e.envoy.listen_port, e2e.envoy.admin_rest_port), CONNECTIONS)
    try:
        replies = pool.send_all(cases)
    finally:
        pool.close()
    statuses = collections.Counter(status for _, status, _, _ in replies)
    families = collections.Counter(case.family for case in cases)
    failures = [
        _describe(case, status, body, why)
        for case, status, head, body in replies
        if (why := rest_failure(case, status, head, body)) is not None
    ]
    print(f"\nREST fuzz: {len(replies)} requests; statuses {dict(statuses)}; families {dict(families)}")
    assert len(replies) >= 10_000
    assert not failures, f"{len(failures)} bad replies, first ones:\n" + "\n".join(failures[:15])


# ---------------------------------------------------------------- gRPC

SERVICE = billing_service_pb2.DESCRIPTOR.services_by_name["BillingService"]
METHODS = {m.name: m for m in SERVICE.methods}
MESSAGE_CLASSES = [
    accounts_pb2.CreateAccountRequest, accounts_pb2.CreateGrantRequest, accounts_pb2.CreateGrantResponse,
    balance_pb2.EnhancedBalance, balance_pb2.BillingEventHistory, balance_pb2.UsageAnalytics,
    catalog_pb2.PricingCatalog, consumption_pb2.ConsumeRequest, consumption_pb2.ConsumeResponse,
    consumption_pb2.CheckSufficientBatchRequest, consumption_pb2.CheckSufficientBatchResponse,
    billing_service_pb2.GetBalanceRequest, billing_service_pb2.ListEventsRequest, billing_service_pb2.GetUsageRequest,
]
# The methods a decodable hostile request may legitimately succeed on: they change no balance.
READ_ONLY = {"GetCatalog", "CreateSessionKey"}


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
    if "user_id" not in cls.DESCRIPTOR.fields_by_name:
        return payload
    from billing.domain.errors import InvalidArgument
    from billing.domain.limits import require_account_id

    try:
        require_account_id(message.user_id)
    except InvalidArgument:
        return payload
    message.user_id = "not valid!" if method == "CreateAccount" else "fz-" + message.user_id[:100]
    return message.SerializeToString()


def test_hostile_grpc_calls_get_client_errors_and_change_nothing(e2e, untouched_ledger):
    channel = grpc.insecure_channel(e2e.grpc_target)
    methods = sorted(METHODS) + ["NoSuchMethod"]
    codes: collections.Counter = collections.Counter()
    failures: list[str] = []

    def one(method: str, payload: bytes) -> None:
        call = channel.unary_unary(f"/billing.v1.BillingService/{method}")  # bytes in, bytes out
        details = ""
        metadata = default_key().bearer() if hash(payload) % 2 else None  # half of them authenticated
        try:
            call(payload, timeout=20, metadata=metadata)
            code = grpc.StatusCode.OK
        except grpc.RpcError as error:
            code = error.code()
            details = error.details()
        codes[code.name] += 1
        if code == grpc.StatusCode.OK and method in READ_ONLY:
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
# Every method that needs a key (GetCatalog and HandleStripeWebhook need none).
KEYED_METHODS = sorted(m for m in METHODS if access_for(PREFIX + m, None) is not Access.PUBLIC)
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
        method = draw(st.sampled_from(["CreateGrant", "CreateAccount"]))
    elif mode == "user_key_on_service_method":
        method = "CreateSessionKey"
    else:
        method = draw(st.sampled_from(KEYED_METHODS))
    cls = _request_class(method)
    message = _some_scalar_fields_set(draw, cls(), text_max=40)
    if "user_id" in cls.DESCRIPTOR.fields_by_name:
        message.user_id = "not valid!" if method == "CreateAccount" else draw(NOBODY)
    if method == "CreateAccount" and mode == "service_key_on_admin_method":
        message.plan_key = draw(st.sampled_from(["pro", "starter", "platinum"]))  # a paid plan needs an admin key
    other = cls.FromString(message.SerializeToString())
    if "user_id" in cls.DESCRIPTOR.fields_by_name:
        other.user_id = message.user_id + "x"
    return mode, method, message.SerializeToString(deterministic=True), other.SerializeToString(deterministic=True)


def keyed_metadata(mode: str, method: str, payload: bytes, other: bytes, keys) -> tuple[tuple[str, str], ...]:
    path, now = PREFIX + method, int(time.time())
    admin = keys.admin
    if mode == "garbage_signature":
        return admin.grpc_metadata(path, payload)[:2] + (("x-hmac-signature", os.urandom(32).hex()),)
    if mode == "malformed_signature":
        good = admin.grpc_metadata(path, payload)
        return good[:2] + (("x-hmac-signature", random.choice([good[2][1].upper(), good[2][1][:-1], "", "zz" * 32])),)
    if mode == "signed_other_request":
        return admin.grpc_metadata(path, other if other != payload else payload + b"\x00")
    if mode == "signed_other_method":
        return admin.grpc_metadata(PREFIX + random.choice([m for m in sorted(METHODS) if m != method]), payload)
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
            if method == "WatchBalance":
                stream = channel.unary_stream(PREFIX + method)(payload, timeout=5, metadata=metadata)
                next(iter(stream))
                stream.cancel()
            else:
                channel.unary_unary(PREFIX + method)(payload, timeout=20, metadata=metadata)
            code = grpc.StatusCode.OK
        except grpc.RpcError as error:
            code, details = error.code(), error.details()
        codes[mode, code.name] += 1
        if mode in UNAUTHENTICATED_MODES:
            expected = {grpc.StatusCode.UNAUTHENTICATED}
        elif mode in DENIED_MODES:
            expected = {grpc.StatusCode.PERMISSION_DENIED}
        else:
            expected = ACCEPTABLE_GRPC_CODES | ({grpc.StatusCode.OK} if method in READ_ONLY else set())
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


# ---------------------------------------------------------------- a real account: replays, a live stream


def _account_ledger(database_url: str, user: str) -> tuple:
    with psycopg.connect(libpq_url(database_url)) as connection:
        return connection.execute(
            "SELECT count(*), coalesce(sum(seconds), 0) FROM ledger_events WHERE account_id = %s", (user,)
        ).fetchone()


def _raw(port: int, method: str, target: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.request(method, target, body=body or None, headers=headers)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def test_a_signed_write_replayed_exactly_has_no_second_effect_and_changed_is_401(e2e, session_keys):
    user = new_user()
    create_account(e2e.http, user)
    grant(e2e.http, user, 600)
    port, admin = e2e.envoy.listen_port, session_keys.admin
    body = json.dumps({"user_id": user, "operation": "build", "seconds": 60, "idempotency_key": uuid.uuid4().hex}).encode()
    headers = {"Content-Type": "application/json"} | admin.rest_headers("POST", "/v1/billing/consume", body)
    before = _account_ledger(e2e.database_url, user)
    first = _raw(port, "POST", "/v1/billing/consume", headers, body)
    assert first[0] == 200, first
    after_first = _account_ledger(e2e.database_url, user)
    assert after_first[0] == before[0] + 1 and after_first[1] == before[1] - 60
    again = _raw(port, "POST", "/v1/billing/consume", headers, body)  # the same bytes, signature and all
    assert again[0] == 200, again
    assert json.loads(again[2]) == json.loads(first[2]) | {"replayed": True}  # the first answer, marked as such
    assert _account_ledger(e2e.database_url, user) == after_first
    # The same signature over anything else: 401 JSON, nothing written.
    changed = [
        ("POST", "/v1/billing/consume", headers, body.replace(b'"seconds": 60', b'"seconds": 61')),
        ("POST", "/v1/billing/consume", headers, body.replace(b"idempotency_key\": \"", b"idempotency_key\": \"x")),
        ("POST", "/v1/billing/consume?", headers, body),
        ("POST", "/v1/billing/consume", headers | {"X-HMAC-Timestamp": str(int(headers["X-HMAC-Timestamp"]) + 1)}, body),
        ("POST", "/v1/billing/consume", headers | {"X-HMAC-Key-Id": session_keys.service.key_id}, body),
        ("POST", "/v1/billing/consume", {"Content-Type": "application/json"}
         | admin.rest_headers("POST", "/v1/billing/consume", body, timestamp=int(time.time()) - 310), body),
    ]
    for method, target, sent_headers, sent_body in changed:
        status, reply_headers, reply = _raw(port, method, target, sent_headers, sent_body)
        assert status == 401 and reply_headers["content-type"].startswith("application/json"), (target, sent_body, reply)
        assert json.loads(reply)["http_status"] == 401
    assert _account_ledger(e2e.database_url, user) == after_first


def test_a_validly_signed_stream_starts_as_an_event_stream(e2e, session_keys):
    user = new_user()
    create_account(e2e.http, user)
    target = f"/v1/billing/balance/{user}/stream"
    conn = http.client.HTTPConnection("127.0.0.1", e2e.envoy.listen_port, timeout=STREAM_READ_TIMEOUT)
    try:
        conn.request("GET", target, headers=session_keys.admin.rest_headers("GET", target))
        response = conn.getresponse()  # the head only: the body never ends
        assert response.status == 200
        assert response.getheader("content-type", "").startswith("text/event-stream")
    finally:
        conn.close()


def test_nobody_ids_are_never_created(e2e):
    """The fuzz relies on fz- accounts never existing."""
    with psycopg.connect(libpq_url(e2e.database_url)) as connection:
        assert connection.execute("SELECT count(*) FROM accounts WHERE account_id LIKE 'fz-%'").fetchone()[0] == 0
