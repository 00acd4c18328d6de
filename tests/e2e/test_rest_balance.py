from __future__ import annotations

from tests.e2e.helpers import RFC3339_UTC, assert_error, call, create_account, grant, new_user


def test_new_free_account_balance_has_the_exact_contract_shape(http):
    user = new_user()
    create_account(http, user)
    status, _, balance = call(http, "GET", f"/v1/billing/balance/{user}")
    assert status == 200
    assert set(balance) == {"version", "plan_key", "subscription_status", "catalog_version", "totals", "buckets", "bonus"}
    assert balance["plan_key"] == "free" and balance["subscription_status"] == "inactive"
    assert balance["catalog_version"] == "2026-11-01" and balance["version"] == "2025-09-01"
    totals = balance["totals"]
    assert set(totals) == {"total_seconds", "paid_seconds", "bonus_seconds", "next_expiry_at"}
    assert totals == {"total_seconds": 2700, "paid_seconds": 1800, "bonus_seconds": 900,
                      "next_expiry_at": balance["buckets"]["daily"][0]["expires_at"]}
    assert RFC3339_UTC.match(totals["next_expiry_at"]) and totals["next_expiry_at"].endswith("T00:00:00Z")
    assert balance["buckets"]["daily"] == [{"seconds": 900, "expires_at": totals["next_expiry_at"]}]
    assert balance["buckets"]["paid"] == [{"seconds": 1800, "expires_at": None, "source": "welcome"}]
    assert balance["bonus"] == {"daily_minutes": 15, "used_this_month_minutes": 0, "monthly_cap_minutes": 300}


def test_paid_buckets_come_in_consumption_order(http):
    user = new_user()
    create_account(http, user, "pro")
    grant(http, user, 600, "gift")
    _, _, balance = call(http, "GET", f"/v1/billing/balance/{user}")
    assert balance["plan_key"] == "pro" and balance["subscription_status"] == "active"
    sources = [bucket["source"] for bucket in balance["buckets"]["paid"]]
    # subscription expires, so it goes before the never-expiring ones; among those the smaller first
    assert sources == ["subscription", "gift", "welcome"]
    assert balance["buckets"]["paid"][0]["expires_at"].endswith("Z")
    assert balance["totals"]["paid_seconds"] == 1200 * 60 + 600 + 1800


def test_balance_of_unknown_user_is_a_json_404(http):
    status, _, body = call(http, "GET", f"/v1/billing/balance/{new_user()}")
    assert_error(status, body, 404, "ACCOUNT_NOT_FOUND", "user_id")


def test_over_long_user_id_is_a_400(http):
    status, _, body = call(http, "GET", "/v1/billing/balance/" + "u" * 129)
    assert_error(status, body, 400, "INVALID_ARGUMENT", "user_id")


def test_create_account_is_idempotent_and_grants_the_welcome_bonus_once(http):
    user = new_user()
    first = create_account(http, user)
    second = create_account(http, user)
    assert first["created"] is True and second["created"] is False
    assert first["totals"] == second["totals"]
    _, _, events = call(http, "GET", f"/v1/billing/events/{user}")
    assert sorted(event["type"] for event in events["events"]) == ["adjustment", "daily_bonus"]


def test_create_account_with_unknown_plan_is_a_400(http):
    status, _, body = call(http, "POST", "/v1/billing/accounts", {"user_id": new_user(), "plan_key": "platinum"})
    assert_error(status, body, 400, "INVALID_ARGUMENT", "plan_key")
