"""Fuzz, REST: >= 10,000 hostile requests through Envoy; every reply is a 4xx JSON error, never 5xx,
no traceback in the server log, and the ledger (and webhook, payment, key and auto top-up rows) is
exactly as before (`billing verify` passes). The gRPC side is test_fuzz_grpc.py.

The cases (fuzz_cases.py) are invalid by construction, so a 2xx is a failure too. Hypothesis draws
batches; each batch goes out over a pool of persistent HTTP/1.1 connections (a connection that
Envoy closes, as it does after a transcoder 400, is reopened; an SSE reply is read with a short
timeout, since a valid one never ends). Every REST path the protos bind (google.api.http) must have
fuzz cases: a new RPC without them fails the test. Generation is derandomized (the same cases each
run); BILLING_FUZZ_RANDOM=1 draws new ones.

Two tests on a real account: an exact replay of a signed write has no second effect, the same
signature over anything else is 401; and a validly signed stream starts as text/event-stream.
"""

from __future__ import annotations

import collections
import dataclasses
import http.client
import json
import os
import re
import time
import uuid

import psycopg
from google.api import annotations_pb2

from billing.settings import libpq_url
from billing.v1 import billing_service_pb2, operator_service_pb2
from tests.e2e.fuzz_cases import REST_CASES
from tests.e2e.fuzz_http import STREAM_READ_TIMEOUT, Pool
from tests.e2e.fuzz_support import CONNECTIONS, generate
from tests.e2e.fuzz_values import HttpCase
from tests.e2e.helpers import create_account, grant, new_user
from testkit.processes import REPO_ROOT
from testkit.signing import SigningKey, default_key

REST_BATCHES, REST_BATCH_SIZE = 550, 20  # 11,000 requests

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


# ---------------------------------------------------------------- REST


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
    services = (billing_service_pb2.DESCRIPTOR.services_by_name["BillingService"],
                operator_service_pb2.DESCRIPTOR.services_by_name["OperatorService"])
    bound = [m for service in services for m in service.methods if m.GetOptions().HasExtension(annotations_pb2.http)]
    assert len(proto_routes()) == len(bound) >= 37, [r[1].pattern for r in proto_routes()]


def test_hostile_rest_requests_get_4xx_json_errors_and_change_nothing(e2e, session_keys, untouched_ledger):
    KEYS.update(user=session_keys.user, service=session_keys.service)
    cases = generate(REST_CASES, REST_BATCHES, REST_BATCH_SIZE)
    assert not (missing := uncovered_routes(cases)), f"REST paths from the protos without fuzz cases: {missing}"
    pool = Pool((e2e.envoy.listen_port, e2e.envoy.admin_rest_port), CONNECTIONS, prepare)
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
