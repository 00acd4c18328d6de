"""Observability of the running server: /metrics after REST calls, and its log lines as JSON."""

from __future__ import annotations

import collections
import json
import re
import socket
import time
import urllib.request
import uuid

import grpc

from tests.e2e.helpers import RFC3339_UTC, call, create_account, new_user
from testkit.processes import free_port, start_billing_server, stop_process

SERVICE = "billing.v1.BillingService"
SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$")


def scrape(port: int) -> dict[tuple[str, frozenset], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        assert reply.status == 200
        text = reply.read().decode()
    samples = {}
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match is None:
            continue
        labels = frozenset(re.findall(r'(\w+)="([^"]*)"', match["labels"] or ""))
        samples[(match["name"], labels)] = float(match["value"])
    return samples


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_count_the_rest_calls_consumed_seconds_refusals_and_the_pool(e2e, http):
    port = e2e.server.metrics_port
    before = scrape(port)
    user = new_user()
    create_account(http, user)
    for seconds in (60, 90):
        payload = {"user_id": user, "operation": "export", "seconds": seconds, "idempotency_key": uuid.uuid4().hex}
        assert call(http, "POST", "/v1/billing/consume", payload)[0] == 200
    short = {"user_id": user, "operation": "export", "seconds": 86_400, "idempotency_key": uuid.uuid4().hex}
    assert call(http, "POST", "/v1/billing/consume", short)[0] == 402
    assert call(http, "GET", f"/v1/billing/balance/{new_user()}")[0] == 404
    assert call(http, "GET", f"/v1/billing/balance/{user}")[0] == 200

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    # gRPC sends an aborted call's status before the abort returns through the interceptors,
    # so a client can see an error a moment before it is counted.
    deadline = time.monotonic() + 5
    after = scrape(port)
    while grew("billing_rpc_duration_seconds_count", service=SERVICE, method="GetBalance", code="NOT_FOUND") < 1:
        assert time.monotonic() < deadline, "the 404 was never counted"
        time.sleep(0.05)
        after = scrape(port)
    rpcs = "billing_rpc_duration_seconds_count"
    assert grew(rpcs, service=SERVICE, method="Consume", code="OK") == 2
    assert grew(rpcs, service=SERVICE, method="Consume", code="FAILED_PRECONDITION") == 1
    assert grew(rpcs, service=SERVICE, method="GetBalance", code="OK") == 1
    assert grew(rpcs, service=SERVICE, method="GetBalance", code="NOT_FOUND") == 1
    assert grew(rpcs, service=SERVICE, method="CreateAccount", code="OK") == 1
    assert grew("billing_rpc_duration_seconds_sum", service=SERVICE, method="Consume", code="OK") > 0
    assert grew("billing_consumed_seconds_total", operation="export") == 150
    assert grew("billing_insufficient_ai_time_total", operation="export") == 1
    assert grew("billing_group_commit_batch_size_count") >= 1
    assert value(after, "billing_db_pool_max_connections") == 16  # BILLING_DB_POOL_SIZE's default
    assert value(after, "billing_db_pool_connections") >= 1
    assert ("billing_db_pool_available_connections", frozenset()) in after
    assert ("billing_db_pool_waiting_requests", frozenset()) in after
    assert value(after, "process_resident_memory_bytes") > 0



def _two_free_ports() -> int:
    """A port p with p + 1 free too (worker i serves metrics on p + i)."""
    for _ in range(50):
        port = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise AssertionError("no two consecutive free ports")


def _scrape_when_up(port: int, timeout: float = 20.0):
    """The health check that start_billing_server waited for may have been answered by one worker."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return scrape(port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_each_worker_serves_its_own_metrics_port(e2e, tmp_path):
    base = _two_free_ports()
    server = start_billing_server(
        e2e.database_url, tmp_path, migrate=False, extra_env={"BILLING_WORKERS": "2", "BILLING_METRICS_PORT": str(base)}
    )
    try:
        for port in (base, base + 1):
            assert value(_scrape_when_up(port), "billing_db_pool_max_connections") == 16
    finally:
        assert stop_process(server.process, timeout=30) == 0


def test_the_server_logs_one_json_object_per_line(e2e, http):
    assert call(http, "GET", f"/v1/billing/balance/{new_user()}")[0] == 404  # a refusal the client handles: no line
    entries = [json.loads(line) for line in e2e.server.stderr_log.read_text().splitlines()]
    assert entries, "the server logs at least its start"
    for entry in entries:
        assert {"timestamp", "level", "logger", "message", "request_id"} <= set(entry)
        assert RFC3339_UTC.match(entry["timestamp"])
    assert any("listening" in entry["message"] for entry in entries)
    per_call = collections.Counter(entry["request_id"] for entry in entries if entry["request_id"])
    assert all(lines == 1 for lines in per_call.values()), per_call  # a call writes one line at most


def test_envoy_logs_one_json_object_per_request_with_the_servers_request_id(e2e, http):
    """Envoy's access log is JSON too, with the server's log keys: one grep of request_id joins both."""
    status, headers, _ = call(http, "GET", f"/v1/billing/balance/{new_user()}", browser_listener=True)
    entry = _access_log_entry(e2e, headers["x-request-id"])
    assert {"timestamp", "level", "logger", "message", "request_id"} <= set(entry)
    assert RFC3339_UTC.match(entry["timestamp"])
    assert entry["method"] == "GET" and entry["path"].startswith("/v1/billing/balance/") and entry["status"] == status


def test_envoy_logs_the_servers_grpc_status_and_none_for_its_own_replies(e2e, http):
    """Envoy's %GRPC_STATUS% guessed 2 (UNKNOWN) for every REST answer, 200s included."""
    status, headers, _ = http("GET", "/v1/billing/catalog")
    assert status == 200
    assert _access_log_entry(e2e, headers["x-request-id"])["grpc_status"] == 0
    status, headers, _ = http("GET", "/v1/billing/balance/nobody-at-all")
    assert status == 404
    assert _access_log_entry(e2e, headers["x-request-id"])["grpc_status"] == grpc.StatusCode.NOT_FOUND.value[0]
    status, headers, _ = http("POST", "/v1/billing/consume", headers={"Content-Type": "text/plain"}, body=b"x")
    assert status == 415  # Envoy's own reply: the server was never asked
    assert _access_log_entry(e2e, headers["x-request-id"])["grpc_status"] is None


def _access_log_entry(e2e, request_id: str) -> dict:
    deadline = time.monotonic() + 5  # Envoy flushes its access log about once a second
    while True:
        # Whole lines only: Envoy's flush may stop in the middle of the last one.
        complete = e2e.envoy.log.read_text().split("\n")[:-1]
        entries = [json.loads(line) for line in complete if line.startswith("{")]
        mine = [entry for entry in entries if entry.get("request_id") == request_id]
        if mine or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(mine) == 1, (request_id, [(e["request_id"], e["message"]) for e in entries[-3:]])
    return mine[0]
