from __future__ import annotations

import uuid
from datetime import datetime, timezone

from tests.e2e.helpers import RFC3339_UTC, assert_error, body_json, call, create_account, new_user


def _consume(http, user, seconds, operation):
    payload = {"user_id": user, "operation": operation, "seconds": seconds, "idempotency_key": uuid.uuid4().hex}
    status, _, body = call(http, "POST", "/v1/billing/consume", payload)
    assert status == 200, body


def test_batch_check_returns_a_bare_array_cumulative_in_order(http):
    user = new_user()
    create_account(http, user)  # 2700 s
    operations = [{"operation": "build", "estimate_seconds": 2000},
                  {"operation": "plan", "estimate_seconds": 600},
                  {"operation": "export", "estimate_seconds": 300},
                  {"operation": "metadata_generation", "estimate_seconds": 0}]
    status, _, raw = http("POST", "/v1/billing/check-sufficient-batch", json={"userId": user, "operations": operations})
    assert status == 200
    results = body_json(raw)
    assert isinstance(results, list) and len(results) == 4
    assert results[0] == {"operation": "build", "ok": True, "deficit_seconds": 0, "suggestions": []}
    assert results[1] == {"operation": "plan", "ok": True, "deficit_seconds": 0, "suggestions": []}
    assert results[2]["ok"] is False and results[2]["deficit_seconds"] == 200
    assert results[2]["suggestions"] == [{"type": "package", "key": "mini", "minutes": 60},
                                         {"type": "upgrade", "plan": "starter"}]
    assert results[3]["ok"] is False and results[3]["deficit_seconds"] == 200


def test_batch_check_is_read_only(http):
    user = new_user()
    create_account(http, user)
    _, _, before = call(http, "GET", f"/v1/billing/events/{user}")
    http("POST", "/v1/billing/check-sufficient-batch",
         json={"userId": user, "operations": [{"operation": "build", "estimate_seconds": 99}]})
    _, _, after = call(http, "GET", f"/v1/billing/events/{user}")
    assert after == before


def test_batch_check_limits_and_validation(http):
    user = new_user()
    create_account(http, user)
    too_many = [{"operation": "plan", "estimate_seconds": 1}] * 101
    status, _, body = call(http, "POST", "/v1/billing/check-sufficient-batch", {"userId": user, "operations": too_many})
    assert_error(status, body, 400, "INVALID_ARGUMENT", "operations")
    unknown = [{"operation": "plan", "estimate_seconds": 1}, {"operation": "juggle", "estimate_seconds": 1}]
    status, _, body = call(http, "POST", "/v1/billing/check-sufficient-batch", {"userId": user, "operations": unknown})
    assert_error(status, body, 400, "INVALID_ARGUMENT", "operations[1].operation")
    status, _, body = call(http, "POST", "/v1/billing/check-sufficient-batch",
                           {"userId": new_user(), "operations": [{"operation": "plan", "estimate_seconds": 1}]})
    assert_error(status, body, 404, "ACCOUNT_NOT_FOUND")


def test_usage_of_the_month_is_zero_filled_per_day_with_sums_by_operation(http):
    user = new_user()
    create_account(http, user)
    _consume(http, user, 120, "build")
    _consume(http, user, 30, "plan")
    _consume(http, user, 45, "build")
    status, _, usage = call(http, "GET", f"/v1/billing/usage/{user}?period=month")
    assert status == 200
    assert set(usage) == {"total_seconds", "by_operation", "daily_trend"}
    assert usage["total_seconds"] == 195 and usage["by_operation"] == {"build": 165, "plan": 30}
    today = datetime.now(timezone.utc).date()
    assert [entry["date"] for entry in usage["daily_trend"]][0] == today.replace(day=1).isoformat()
    assert usage["daily_trend"][-1] == {"date": today.isoformat(), "seconds": 195}
    assert len(usage["daily_trend"]) == today.day
    assert all(set(entry) == {"date", "seconds"} for entry in usage["daily_trend"])


def test_usage_of_the_day_and_default_period(http):
    user = new_user()
    create_account(http, user)
    _consume(http, user, 10, "export")
    _, _, day = call(http, "GET", f"/v1/billing/usage/{user}?period=day")
    assert len(day["daily_trend"]) == 1 and day["daily_trend"][0]["seconds"] == 10
    _, _, default = call(http, "GET", f"/v1/billing/usage/{user}")
    assert len(default["daily_trend"]) == datetime.now(timezone.utc).day
    status, _, body = call(http, "GET", f"/v1/billing/usage/{user}?period=year")
    assert_error(status, body, 400, "INVALID_ARGUMENT", "period")


def test_events_are_newest_first_signed_and_paged(http):
    user = new_user()
    create_account(http, user)
    for seconds in (10, 20, 30):
        _consume(http, user, seconds, "plan")
    status, _, page = call(http, "GET", f"/v1/billing/events/{user}?limit=2")
    assert status == 200 and set(page) == {"events", "next_page_token"}
    first, second = page["events"]
    assert set(first) == {"type", "seconds", "reason", "timestamp", "metadata"}
    assert first["type"] == "consumption" and first["seconds"] == -30 and second["seconds"] == -20
    assert RFC3339_UTC.match(first["timestamp"]) and first["metadata"]["source"] == "daily"
    seen = page["events"]
    token = page["next_page_token"]
    while token:
        _, _, page = call(http, "GET", f"/v1/billing/events/{user}?limit=2&page_token={token}")
        seen += page["events"]
        token = page["next_page_token"]
    assert [event["type"] for event in seen] == ["consumption"] * 3 + ["daily_bonus", "adjustment"]
    assert sum(event["seconds"] for event in seen) == 2700 - 60


def test_events_limit_rules(http):
    user = new_user()
    create_account(http, user)
    status, _, page = call(http, "GET", f"/v1/billing/events/{user}?limit=100000")
    assert status == 200 and len(page["events"]) == 2
    status, _, body = call(http, "GET", f"/v1/billing/events/{user}?limit=-1")
    assert_error(status, body, 400, "INVALID_ARGUMENT", "limit")
    status, _, body = call(http, "GET", f"/v1/billing/events/{user}?page_token=bogus")
    assert_error(status, body, 400, "INVALID_ARGUMENT", "page_token")
    status, _, body = call(http, "GET", f"/v1/billing/events/{new_user()}")
    assert_error(status, body, 404, "ACCOUNT_NOT_FOUND")


def test_admin_grants_credit_and_debit_never_below_zero(http):
    user = new_user()
    create_account(http, user)
    grant = {"user_id": user, "source": "adjustment", "seconds": -600, "reason": "refund", "idempotency_key": "adj-1"}
    status, _, reply = call(http, "POST", "/v1/billing/admin/grants", grant)
    assert status == 200 and reply["totals"]["paid_seconds"] == 1200 and reply["replayed"] is False
    status, _, again = call(http, "POST", "/v1/billing/admin/grants", grant)
    assert status == 200 and again["replayed"] is True and again["totals"] == reply["totals"]
    too_much = grant | {"seconds": -5000, "idempotency_key": "adj-2"}
    status, _, body = call(http, "POST", "/v1/billing/admin/grants", too_much)
    assert_error(status, body, 409, "BALANCE_TOO_LOW", "seconds")
    bad_source = grant | {"source": "lottery", "idempotency_key": "adj-3"}
    status, _, body = call(http, "POST", "/v1/billing/admin/grants", bad_source)
    assert_error(status, body, 400, "INVALID_ARGUMENT", "source")
    status, _, body = call(http, "POST", "/v1/billing/admin/grants", grant | {"user_id": new_user()})
    assert_error(status, body, 404, "ACCOUNT_NOT_FOUND")


def test_a_signed_query_with_a_plus_reaches_the_handler(http):
    """'+' in a query value is a plus to the transcoder; the signature check reads it the same way
    (it once read a space, and answered a validly signed request 401)."""
    user = new_user()
    create_account(http, user)
    status, _, body = call(http, "GET", f"/v1/billing/usage/{user}?period=da+y")
    assert_error(status, body, 400, "INVALID_ARGUMENT", field="period")
