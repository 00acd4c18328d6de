from __future__ import annotations

import uuid

import pytest

from tests.e2e.helpers import RFC3339_UTC, assert_error, call, create_account, grant, new_user

INSUFFICIENT_KEYS = {"error", "http_status", "balance_seconds", "breakdown_seconds", "suggestions",
                     "catalog_version", "resume_token"}


def consume(http, user, seconds, key=None, operation="build", headers=None, **extra):
    payload = {"user_id": user, "operation": operation, "seconds": seconds,
               "idempotency_key": key or uuid.uuid4().hex, **extra}
    return call(http, "POST", "/v1/billing/consume", payload, headers=headers)


def test_consume_reports_what_was_taken_from_which_bucket_and_the_new_totals(http):
    user = new_user()
    create_account(http, user)
    status, _, reply = consume(http, user, 1000, key="first")
    assert status == 200
    assert reply["consumed_seconds"] == 1000 and reply["operation"] == "build" and reply["replayed"] is False
    daily, welcome = reply["taken"]
    assert daily["source"] == "daily" and daily["seconds"] == 900 and RFC3339_UTC.match(daily["expires_at"])
    assert welcome == {"source": "welcome", "seconds": 100, "expires_at": None}
    assert reply["totals"] == {"total_seconds": 1700, "paid_seconds": 1700, "bonus_seconds": 0, "next_expiry_at": None,
                               "held_seconds": 0}


def test_replaying_an_idempotency_key_returns_the_first_answer_and_takes_nothing(http):
    user = new_user()
    create_account(http, user)
    _, _, first = consume(http, user, 100, key="same")
    status, _, again = consume(http, user, 100, key="same")
    assert status == 200 and again["replayed"] is True
    assert {k: v for k, v in again.items() if k != "replayed"} == {k: v for k, v in first.items() if k != "replayed"}
    _, _, balance = call(http, "GET", f"/v1/billing/balance/{user}")
    assert balance["totals"]["total_seconds"] == 2700 - 100


def test_reusing_a_key_for_a_different_request_is_a_409(http):
    user = new_user()
    create_account(http, user)
    consume(http, user, 100, key="k")
    status, _, body = consume(http, user, 200, key="k")
    assert_error(status, body, 409, "IDEMPOTENCY_KEY_REUSED", "idempotency_key")


def test_short_balance_is_a_402_with_the_contract_body_and_nothing_taken(http):
    user = new_user()
    create_account(http, user)
    status, headers, body = consume(http, user, 5000)
    assert status == 402
    assert headers["content-type"] == "application/json"
    assert set(body) == INSUFFICIENT_KEYS
    assert body["error"] == "INSUFFICIENT_AI_TIME" and body["http_status"] == 402
    assert body["balance_seconds"] == 2700
    assert body["breakdown_seconds"] == {"bonus_daily": 900, "paid": 1800}
    assert body["suggestions"] == [{"type": "package", "key": "mini", "minutes": 60},
                                   {"type": "upgrade", "plan": "starter"}]
    assert body["catalog_version"] == "2026-11-01"
    assert body["resume_token"].startswith("rt_")
    _, _, balance = call(http, "GET", f"/v1/billing/balance/{user}")
    assert balance["totals"]["total_seconds"] == 2700


def test_resume_token_runs_the_blocked_operation_once_after_a_top_up(http):
    user = new_user()
    create_account(http, user)
    _, _, blocked = consume(http, user, 5000, operation="export")
    token = blocked["resume_token"]
    grant(http, user, 3600)
    status, _, reply = consume(http, user, 5000, operation="export", headers={"X-Resume-Token": token})
    assert status == 200 and reply["consumed_seconds"] == 5000
    status, _, body = consume(http, user, 10, operation="export", headers={"X-Resume-Token": token})
    assert_error(status, body, 409, "RESUME_TOKEN_USED", "resume_token")


def test_resume_token_in_the_body_for_another_operation_is_a_400(http):
    user = new_user()
    create_account(http, user)
    _, _, blocked = consume(http, user, 5000, operation="build")
    status, _, body = consume(http, user, 10, operation="plan", resume_token=blocked["resume_token"])
    assert_error(status, body, 400, "RESUME_TOKEN_INVALID", "resume_token")


def test_consume_for_an_unknown_user_is_a_404(http):
    status, _, body = consume(http, new_user(), 10)
    assert_error(status, body, 404, "ACCOUNT_NOT_FOUND", "user_id")


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"seconds": -5}, "seconds"),
        ({"seconds": 0}, "seconds"),
        ({"seconds": 86_401}, "seconds"),
        ({"seconds": 99_999_999_999}, "seconds"),  # beyond int32: the transcoder refuses it
        ({"seconds": "abc"}, "seconds"),
        ({"operation": "dance"}, "operation"),
        ({"idempotency_key": ""}, "idempotency_key"),
        ({"idempotency_key": "k" * 129}, "idempotency_key"),
        ({"user_id": "x" * 200}, "user_id"),
    ],
)
def test_bad_consume_input_is_a_json_400_naming_the_field(http, payload, field):
    user = new_user()
    create_account(http, user)
    base = {"user_id": user, "operation": "build", "seconds": 10, "idempotency_key": uuid.uuid4().hex}
    status, _, body = call(http, "POST", "/v1/billing/consume", base | payload)
    assert_error(status, body, 400, "INVALID_ARGUMENT", field)


def test_malformed_json_is_a_json_400(http):
    status, headers, raw = http("POST", "/v1/billing/consume", body=b'{"user_id": ', headers={"Content-Type": "application/json"})
    assert status == 400 and headers["content-type"] == "application/json"
    assert b'"error":"INVALID_ARGUMENT"' in raw


def test_oversized_body_is_a_json_413(http):
    status, _, raw = http("POST", "/v1/billing/consume", body=b"{" + b" " * (2 * 1024 * 1024) + b"}",
                          headers={"Content-Type": "application/json"})
    assert status == 413 and b'"http_status":413' in raw


def test_idempotency_key_must_be_in_the_signed_body_not_a_header(http):
    """A header is not covered by the signature: a replayed request with a new Idempotency-Key
    header would be charged again. So the key is a body field only (docs/decisions.md)."""
    user = new_user()
    create_account(http, user)
    payload = {"user_id": user, "operation": "plan", "seconds": 5}
    status, _, body = call(http, "POST", "/v1/billing/consume", payload, headers={"Idempotency-Key": "hdr-1"})
    assert_error(status, body, 400, "INVALID_ARGUMENT", field="idempotency_key")


def test_reason_with_a_nul_character_is_a_400_not_a_500(http):
    user = new_user()
    create_account(http, user)
    payload = {"user_id": user, "source": "gift", "seconds": 5, "reason": "a\u0000b", "idempotency_key": "nul-1"}
    status, _, body = call(http, "POST", "/v1/billing/admin/grants", payload)
    assert_error(status, body, 400, "INVALID_ARGUMENT", "reason")
