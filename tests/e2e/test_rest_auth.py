"""Signed requests through Envoy: who may call what, and what an unsigned or forged call gets."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from billing.domain.auth import Scope
from billing.settings import DEFAULT_CORS_ORIGIN

from tests.e2e.helpers import assert_error, call, create_account, new_user
from testkit.signing import SigningKey, create_key, revoke


@pytest.fixture(scope="module")
def alice(e2e, session_keys):
    create_account(e2e.http, session_keys.user_id)
    return session_keys.user_id, session_keys.user


@pytest.fixture(scope="module")
def service_key(session_keys):
    return session_keys.service


def test_the_catalog_is_public_and_everything_else_needs_a_signature(http):
    assert call(http, "GET", "/v1/billing/catalog", key=None)[0] == 200
    user = new_user()
    create_account(http, user)
    status, _, body = call(http, "GET", f"/v1/billing/balance/{user}", key=None)
    assert_error(status, body, 401, "UNAUTHENTICATED")
    status, _, body = call(http, "GET", f"/v1/billing/balance/{user}", key=None, headers={
        "X-HMAC-Key-Id": "bk_x", "X-HMAC-Timestamp": str(int(time.time())), "X-HMAC-Signature": "garbage"})
    assert_error(status, body, 401, "UNAUTHENTICATED")


def test_an_unsigned_or_forged_consume_takes_nothing(http, e2e):
    user = new_user()
    create_account(http, user)
    before = call(http, "GET", f"/v1/billing/balance/{user}")[2]["totals"]["total_seconds"]
    payload = {"user_id": user, "operation": "build", "seconds": 60, "idempotency_key": uuid.uuid4().hex}
    assert call(http, "POST", "/v1/billing/consume", payload, key=None)[0] == 401
    # Signed over another body: the signature names what was sent, not what was meant.
    forged = e2e.admin_key.rest_headers("POST", "/v1/billing/consume", b'{"seconds": 1}')
    assert call(http, "POST", "/v1/billing/consume", payload, key=None, headers=forged)[0] == 401
    stale = e2e.admin_key.rest_headers("GET", f"/v1/billing/balance/{user}", timestamp=int(time.time()) - 301)
    assert call(http, "GET", f"/v1/billing/balance/{user}", key=None, headers=stale)[0] == 401
    assert call(http, "GET", f"/v1/billing/balance/{user}")[2]["totals"]["total_seconds"] == before


def test_a_user_key_acts_for_its_own_user_only(http, alice):
    user, key = alice
    other = new_user()
    create_account(http, other)
    assert call(http, "GET", f"/v1/billing/balance/{user}", key=key)[0] == 200
    for path in (f"/v1/billing/balance/{other}", f"/v1/billing/usage/{other}", f"/v1/billing/events/{other}",
                 "/v1/billing/balance/no-such-user"):
        status, _, body = call(http, "GET", path, key=key)
        assert_error(status, body, 403, "PERMISSION_DENIED")  # 403 for strangers too: no enumeration
    consume = {"user_id": other, "operation": "build", "seconds": 1, "idempotency_key": uuid.uuid4().hex}
    assert call(http, "POST", "/v1/billing/consume", consume, key=key)[0] == 403
    grant = {"user_id": user, "source": "gift", "seconds": 60, "reason": "", "idempotency_key": uuid.uuid4().hex}
    assert call(http, "POST", "/v1/billing/admin/grants", grant, key=key)[0] == 403


def test_a_user_key_checks_and_watches_its_own_user_only(http, alice):
    """The batch check (a POST naming user_id in its body) and the live stream (an SSE GET) are
    scoped like the plain reads: another user's, or a stranger's, is 403 JSON before any work."""
    user, key = alice
    other = new_user()
    create_account(http, other)
    operations = [{"operation": "build", "estimate_seconds": 1}]
    status, _, body = call(http, "POST", "/v1/billing/check-sufficient-batch",
                           {"user_id": user, "operations": operations}, key=key)
    assert status == 200 and isinstance(body, list), body
    for owner in (other, "no-such-user"):
        for payload in ({"user_id": owner, "operations": operations}, {"userId": owner, "operations": operations}):
            status, headers, body = call(http, "POST", "/v1/billing/check-sufficient-batch", payload, key=key)
            assert headers["content-type"].startswith("application/json")
            assert_error(status, body, 403, "PERMISSION_DENIED")
        status, headers, body = call(http, "GET", f"/v1/billing/balance/{owner}/stream", key=key)
        assert headers["content-type"].startswith("application/json")  # not an event stream
        assert_error(status, body, 403, "PERMISSION_DENIED")


def test_a_service_key_acts_for_anyone_but_only_an_admin_grants_or_opens_a_paid_plan(http, service_key):
    user = new_user()
    assert call(http, "POST", "/v1/billing/accounts", {"user_id": user}, key=service_key)[0] == 200
    consume = {"user_id": user, "operation": "plan", "seconds": 5, "idempotency_key": uuid.uuid4().hex}
    assert call(http, "POST", "/v1/billing/consume", consume, key=service_key)[0] == 200
    grant = {"user_id": user, "source": "gift", "seconds": 60, "reason": "", "idempotency_key": uuid.uuid4().hex}
    assert call(http, "POST", "/v1/billing/admin/grants", grant, key=service_key)[0] == 403
    paid = {"user_id": new_user(), "plan_key": "business"}
    assert call(http, "POST", "/v1/billing/accounts", paid, key=service_key)[0] == 403
    assert call(http, "POST", "/v1/billing/accounts", paid)[0] == 200  # the session's admin key


def test_a_replayed_signed_consume_has_no_second_effect(http, e2e):
    user = new_user()
    create_account(http, user)
    payload = {"user_id": user, "operation": "build", "seconds": 30, "idempotency_key": uuid.uuid4().hex}
    body = json.dumps(payload).encode()
    headers = e2e.admin_key.rest_headers("POST", "/v1/billing/consume", body) | {"Content-Type": "application/json"}
    first = http("POST", "/v1/billing/consume", body=body, headers=headers, key=None)
    again = http("POST", "/v1/billing/consume", body=body, headers=headers, key=None)
    assert first[0] == again[0] == 200
    assert json.loads(again[2])["replayed"] is True


def test_a_key_created_while_servers_run_signs_within_seconds_and_a_revoked_one_stops(http, e2e):
    key = create_key(e2e.database_url, Scope.SERVICE)
    deadline = time.monotonic() + 10
    while call(http, "GET", "/v1/billing/catalog?currency=EUR", key=key)[0] != 200 or \
            call(http, "GET", "/v1/billing/balance/nobody-0", key=key)[0] == 401:
        assert time.monotonic() < deadline, "the server never saw the new key"
        time.sleep(0.25)
    revoke(e2e.database_url, key.key_id)
    while call(http, "GET", "/v1/billing/balance/nobody-0", key=key)[0] != 401:
        assert time.monotonic() < deadline + 10, "the revoked key kept working"
        time.sleep(0.25)


def test_a_backend_mints_a_session_key_that_signs_for_its_user_only(http, service_key, alice):
    user, user_key = alice
    status, _, issued = call(http, "POST", "/v1/billing/admin/session-keys", {"user_id": user, "ttl_seconds": 600},
                             key=service_key)
    assert status == 200 and issued["scope"] == "user" and issued["user_id"] == user
    session = SigningKey(issued["key_id"], issued["secret"])
    assert call(http, "GET", f"/v1/billing/balance/{user}", key=session)[0] == 200  # no refresh needed: no row
    assert call(http, "GET", f"/v1/billing/balance/{new_user()}", key=session)[0] == 403
    assert call(http, "POST", "/v1/billing/admin/session-keys", {"user_id": user}, key=user_key)[0] == 403
    status, _, body = call(http, "POST", "/v1/billing/admin/session-keys", {"user_id": user, "ttl_seconds": 90_000},
                           key=service_key)
    assert_error(status, body, 400, "INVALID_ARGUMENT", field="ttl_seconds")


def test_admin_paths_are_not_served_on_the_browser_listener(http, e2e):
    grant = {"user_id": new_user(), "source": "gift", "seconds": 60, "reason": "", "idempotency_key": uuid.uuid4().hex}
    for path, payload in (("/v1/billing/admin/grants", grant), ("/v1/billing/admin/session-keys", {"user_id": "u"})):
        status, _, body = call(http, "POST", path, payload, browser_listener=True)
        assert_error(status, body, 404, "NOT_FOUND")
    status, headers, _ = http("OPTIONS", "/v1/billing/admin/grants", key=None, headers={
        "Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in headers  # no CORS on the internal listener
    # On the browser's listener an admin path is a direct 404 route: the CORS policy (on the virtual
    # host) allows nothing there either, preflight or not.
    for method, extra in (("OPTIONS", {"Access-Control-Request-Method": "POST"}), ("POST", {})):
        status, headers, _ = http(method, "/v1/billing/admin/grants", key=None, browser_listener=True,
                                  headers={"Origin": DEFAULT_CORS_ORIGIN} | extra)
        assert status == 404 and "access-control-allow-origin" not in headers, (method, status, headers)


def test_a_signature_over_one_rest_request_cannot_carry_another_call(http, e2e, alice):
    """Whoever holds the edge token (Envoy's admin port shows it to local processes) still cannot
    attach a captured signature to another gRPC call or another message."""
    import base64

    import grpc

    from billing.v1 import billing_service_pb2, billing_service_pb2_grpc, consumption_pb2
    from testkit.signing import MASTER

    user, user_key = alice
    path = f"/v1/billing/balance/{user}"
    signed = user_key.rest_headers("GET", path)
    metadata = [(name.lower(), value) for name, value in signed.items()] + [
        ("x-billing-edge-token", MASTER.edge_token()), ("x-billing-signed-method", "GET"),
        ("x-billing-signed-path", path), ("x-billing-signed-body", ""),
    ]
    before = call(http, "GET", path)[2]["totals"]["total_seconds"]
    with grpc.insecure_channel(e2e.grpc_target) as channel:
        stub = billing_service_pb2_grpc.BillingServiceStub(channel)
        consume = consumption_pb2.ConsumeRequest(user_id=user, operation="build", seconds=600, idempotency_key="x")
        with pytest.raises(grpc.RpcError) as refused:
            stub.Consume(consume, metadata=metadata, timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert stub.GetBalance(billing_service_pb2.GetBalanceRequest(user_id=user),
                               metadata=metadata, timeout=10).totals.total_seconds == before  # the signed call itself
        other = metadata[:-1] + [("x-billing-signed-body", base64.b64encode(b"{}").decode())]
        with pytest.raises(grpc.RpcError):
            stub.GetBalance(billing_service_pb2.GetBalanceRequest(user_id=user),
                            metadata=other, timeout=10)
    assert call(http, "GET", path)[2]["totals"]["total_seconds"] == before


def test_a_get_body_is_not_signed_so_it_cannot_change_the_call(http, e2e, service_key):
    victim = new_user()
    create_account(http, victim)
    path = "/v1/billing/events/nobody-at-all"
    headers = service_key.rest_headers("GET", path) | {"Content-Type": "application/json"}
    status, _, _ = http("GET", path, headers=headers, body=json.dumps({"user_id": victim}).encode(), key=None)
    assert status in (400, 401)  # never the victim's events
