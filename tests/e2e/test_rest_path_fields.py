"""A path field is read from the path only, and a path or query that does not decode is 400 (issue 19,
items 5 and 8), through Envoy: the transcoder lets a query parameter or a body field override a
path field, and Envoy passes undecodable escapes through as bytes."""

from __future__ import annotations

import http.client as http_client
import json

import pytest

from tests.e2e.fuzz_http import STREAM_READ_TIMEOUT
from tests.e2e.helpers import assert_error, call, create_account, new_user


@pytest.fixture(scope="module")
def alice_and_bob(http, session_keys):
    """alice: the session's user key acts for her (and only her); bob: another account."""
    create_account(http, session_keys.user_id)  # idempotent: 200 if another test opened it
    bob = new_user()
    create_account(http, bob)
    return session_keys.user_id, bob


def test_a_query_naming_another_user_than_the_path_is_400_not_that_users_answer(http, session_keys, alice_and_bob):
    alice, bob = alice_and_bob
    status, _, body = call(http, "GET", f"/v1/billing/balance/{bob}?user_id={alice}", key=session_keys.user)
    assert_error(status, body, 400, "INVALID_ARGUMENT", "user_id")
    status, _, own = call(http, "GET", f"/v1/billing/balance/{alice}", key=session_keys.user)
    assert status == 200, own


@pytest.mark.parametrize("method, path", [
    ("GET", "/v1/billing/balance/{}"), ("GET", "/v1/billing/usage/{}"), ("GET", "/v1/billing/events/{}"),
    ("GET", "/v1/billing/auto-topup/{}"), ("GET", "/v1/billing/balance/{}/stream"), ("PUT", "/v1/billing/auto-topup/{}"),
])
@pytest.mark.parametrize("spelling", ["user_id", "userId"])
def test_every_path_binding_refuses_its_field_again_in_the_query(http, e2e, session_keys, alice_and_bob, method, path,
                                                                 spelling):
    alice, bob = alice_and_bob
    target = path.format(bob) + f"?{spelling}={alice}"
    if target.endswith("/stream") or "/stream?" in target:
        status, body = _stream_head(e2e, session_keys, target)  # an accepted stream would never end
    else:
        status, _, body = call(http, method, target, {"enabled": False} if method == "PUT" else None)
    assert_error(status, body, 400, "INVALID_ARGUMENT", "user_id")


def _stream_head(e2e, session_keys, target: str) -> tuple[int, dict | None]:
    conn = http_client.HTTPConnection("127.0.0.1", e2e.envoy.listen_port, timeout=STREAM_READ_TIMEOUT)
    try:
        conn.request("GET", target, headers=session_keys.admin.rest_headers("GET", target))
        response = conn.getresponse()
        if response.status == 200:
            return 200, None
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_a_body_naming_another_user_than_the_path_is_400(http, alice_and_bob):
    alice, bob = alice_and_bob
    status, _, body = call(http, "PUT", f"/v1/billing/auto-topup/{bob}", {"enabled": False, "user_id": alice})
    assert_error(status, body, 400, "INVALID_ARGUMENT", "user_id")


@pytest.mark.parametrize("segment", ["%ff", "%c0%af", "%ed%a0%80", "a%00b"])
def test_an_undecodable_path_is_400_naming_the_field_even_with_a_user_id_in_the_body(http, session_keys, alice_and_bob, segment):
    """The reported 500: the body's user_id made the message decode, the path's %ff then did not."""
    alice, _ = alice_and_bob
    status, _, body = call(http, "PUT", f"/v1/billing/auto-topup/{segment}", {"enabled": False, "user_id": alice},
                           key=session_keys.user)
    assert_error(status, body, 400, "INVALID_ARGUMENT", "user_id")


@pytest.mark.parametrize("query, field", [("page_token=%ff", "page_token"), ("page_token=%c0%80", "page_token"),
                                          ("limit=5&page_token=%e2%82", "page_token")])
def test_an_undecodable_query_value_is_400_naming_the_field(http, alice_and_bob, query, field):
    _, bob = alice_and_bob
    status, _, body = call(http, "GET", f"/v1/billing/events/{bob}?{query}")
    assert_error(status, body, 400, "INVALID_ARGUMENT", field)
