"""GET / PUT /v1/billing/alert-thresholds/{user_id} through Envoy: the catalog's default, the
user's own, validation, and who may read or set them."""

from __future__ import annotations

import json

from tests.e2e.helpers import new_user

PATH = "/v1/billing/alert-thresholds/"


def created(e2e, user=None) -> str:
    user = user or new_user()
    status, _, body = e2e.http("POST", "/v1/billing/accounts", json={"user_id": user})
    assert status == 200, body
    return user


def test_the_default_then_the_users_own_then_the_default_again(e2e):
    user = created(e2e)
    status, _, body = e2e.http("GET", PATH + user)
    assert status == 200 and json.loads(body) == {"user_id": user, "thresholds_seconds": [600, 120], "is_default": True}
    status, _, body = e2e.http("PUT", PATH + user, json={"thresholds_seconds": [60, 1800, 300]})
    assert status == 200, body
    assert json.loads(body) == {"user_id": user, "thresholds_seconds": [1800, 300, 60], "is_default": False}
    status, _, body = e2e.http("GET", PATH + user)
    assert json.loads(body)["thresholds_seconds"] == [1800, 300, 60]
    status, _, body = e2e.http("PUT", PATH + user, json={"use_default": True})
    assert status == 200 and json.loads(body)["is_default"] is True


def test_bad_thresholds_are_400_naming_the_field(e2e):
    user = created(e2e)
    for bad in ([1, 2, 3, 4, 5, 6], [0], [-5], [60, 60], [2_000_000_000]):
        status, _, body = e2e.http("PUT", PATH + user, json={"thresholds_seconds": bad})
        assert status == 400, (bad, body)
        assert json.loads(body)["field"] == "thresholds_seconds"
    status, _, body = e2e.http("PUT", PATH + user, json={"thresholds_seconds": [60], "use_default": True})
    assert status == 400


def test_a_user_key_sets_its_own_only(e2e, session_keys):
    own = created(e2e, session_keys.user_id)
    status, _, _ = e2e.http("PUT", PATH + own, json={"thresholds_seconds": [60]}, key=session_keys.user)
    assert status == 200
    other = created(e2e)
    status, _, _ = e2e.http("PUT", PATH + other, json={"thresholds_seconds": [60]}, key=session_keys.user)
    assert status == 403
    status, _, _ = e2e.http("GET", PATH + other, key=None)
    assert status == 401


def test_an_unknown_user_is_404(e2e):
    status, _, body = e2e.http("GET", PATH + new_user())
    assert status == 404 and json.loads(body)["error"] == "ACCOUNT_NOT_FOUND"
