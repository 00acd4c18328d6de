"""Holds through Envoy: every REST path of issue 21's "Holds" and each of its errors.

A new free account has 2700 s: 900 of today's daily bonus, then 1800 of welcome (consumption order).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from tests.e2e.helpers import RFC3339_UTC, assert_error, call, create_account, grant, new_user
from tests.e2e.test_rest_balance_stream import EventStream
from tests.e2e.test_rest_consume import INSUFFICIENT_KEYS, consume

HOLDS = "/v1/billing/holds"
HOLD_KEYS = {"hold_id", "user_id", "operation", "held_seconds", "committed_seconds", "state", "expires_at"}
TOTALS_KEYS = {"total_seconds", "paid_seconds", "bonus_seconds", "next_expiry_at", "held_seconds"}


def create(http, user, seconds, hold_id=None, operation="build", key=True, **extra):
    payload = {"user_id": user, "hold_id": hold_id or uuid.uuid4().hex, "operation": operation, "seconds": seconds,
               **extra}
    return call(http, "POST", HOLDS, payload, key=key)


def extend(http, user, hold_id, key=True, **fields):
    return call(http, "POST", f"{HOLDS}/{hold_id}/extend", {"user_id": user, **fields}, key=key)


def commit(http, user, hold_id, used_seconds, final=False, key=True):
    payload = {"user_id": user, "used_seconds": used_seconds, "final": final}
    return call(http, "POST", f"{HOLDS}/{hold_id}/commit", payload, key=key)


def release(http, user, hold_id, key=True):
    return call(http, "POST", f"{HOLDS}/{hold_id}/release", {"user_id": user}, key=key)


def list_holds(http, user, key=True):
    return call(http, "GET", f"{HOLDS}?user_id={user}", key=key)


def totals_of(http, user) -> dict:
    status, _, balance = call(http, "GET", f"/v1/billing/balance/{user}")
    assert status == 200, balance
    return balance["totals"]


def placed(http, user, seconds, hold_id=None, **extra) -> dict:
    status, _, reply = create(http, user, seconds, hold_id, **extra)
    assert status == 200, reply
    return reply


@pytest.fixture
def user(http) -> str:
    user_id = new_user()
    create_account(http, user_id)
    return user_id


def test_create_holds_the_seconds_and_answers_the_hold_and_totals_without_them(http, user):
    before = datetime.now(timezone.utc)
    status, headers, reply = create(http, user, 1000, "h-1", ttl_seconds=600)
    assert status == 200 and headers["content-type"] == "application/json"
    assert set(reply) == {"hold", "totals"}
    hold = reply["hold"]
    assert set(hold) == HOLD_KEYS
    assert {k: v for k, v in hold.items() if k != "expires_at"} == {
        "hold_id": "h-1", "user_id": user, "operation": "build", "held_seconds": 1000, "committed_seconds": 0,
        "state": "open"}
    assert RFC3339_UTC.match(hold["expires_at"])
    expires_at = datetime.fromisoformat(hold["expires_at"].replace("Z", "+00:00"))
    assert before + timedelta(seconds=595) <= expires_at <= datetime.now(timezone.utc) + timedelta(seconds=605)
    # Taken from the daily bonus first (900), then 100 of welcome: 1700 left to use, 1000 held.
    assert set(reply["totals"]) == TOTALS_KEYS
    assert reply["totals"] | {"next_expiry_at": None} == {
        "total_seconds": 1700, "paid_seconds": 1700, "bonus_seconds": 0, "next_expiry_at": None, "held_seconds": 1000}


def test_the_balance_shows_held_seconds_and_its_total_leaves_them_out(http, e2e, user):
    placed(http, user, 300)
    totals = totals_of(http, user)
    assert totals["held_seconds"] == 300 and totals["total_seconds"] == 2400
    assert totals["total_seconds"] == totals["paid_seconds"] + totals["bonus_seconds"]
    stream = EventStream(e2e, f"/v1/billing/balance/{user}/stream", e2e.admin_key)
    try:
        assert stream.status == 200
        streamed = stream.next_balance()["balance"]["totals"]
    finally:
        stream.close()
    assert streamed["held_seconds"] == 300 and streamed["total_seconds"] == 2400


def test_the_default_ttl_is_fifteen_minutes(http, user):
    hold = placed(http, user, 10)["hold"]
    expires_at = datetime.fromisoformat(hold["expires_at"].replace("Z", "+00:00"))
    assert abs((expires_at - datetime.now(timezone.utc)).total_seconds() - 900) < 30


def test_the_same_create_again_answers_the_same_hold_and_holds_nothing_more(http, user):
    first = placed(http, user, 500, "same", ttl_seconds=120)
    again = placed(http, user, 500, "same", ttl_seconds=120)
    assert again == first
    assert totals_of(http, user)["held_seconds"] == 500


@pytest.mark.parametrize("changed", [{"seconds": 501}, {"operation": "plan"}, {"ttl_seconds": 60}])
def test_the_same_hold_id_with_other_values_is_a_409_hold_conflict(http, user, changed):
    placed(http, user, 500, "h-c", ttl_seconds=120)
    status, _, body = create(http, user, **({"seconds": 500, "hold_id": "h-c", "ttl_seconds": 120} | changed))
    assert_error(status, body, 409, "HOLD_CONFLICT", "hold_id")
    assert totals_of(http, user)["held_seconds"] == 500


def test_a_short_balance_is_consumes_402_and_holds_nothing(http, user):
    status, headers, held = create(http, user, 5000)
    assert status == 402 and headers["content-type"] == "application/json"
    consume_status, _, consumed = consume(http, user, 5000)
    assert consume_status == 402
    assert set(held) == set(consumed) == INSUFFICIENT_KEYS
    assert {k: v for k, v in held.items() if k != "resume_token"} == {
        k: v for k, v in consumed.items() if k != "resume_token"}
    assert held["error"] == "INSUFFICIENT_AI_TIME" and held["http_status"] == 402
    assert held["balance_seconds"] == 2700 and held["breakdown_seconds"] == {"bonus_daily": 900, "paid": 1800}
    assert held["suggestions"] == [{"type": "package", "key": "mini", "minutes": 60}, {"type": "upgrade", "plan": "starter"}]
    assert held["resume_token"].startswith("rt_")
    assert totals_of(http, user) | {"next_expiry_at": None} == {
        "total_seconds": 2700, "paid_seconds": 1800, "bonus_seconds": 900, "next_expiry_at": None, "held_seconds": 0}
    assert list_holds(http, user)[2]["holds"] == []


def test_the_402s_resume_token_places_the_hold_once_after_a_top_up(http, user):
    _, _, refused = create(http, user, 5000, operation="export")
    grant(http, user, 3600)
    reply = placed(http, user, 5000, "resumed", operation="export", resume_token=refused["resume_token"])
    assert reply["hold"]["held_seconds"] == 5000
    status, _, body = create(http, user, 10, operation="export", resume_token=refused["resume_token"])
    assert_error(status, body, 409, "RESUME_TOKEN_USED", "resume_token")


def test_extend_holds_more_and_moves_the_expiry(http, user):
    hold = placed(http, user, 100, "h-e", ttl_seconds=60)["hold"]
    status, _, reply = extend(http, user, "h-e", seconds=200)
    assert status == 200 and reply["hold"]["held_seconds"] == 300
    assert reply["hold"]["expires_at"] == hold["expires_at"]  # ttl_seconds 0 keeps it
    assert reply["totals"]["held_seconds"] == 300 and reply["totals"]["total_seconds"] == 2400
    status, _, reply = extend(http, user, "h-e", ttl_seconds=3600)
    assert status == 200 and reply["hold"]["held_seconds"] == 300
    assert reply["hold"]["expires_at"] > hold["expires_at"]


def test_extend_with_an_idempotency_key_holds_once_however_often_it_is_sent(http, user):
    placed(http, user, 100, "h-k")
    first = extend(http, user, "h-k", seconds=50, idempotency_key="ext-1")
    again = extend(http, user, "h-k", seconds=50, idempotency_key="ext-1")
    assert first[0] == again[0] == 200 and again[2] == first[2]
    assert first[2]["hold"]["held_seconds"] == 150 and totals_of(http, user)["held_seconds"] == 150


def test_extend_past_the_balance_is_the_402_and_holds_nothing_more(http, user):
    placed(http, user, 100, "h-s")
    status, _, body = extend(http, user, "h-s", seconds=5000)
    assert status == 402 and set(body) == INSUFFICIENT_KEYS and body["balance_seconds"] == 2600
    assert totals_of(http, user)["held_seconds"] == 100


def test_extend_with_nothing_to_do_is_a_400(http, user):
    placed(http, user, 100, "h-0")
    status, _, body = extend(http, user, "h-0", seconds=0)
    assert_error(status, body, 400, "INVALID_ARGUMENT", "seconds")


def test_commits_are_cumulative_consumptions_and_the_final_one_gives_the_rest_back(http, user):
    placed(http, user, 1000, "h-m", operation="plan")
    status, _, reply = commit(http, user, "h-m", 400)
    assert status == 200
    assert reply["hold"]["committed_seconds"] == 400 and reply["hold"]["state"] == "open"
    assert reply["totals"]["held_seconds"] == 600 and reply["totals"]["total_seconds"] == 1700
    status, _, reply = commit(http, user, "h-m", 400)  # the same cumulative figure again: nothing more
    assert status == 200 and reply["hold"]["committed_seconds"] == 400
    status, _, reply = commit(http, user, "h-m", 700, final=True)
    assert status == 200
    assert reply["hold"]["committed_seconds"] == 700 and reply["hold"]["state"] == "settled"
    assert reply["totals"]["held_seconds"] == 0 and reply["totals"]["total_seconds"] == 2000
    # The same final commit again: 200, nothing more taken.
    status, _, again = commit(http, user, "h-m", 700, final=True)
    assert status == 200 and again["hold"] == reply["hold"] and again["totals"]["total_seconds"] == 2000
    # Usage and history see the commits as consumption of the hold's operation.
    _, _, usage = call(http, "GET", f"/v1/billing/usage/{user}?period=day")
    assert usage["by_operation"] == {"plan": 700}
    _, _, history = call(http, "GET", f"/v1/billing/events/{user}?limit=20")
    consumed = [e for e in history["events"] if e["type"] == "consumption"]
    assert sum(e["seconds"] for e in consumed) == -700
    assert {e["metadata"].get("hold_id") for e in consumed} == {"h-m"}


def test_commit_after_the_final_one_or_extend_after_it_is_a_409_hold_settled(http, user):
    placed(http, user, 100, "h-f")
    assert commit(http, user, "h-f", 50, final=True)[0] == 200
    status, _, body = commit(http, user, "h-f", 60, final=True)
    assert_error(status, body, 409, "HOLD_SETTLED", "hold_id")
    status, _, body = commit(http, user, "h-f", 50)
    assert_error(status, body, 409, "HOLD_SETTLED", "hold_id")
    status, _, body = extend(http, user, "h-f", seconds=10)
    assert_error(status, body, 409, "HOLD_SETTLED", "hold_id")


def test_commit_above_what_is_held_is_a_400_hold_exceeded(http, user):
    placed(http, user, 100, "h-x")
    status, _, body = commit(http, user, "h-x", 101)
    assert_error(status, body, 400, "HOLD_EXCEEDED", "used_seconds")
    assert totals_of(http, user)["held_seconds"] == 100


def test_commit_going_backwards_is_a_400(http, user):
    placed(http, user, 100, "h-b")
    assert commit(http, user, "h-b", 60)[0] == 200
    status, _, body = commit(http, user, "h-b", 59)
    assert_error(status, body, 400, "INVALID_ARGUMENT", "used_seconds")


def test_release_settles_at_what_was_committed_and_again_answers_the_same(http, user):
    placed(http, user, 600, "h-r")
    commit(http, user, "h-r", 100)
    status, _, reply = release(http, user, "h-r")
    assert status == 200
    assert reply["hold"]["state"] == "settled" and reply["hold"]["committed_seconds"] == 100
    assert reply["totals"]["held_seconds"] == 0 and reply["totals"]["total_seconds"] == 2600
    status, _, again = release(http, user, "h-r")
    assert status == 200 and again["hold"] == reply["hold"]


def test_the_list_has_the_open_holds_oldest_first_with_the_totals(http, user):
    status, _, empty = list_holds(http, user)
    assert status == 200 and empty["holds"] == [] and empty["totals"]["held_seconds"] == 0
    placed(http, user, 100, "first")
    placed(http, user, 200, "second", operation="export")
    placed(http, user, 300, "third")
    release(http, user, "second")
    status, _, listed = list_holds(http, user)
    assert status == 200 and set(listed) == {"holds", "totals"}
    assert [h["hold_id"] for h in listed["holds"]] == ["first", "third"]
    assert all(set(h) == HOLD_KEYS and h["state"] == "open" for h in listed["holds"])
    assert listed["totals"]["held_seconds"] == 400 and listed["totals"]["total_seconds"] == 2300


def test_an_unknown_hold_is_a_404_on_every_path(http, user):
    for status, _, body in (extend(http, user, "nope", seconds=5), commit(http, user, "nope", 1),
                            release(http, user, "nope")):
        assert_error(status, body, 404, "HOLD_NOT_FOUND", "hold_id")


def test_another_users_hold_is_a_404_and_stays_untouched(http, user):
    owner = new_user()
    create_account(http, owner)
    placed(http, owner, 100, "theirs")
    for status, _, body in (extend(http, user, "theirs", seconds=5), commit(http, user, "theirs", 1, final=True),
                            release(http, user, "theirs")):
        assert_error(status, body, 404, "HOLD_NOT_FOUND", "hold_id")
    assert [h["hold_id"] for h in list_holds(http, owner)[2]["holds"]] == ["theirs"]
    assert list_holds(http, user)[2]["holds"] == []


@pytest.mark.parametrize("ttl_seconds", [4, 86_401, -1])
def test_a_ttl_out_of_range_is_a_400_on_create_and_extend(http, user, ttl_seconds):
    status, _, body = create(http, user, 10, ttl_seconds=ttl_seconds)
    assert_error(status, body, 400, "INVALID_ARGUMENT", "ttl_seconds")
    placed(http, user, 10, "h-t")
    status, _, body = extend(http, user, "h-t", ttl_seconds=ttl_seconds)
    assert_error(status, body, 400, "INVALID_ARGUMENT", "ttl_seconds")


@pytest.mark.parametrize("ttl_seconds", [5, 86_400])
def test_the_ttl_bounds_themselves_are_accepted(http, user, ttl_seconds):
    placed(http, user, 10, ttl_seconds=ttl_seconds)


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"seconds": 0}, "seconds"),
        ({"seconds": -5}, "seconds"),
        ({"seconds": "abc"}, "seconds"),
        ({"operation": "dance"}, "operation"),
        ({"hold_id": ""}, "hold_id"),
        ({"hold_id": "h" * 129}, "hold_id"),
    ],
)
def test_bad_create_input_is_a_json_400_naming_the_field(http, user, payload, field):
    base = {"user_id": user, "hold_id": uuid.uuid4().hex, "operation": "build", "seconds": 10}
    status, _, body = call(http, "POST", HOLDS, base | payload)
    assert_error(status, body, 400, "INVALID_ARGUMENT", field)


def test_a_hold_for_an_unknown_user_is_a_404(http):
    status, _, body = create(http, new_user(), 10)
    assert_error(status, body, 404, "ACCOUNT_NOT_FOUND", "user_id")


def test_the_paths_hold_id_may_not_be_given_again_in_the_body(http, user):
    placed(http, user, 100, "h-p")
    placed(http, user, 100, "h-q")
    payload = {"user_id": user, "hold_id": "h-q", "used_seconds": 10}
    status, _, body = call(http, "POST", f"{HOLDS}/h-p/commit", payload)
    assert_error(status, body, 400, "INVALID_ARGUMENT", "hold_id")
    assert [h["committed_seconds"] for h in list_holds(http, user)[2]["holds"]] == [0, 0]


# ---------------------------------------------------------------- signed requests


@pytest.fixture
def keyed(http, session_keys):
    """The session's user key and its user (its account is shared with test_rest_auth)."""
    create_account(http, session_keys.user_id)
    return session_keys.user_id, session_keys.user


def test_a_user_key_holds_for_its_own_user(http, keyed):
    user, key = keyed
    hold_id = uuid.uuid4().hex
    assert create(http, user, 5, hold_id, key=key)[0] == 200
    assert extend(http, user, hold_id, seconds=5, key=key)[0] == 200
    assert commit(http, user, hold_id, 3, key=key)[0] == 200
    assert hold_id in [h["hold_id"] for h in list_holds(http, user, key=key)[2]["holds"]]
    assert release(http, user, hold_id, key=key)[0] == 200


def test_a_user_key_for_another_user_is_a_403_on_every_hold_path(http, keyed, user):
    _, key = keyed
    placed(http, user, 100, "h-o")
    for status, _, body in (
        create(http, user, 5, key=key), extend(http, user, "h-o", seconds=5, key=key),
        commit(http, user, "h-o", 1, key=key), release(http, user, "h-o", key=key), list_holds(http, user, key=key),
    ):
        assert_error(status, body, 403, "PERMISSION_DENIED")
    assert list_holds(http, user)[2]["holds"][0]["held_seconds"] == 100


def test_a_service_key_holds_for_any_user(http, session_keys, user):
    key = session_keys.service
    reply = create(http, user, 60, "svc", key=key)[2]
    assert reply["hold"]["held_seconds"] == 60
    assert commit(http, user, "svc", 60, final=True, key=key)[2]["hold"]["state"] == "settled"


def test_an_unsigned_hold_is_a_401_and_holds_nothing(http, user):
    status, _, body = create(http, user, 60, key=None)
    assert_error(status, body, 401, "UNAUTHENTICATED")
    status, _, body = list_holds(http, user, key=None)
    assert_error(status, body, 401, "UNAUTHENTICATED")
    assert totals_of(http, user)["held_seconds"] == 0


@pytest.mark.parametrize("path", [HOLDS, f"{HOLDS}/h-1/extend", f"{HOLDS}/h-1/commit", f"{HOLDS}/h-1/release"])
def test_the_browsers_origin_may_call_the_hold_paths(http, path):
    """Envoy's CORS policy is the virtual host's: the hold paths get the same preflight answer as consume."""
    from billing.settings import DEFAULT_CORS_ORIGIN

    status, headers, _ = http("OPTIONS", path, key=None, headers={
        "Origin": DEFAULT_CORS_ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, x-hmac-signature, x-resume-token"})
    assert status == 200 and headers["access-control-allow-origin"] == DEFAULT_CORS_ORIGIN
    assert "POST" in headers["access-control-allow-methods"]
