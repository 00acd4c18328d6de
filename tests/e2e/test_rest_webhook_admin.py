"""Issue 22's admin surface end to end: webhook endpoints and the delivery log over REST on the internal
listener (404 on the browser's), gRPC with an admin key, and `billing webhooks` from a shell."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import uuid
from datetime import datetime, timedelta, timezone

import grpc
import psycopg
import pytest
from psycopg.types.json import Jsonb

from billing.settings import libpq_url
from billing.v1 import billing_service_pb2_grpc, webhooks_pb2
from tests.e2e.helpers import RFC3339_UTC, assert_error, call, create_account, new_user
from testkit.processes import VENV_BIN
from testkit.signing import signed_channel

BASE = "/v1/billing/admin/webhook-endpoints"
LOG = "/v1/billing/admin/webhook-deliveries"
URL = "https://hooks.example.com/billing"
# Writes without a body still say JSON (the edge's 415 rule lets through a write with a JSON type or
# Content-Length: 0 only).
NO_BODY = {"Content-Type": "application/json"}


def _create(http, payload) -> dict:
    status, _, body = call(http, "POST", BASE, payload)
    assert status == 200, body
    return body


def test_endpoints_over_rest_on_the_internal_listener(http):
    created = _create(http, {"url": URL, "event_types": ["credit.granted", "balance.low"], "description": "e2e"})
    endpoint, secret = created["endpoint"], created["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    assert set(endpoint) == {"endpoint_id", "url", "event_types", "enabled", "created_at", "description"}
    assert endpoint["event_types"] == ["balance.low", "credit.granted"] and endpoint["enabled"] is True
    assert RFC3339_UTC.match(endpoint["created_at"])
    endpoint_id = endpoint["endpoint_id"]

    status, _, listed = call(http, "GET", BASE)
    assert status == 200 and endpoint in listed["endpoints"]
    assert all("secret" not in e for e in listed["endpoints"])

    status, _, disabled = call(http, "POST", f"{BASE}/{endpoint_id}/disable", {})
    assert status == 200 and (disabled["enabled"], disabled["disabled_reason"]) == (False, "disabled by an operator")
    status, _, enabled = call(http, "POST", f"{BASE}/{endpoint_id}/enable", {})
    assert status == 200 and enabled["enabled"] is True and "disabled_reason" not in enabled

    status, _, rotated = call(http, "POST", f"{BASE}/{endpoint_id}/rotate-secret", {})
    assert status == 200 and rotated["secret"].startswith("whsec_") and rotated["secret"] != secret

    status, _, deleted = call(http, "DELETE", f"{BASE}/{endpoint_id}", headers=NO_BODY)
    assert status == 200 and deleted["failed_deliveries"] == 0 and deleted["endpoint"]["enabled"] is False
    status, _, listed = call(http, "GET", BASE)
    assert all(e["endpoint_id"] != endpoint_id for e in listed["endpoints"])
    status, _, body = call(http, "POST", f"{BASE}/{endpoint_id}/enable", {})
    assert_error(status, body, 404, "WEBHOOK_ENDPOINT_NOT_FOUND", field="endpoint_id")


@pytest.mark.parametrize("payload, field", [
    ({"url": URL, "event_types": ["balance.low", "balance.sideways"]}, "event_types"),
    ({"url": "ftp://hooks.example.com/x"}, "url"),
    ({"url": "https://user:pass@hooks.example.com/x"}, "url"),
    ({"url": "https://hooks.example.com/" + "a" * 2100}, "url"),
    ({"url": ""}, "url"),
    ({"url": URL, "description": "d" * 300}, "description"),
])
def test_bad_endpoints_are_400_naming_the_field(http, payload, field):
    status, _, body = call(http, "POST", BASE, payload)
    assert_error(status, body, 400, "INVALID_ARGUMENT", field=field)


@pytest.mark.parametrize("method, path", [
    ("GET", BASE), ("POST", BASE), ("POST", f"{BASE}/ep_x/disable"), ("POST", f"{BASE}/ep_x/enable"),
    ("DELETE", f"{BASE}/ep_x"), ("POST", f"{BASE}/ep_x/rotate-secret"), ("GET", LOG),
    ("POST", f"{LOG}/evt_x/replay"), ("POST", f"{LOG}/replay"),
])
def test_the_browser_listener_does_not_serve_them(http, method, path):
    status, _, _ = call(http, method, path, {} if method == "POST" else None, headers=NO_BODY, browser_listener=True)
    assert status == 404


def test_other_keys_are_refused(e2e, session_keys):
    for key in (session_keys.service, session_keys.user):
        status, _, body = call(e2e.http, "GET", BASE, key=key)
        assert_error(status, body, 403, "PERMISSION_DENIED")


def _insert_delivery(database_url, account_id, endpoint_id, seq, created_at, status, attempts, event_id):
    seq += 1000  # past the account's own events (its welcome credit is its first)
    with psycopg.connect(libpq_url(database_url), autocommit=True) as connection:
        connection.execute(
            "INSERT INTO outbound_events (account_id, seq, event_id, type, created_at, payload) "
            "VALUES (%s, %s, %s, 'credit.granted', %s, %s)", (account_id, seq, event_id, created_at, Jsonb({})))
        connection.execute(
            "INSERT INTO webhook_deliveries (account_id, endpoint_id, seq, event_id, event_type, status, attempts, "
            "next_attempt_at, last_status_code, last_error, created_at, updated_at, finished_at) "
            "VALUES (%s, %s, %s, %s, 'credit.granted', %s, %s, %s, %s, %s, %s, %s, %s)",
            (account_id, endpoint_id, seq, event_id, status, attempts, created_at, 503, "HTTP 503", created_at,
             created_at, None if status == "pending" else created_at + timedelta(hours=40)))
        for n in range(1, attempts + 1):
            connection.execute(
                "INSERT INTO webhook_attempts (account_id, endpoint_id, seq, attempt, attempted_at, status_code, "
                "latency_ms, response_excerpt, error) VALUES (%s, %s, %s, %s, %s, %s, 87, 'unavailable', NULL)",
                (account_id, endpoint_id, seq, n, created_at + timedelta(seconds=n), 503))


def test_the_delivery_log_pages_filters_and_replays(e2e, http):
    user = new_user()
    create_account(http, user)
    endpoint_id = _create(http, {"url": URL})["endpoint"]["endpoint_id"]
    # Disabled: the suite's server runs a sender, which would try the replayed deliveries meanwhile.
    status, _, _ = call(http, "POST", f"{BASE}/{endpoint_id}/disable", {})
    assert status == 200
    start = datetime.now(timezone.utc) - timedelta(days=2)
    events = [f"evt_{uuid.uuid4().hex}" for _ in range(5)]
    for seq, event_id in enumerate(events, start=1):
        _insert_delivery(e2e.database_url, user, endpoint_id, seq, start + timedelta(minutes=seq),
                         "failed" if seq <= 3 else "delivered", 2, event_id)

    status, _, page = call(http, "GET", f"{LOG}?endpoint_id={endpoint_id}&user_id={user}&limit=2")
    assert status == 200 and [d["event_id"] for d in page["deliveries"]] == events[::-1][:2]
    first = page["deliveries"][0]
    assert first["attempts"] == 2 and first["last_status_code"] == 503 and first["status"] == "delivered"
    assert isinstance(first["attempts"], int) and RFC3339_UTC.match(first["created_at"])
    assert RFC3339_UTC.match(first["finished_at"]) and "next_attempt_at" not in first
    assert first["attempt_log"][0] == {"attempted_at": first["attempt_log"][0]["attempted_at"], "status_code": 503,
                                       "latency_ms": 87, "response_excerpt": "unavailable"}
    token = page["next_page_token"]
    status, _, rest = call(http, "GET", f"{LOG}?endpoint_id={endpoint_id}&limit=100&page_token={token}")
    assert [d["event_id"] for d in rest["deliveries"]] == events[::-1][2:] and rest["next_page_token"] == ""
    status, _, failed = call(http, "GET", f"{LOG}?user_id={user}&status=failed")
    assert [d["event_id"] for d in failed["deliveries"]] == events[:3][::-1]
    status, _, body = call(http, "GET", f"{LOG}?status=lost")
    assert_error(status, body, 400, "INVALID_ARGUMENT", field="status")

    status, _, replayed = call(http, "POST", f"{LOG}/{events[4]}/replay", {})
    assert status == 200 and replayed == {"replayed": 1, "more": False}
    status, _, body = call(http, "POST", f"{LOG}/evt_never_{uuid.uuid4().hex}/replay", {})
    assert_error(status, body, 404, "WEBHOOK_EVENT_NOT_FOUND", field="event_id")
    since = (start + timedelta(minutes=2)).isoformat().replace("+00:00", "Z")
    status, _, replayed = call(http, "POST", f"{LOG}/replay", {"since": since, "endpoint_id": endpoint_id})
    assert status == 200 and replayed == {"replayed": 2, "more": False}
    status, _, pending = call(http, "GET", f"{LOG}?endpoint_id={endpoint_id}&status=pending")
    assert sorted(d["event_id"] for d in pending["deliveries"]) == sorted([events[1], events[2], events[4]])
    assert all("finished_at" not in d and d["attempts"] == 2 for d in pending["deliveries"])
    # One line (this user, this endpoint): its first pending delivery is due, the others wait their turn.
    due = [d["event_id"] for d in pending["deliveries"] if RFC3339_UTC.match(d.get("next_attempt_at", ""))]
    assert due == [events[1]] and all("next_attempt_at" not in d for d in pending["deliveries"] if d["event_id"] != due[0])
    status, _, body = call(http, "POST", f"{LOG}/replay", {})
    assert_error(status, body, 400, "INVALID_ARGUMENT", field="since")

    # deleting the endpoint fails what is pending, with the reason
    status, _, deleted = call(http, "DELETE", f"{BASE}/{endpoint_id}", headers=NO_BODY)
    assert status == 200 and deleted["failed_deliveries"] == 3
    status, _, after = call(http, "GET", f"{LOG}?endpoint_id={endpoint_id}&status=failed")
    assert {d["last_error"] for d in after["deliveries"] if d["event_id"] in (events[1], events[2], events[4])} == {
        "endpoint deleted"}


def test_grpc_with_an_admin_key(e2e):
    with signed_channel(e2e.grpc_target) as channel:
        stub = billing_service_pb2_grpc.BillingServiceStub(channel)
        created = stub.CreateWebhookEndpoint(webhooks_pb2.CreateWebhookEndpointRequest(url=URL, event_types=["hold.expired"]))
        assert created.secret.startswith("whsec_")
        listed = stub.ListWebhookEndpoints(webhooks_pb2.ListWebhookEndpointsRequest())
        assert created.endpoint.endpoint_id in [e.endpoint_id for e in listed.endpoints]
        with pytest.raises(grpc.RpcError) as refused:
            stub.DisableWebhookEndpoint(webhooks_pb2.DisableWebhookEndpointRequest(endpoint_id="ep_nope"))
        assert refused.value.code() is grpc.StatusCode.NOT_FOUND


def _billing(database_url: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    """As the test stack's server: the opt-in on (no DNS here for public names), unless env says otherwise."""
    environment = os.environ | {"DATABASE_URL": database_url, "BILLING_WEBHOOK_ALLOW_PRIVATE": "1"} | env
    return subprocess.run([str(VENV_BIN / "billing"), "webhooks", *args], cwd="/tmp", env=environment,
                          capture_output=True, text=True, timeout=60)


def test_the_cli(e2e):
    db = e2e.database_url
    done = _billing(db, "create", "--url", URL, "--event-type", "topup.failed", "--description", "cli")
    assert done.returncode == 0, done.stderr
    created = json.loads(done.stdout)
    endpoint_id = created["endpoint"]["endpoint_id"]
    assert created["secret"].startswith("whsec_") and created["endpoint"]["event_types"] == ["topup.failed"]
    listed = json.loads(_billing(db, "list").stdout)
    assert endpoint_id in [e["endpoint_id"] for e in listed["endpoints"]]
    assert json.loads(_billing(db, "disable", endpoint_id).stdout)["enabled"] is False
    assert json.loads(_billing(db, "enable", endpoint_id).stdout)["enabled"] is True
    assert json.loads(_billing(db, "rotate-secret", endpoint_id).stdout)["secret"] != created["secret"]
    assert json.loads(_billing(db, "deliveries", "--endpoint-id", endpoint_id).stdout) == {"deliveries": [],
                                                                                         "next_page_token": ""}
    assert json.loads(_billing(db, "replay", "--since", "2026-01-01T00:00:00Z").stdout)["replayed"] >= 0
    missing = _billing(db, "replay", "evt_never")
    assert missing.returncode == 1 and "WEBHOOK_EVENT_NOT_FOUND" in missing.stderr
    assert json.loads(_billing(db, "delete", endpoint_id).stdout)["endpoint"]["enabled"] is False
    gone = _billing(db, "disable", endpoint_id)
    assert gone.returncode == 1 and "WEBHOOK_ENDPOINT_NOT_FOUND" in gone.stderr


@pytest.mark.parametrize("url", ["http://127.0.0.1:9000/hook", "http://169.254.169.254/latest/meta-data",
                                 "http://10.0.0.1/", "http://[::1]/", "http://localhost:9000/", "ftp://127.0.0.1/",
                                 "https://user:pw@hooks.example.com/"])
def test_private_targets_are_refused_without_the_opt_in(e2e, url):
    refused = _billing(e2e.database_url, "create", "--url", url, BILLING_WEBHOOK_ALLOW_PRIVATE="0")
    assert refused.returncode == 1 and "INVALID_ARGUMENT (url)" in refused.stderr, refused.stderr


def test_the_opt_in_allows_a_loopback_receiver(e2e):
    done = _billing(e2e.database_url, "create", "--url", "http://127.0.0.1:9000/hook", BILLING_WEBHOOK_ALLOW_PRIVATE="1")
    assert done.returncode == 0, done.stderr
    endpoint_id = json.loads(done.stdout)["endpoint"]["endpoint_id"]
    assert _billing(e2e.database_url, "delete", endpoint_id).returncode == 0
