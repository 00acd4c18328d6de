"""The operator console's reads end to end (issue 23): REST through Envoy's internal listener with an
admin key (the ledger's CSV streamed as text/csv), a user or service key refused, the browser's
listener serving none of them, and the same calls over gRPC."""

from __future__ import annotations

import csv
import io
import uuid

import grpc
import pytest

from billing.v1 import operator_pb2, operator_service_pb2_grpc
from tests.e2e.helpers import RFC3339_UTC, assert_error, call, create_account, grant, new_user
from testkit.signing import signed_channel
from testkit.waiting import wait_until

ADMIN = "/v1/billing/admin"


def _consume(http, user_id: str, operation: str, seconds: int) -> None:
    payload = {"user_id": user_id, "operation": operation, "seconds": seconds, "idempotency_key": uuid.uuid4().hex}
    status, _, body = call(http, "POST", "/v1/billing/consume", payload)
    assert status == 200, body


@pytest.fixture(scope="module")
def customer(http):
    user = new_user()
    create_account(http, user)
    grant(http, user, 600)
    _consume(http, user, "build", 40)
    _consume(http, user, "plan", 2)
    return user


def test_search_finds_a_user_by_prefix(http, customer):
    status, _, body = call(http, "GET", f"{ADMIN}/accounts?query={customer[:-2]}&limit=50")
    assert status == 200, body
    match = next(m for m in body["matches"] if m["user_id"] == customer)
    assert match["matched_by"] == "user_id_prefix" and match["plan_key"] == "free"
    assert match["totals"]["total_seconds"] > 0 and RFC3339_UTC.match(match["created_at"])
    status, _, body = call(http, "GET", f"{ADMIN}/accounts?query=pi_{uuid.uuid4().hex}")
    assert status == 200 and body.get("matches", []) == []
    status, _, body = call(http, "GET", f"{ADMIN}/accounts?query={customer}&limit=51")
    assert_error(status, body, 400, "INVALID_ARGUMENT", field="limit")


def test_the_account_overview_shows_the_balance_as_the_user_sees_it(http, customer):
    status, _, overview = call(http, "GET", f"{ADMIN}/accounts/{customer}")
    assert status == 200, overview
    status, _, balance = call(http, "GET", f"/v1/billing/balance/{customer}")
    assert status == 200
    assert overview["balance"] == balance
    assert overview["user_id"] == customer and int(overview["version"]) > 0
    assert overview["ledger_sum_seconds"] == balance["totals"]["total_seconds"]
    status, _, body = call(http, "GET", f"{ADMIN}/accounts/nobody-{uuid.uuid4().hex[:8]}")
    assert_error(status, body, 404, "ACCOUNT_NOT_FOUND", field="user_id")


def test_the_ledger_pages_with_its_running_balance(http, customer):
    status, _, first = call(http, "GET", f"{ADMIN}/accounts/{customer}/ledger?page_size=2")
    assert status == 200, first
    rows = first["rows"]
    assert [r["type"] for r in rows] == ["consumption", "consumption"] and first["next_page_token"]
    status, _, rest = call(http, "GET", f"{ADMIN}/accounts/{customer}/ledger?page_size=200&page_token={first['next_page_token']}")
    everything = rows + rest["rows"]
    assert [int(r["event_seq"]) for r in everything] == sorted((int(r["event_seq"]) for r in everything), reverse=True)
    running = available = 0
    for row in reversed(everything):  # expired time explains the gap between the sum and what was usable
        running += row.get("seconds", 0)
        available += row.get("seconds", 0) - row.get("expired_before_seconds", 0)
        assert row["balance_after_seconds"] == running
        assert row.get("available_after_seconds", 0) == available
    status, _, balance = call(http, "GET", f"/v1/billing/balance/{customer}")
    assert status == 200
    status, _, newest = call(http, "GET", f"{ADMIN}/accounts/{customer}/ledger?page_size=1")
    assert status == 200, newest
    since_last_row = newest.get("expired_since_last_row_seconds", 0)
    assert newest["rows"][0]["available_after_seconds"] - since_last_row == balance["totals"]["total_seconds"]  # no hold
    status, _, consumed = call(
        http, "GET", f"{ADMIN}/accounts/{customer}/ledger?types=consumption&types=adjustment&order=oldest_first")
    assert status == 200, consumed
    assert {r["type"] for r in consumed["rows"]} <= {"consumption", "adjustment"}
    assert any(r.get("operation") == "plan" for r in consumed["rows"])
    for query, field in (("types=refund_maybe", "types"), ("page_size=201", "page_size"), ("page_token=zzz", "page_token"),
                         ("order=sideways", "order")):
        status, _, body = call(http, "GET", f"{ADMIN}/accounts/{customer}/ledger?{query}")
        assert_error(status, body, 400, "INVALID_ARGUMENT", field=field)


def test_the_ledger_exports_as_csv(e2e, customer):
    status, headers, body = e2e.http("GET", f"{ADMIN}/accounts/{customer}/ledger.csv")
    assert status == 200, body[:500]
    assert headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(body.decode())))
    assert rows[0][:7] == ["event_seq", "occurred_at", "type", "seconds", "balance_after_seconds",
                           "available_after_seconds", "expired_before_seconds"]
    *lines, last = rows[1:]
    assert last == [f"# end of export: {len(lines)} rows"]  # a cut file lacks it
    assert [row[2] for row in lines][-2:] == ["consumption", "consumption"]
    assert int(lines[-1][4]) == sum(int(row[3]) for row in lines)
    assert int(lines[-1][5]) == sum(int(row[3]) - int(row[6]) for row in lines)
    status, _, refused = e2e.http("GET", f"{ADMIN}/accounts/nobody-{uuid.uuid4().hex[:8]}/ledger.csv")
    assert status == 404, refused


def test_usage_per_day_and_operation(http, customer):
    status, _, usage = call(http, "GET", f"{ADMIN}/accounts/{customer}/usage?days=7")
    assert status == 200, usage
    assert usage["total_seconds"] == 42 and {r["operation"] for r in usage["rows"]} == {"build", "plan"}
    status, _, body = call(http, "GET", f"{ADMIN}/accounts/{customer}/usage?days=91")
    assert_error(status, body, 400, "INVALID_ARGUMENT", field="days")


def _health(http) -> dict:
    status, _, health = call(http, "GET", f"{ADMIN}/health")
    assert status == 200, health
    return health


def test_health_activity_and_migration_runs(http, customer):
    health = _health(http)
    assert health["database_ok"] is True and health["pool"]["max_size"] > 0
    # The server reports itself once its database answers (every ~10 s after).
    health = wait_until(lambda: (lambda h: h if h.get("replicas") else None)(_health(http)), "the server's heartbeat")
    assert RFC3339_UTC.match(health["replicas"][0]["seen_at"]) and health["replicas"][0]["pid"] > 0
    status, _, activity = call(http, "GET", f"{ADMIN}/activity?hours=3")
    assert status == 200 and len(activity["hours"]) == 3
    assert all(RFC3339_UTC.match(h["hour_at"]) for h in activity["hours"])
    status, _, runs = call(http, "GET", f"{ADMIN}/migration-runs?page_size=5")
    assert status == 200 and isinstance(runs.get("runs", []), list)
    status, _, body = call(http, "GET", f"{ADMIN}/activity?hours=169")
    assert_error(status, body, 400, "INVALID_ARGUMENT", field="hours")


PATHS = ["/accounts?query=e2e", "/accounts/{user}", "/accounts/{user}/ledger", "/accounts/{user}/ledger.csv",
         "/accounts/{user}/usage", "/health", "/activity", "/migration-runs"]


@pytest.mark.parametrize("path", PATHS)
def test_user_and_service_keys_are_refused(e2e, session_keys, path):
    for key in (session_keys.service, session_keys.user):
        status, _, body = e2e.http("GET", ADMIN + path.format(user=session_keys.user_id), key=key)
        assert status == 403, body


@pytest.mark.parametrize("path", PATHS)
def test_the_browser_listener_serves_none_of_them(e2e, customer, path):
    status, _, _ = e2e.http("GET", ADMIN + path.format(user=customer), browser_listener=True)
    assert status in (403, 404)


def test_grpc_with_an_admin_key(e2e, customer):
    with signed_channel(e2e.grpc_target) as channel:
        stub = operator_service_pb2_grpc.OperatorServiceStub(channel)
        page = stub.ListAccountLedger(operator_pb2.ListAccountLedgerRequest(user_id=customer, page_size=1))
        assert len(page.rows) == 1 and page.next_page_token
        # signed_channel signs unary calls: the stream carries the admin key itself.
        chunks = list(stub.ExportAccountLedger(operator_pb2.ExportAccountLedgerRequest(user_id=customer),
                                               metadata=e2e.admin_key.bearer()))
        assert chunks[0].content_type.startswith("text/csv") and b"available_after_seconds" in chunks[0].data
        assert chunks[-1].data.endswith(b" rows\r\n") and b"\r\n# end of export: " in chunks[-1].data
        health = stub.GetServiceHealth(operator_pb2.GetServiceHealthRequest())
        assert health.database_ok
        with pytest.raises(grpc.RpcError) as refused:
            stub.GetAccountOverview(operator_pb2.GetAccountOverviewRequest(user_id="nobody-" + uuid.uuid4().hex[:8]))
        assert refused.value.code() is grpc.StatusCode.NOT_FOUND
