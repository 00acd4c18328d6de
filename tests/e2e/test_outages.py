"""Outages under load: 32 clients (REST and gRPC) on two replicas, `kill -9` of one replica and a
PostgreSQL restart mid-load; every acknowledged Consume is in the ledger exactly once.

The stack: a PostgreSQL of this test's own (embedded, password and recorded port: it is
restarted mid-load, which the suite's shared one must not be), replica A started by `billing-dev run`
(its gRPC server and Envoy, supervised: the server comes back after `kill -9`), replica B a plain
server. Half the clients speak REST through Envoy to A, half gRPC to A or B. Each client consumes
with its own idempotency keys and retries a request with the same key on 503 / UNAVAILABLE /
connection errors until it is answered; an answered Consume is acknowledged.
"""

from __future__ import annotations

import http.client as httpclient
import json
import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import grpc
import psutil
import psycopg
import pytest

from devstack import embedded_postgres
from billing.settings import libpq_url
from billing.v1 import accounts_pb2, billing_service_pb2_grpc, consumption_pb2
from tests.e2e.helpers import assert_few_outage_lines_and_no_traceback
from testkit.postgres import postgres_ctl
from testkit.processes import (
    VENV_BIN, free_port, health_serving, start_billing_server, stop_process,
)
from testkit.signing import default_key, signed_channel

CLIENTS = 32
ACCOUNTS = 8  # four clients per account: concurrent writers on one wallet, across replicas
GRANT_SECONDS = 1_000_000
LOAD_SECONDS = 12.0
KILL_REPLICA_AT = 3.0
RESTART_DATABASE_AT = 6.5
DATABASE_DOWN_SECONDS = 1.5
ANSWER_WITHIN_SECONDS = 30.0  # one Consume, retries included, must be answered within this
RETRY_PAUSE_SECONDS = 0.1


@dataclass
class ClientLog:
    acknowledged: dict[tuple[str, str], int] = field(default_factory=dict)  # (user, key) -> seconds
    unanswered: list[tuple[str, str]] = field(default_factory=list)
    retries: Counter = field(default_factory=Counter)  # why a request was sent again


def _rest_consume(port: int, user: str, key: str, seconds: int) -> str:
    body = json.dumps({"user_id": user, "operation": "build", "seconds": seconds, "idempotency_key": key})
    conn = httpclient.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Content-Type": "application/json"} | default_key().rest_headers("POST", "/v1/billing/consume", body.encode())
        conn.request("POST", "/v1/billing/consume", body=body, headers=headers)
        response = conn.getresponse()
        payload = response.read()
    except OSError as error:
        return f"connection error {type(error).__name__}"
    finally:
        conn.close()
    if response.status == 200:
        return "ok"
    if response.status in (502, 503, 504):
        assert json.loads(payload)["error"] == "UNAVAILABLE", payload
        if response.status == 503 and json.loads(payload).get("http_status") == 503:
            return "503"
        return f"{response.status}"
    raise AssertionError(f"consume {key}: HTTP {response.status} {payload[:300]!r}")


def _grpc_consume(stub, user: str, key: str, seconds: int) -> str:
    request = consumption_pb2.ConsumeRequest(user_id=user, operation="build", seconds=seconds, idempotency_key=key)
    try:
        stub.Consume(request, timeout=30)
        return "ok"
    except grpc.RpcError as error:
        if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            return error.code().name
        raise AssertionError(f"consume {key}: {error.code()} {error.details()}") from None


def _client(index: int, users: list[str], rest_port: int, grpc_target: str | None, until: float, log: ClientLog):
    channel = signed_channel(grpc_target) if grpc_target else None
    stub = billing_service_pb2_grpc.BillingServiceStub(channel) if channel else None
    rng = random.Random(index)
    try:
        number = 0
        while time.monotonic() < until:
            user, key, seconds = users[index % len(users)], f"c{index}-{number}", rng.randint(1, 5)
            number += 1
            give_up = time.monotonic() + ANSWER_WITHIN_SECONDS
            while True:
                outcome = _grpc_consume(stub, user, key, seconds) if stub else _rest_consume(rest_port, user, key, seconds)
                if outcome == "ok":
                    log.acknowledged[(user, key)] = seconds
                    break
                log.retries[outcome] += 1
                if time.monotonic() > give_up:
                    log.unanswered.append((user, key))
                    break
                time.sleep(RETRY_PAUSE_SECONDS)
    finally:
        if channel is not None:
            channel.close()


def _wait(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {seconds:.0f}s"
        time.sleep(0.1)


def _rest_answers(port: int) -> bool:
    conn = httpclient.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/v1/billing/catalog")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


@pytest.mark.slow
def test_kill_9_and_a_database_restart_under_load_lose_nothing_and_take_nothing_twice(own_postgres, tmp_path):
    data_dir, database_url = own_postgres
    grpc_a, rest_a = free_port(), free_port()
    run_log = tmp_path / "billing-run.log"
    env = os.environ | {
        "DATABASE_URL": database_url, "BILLING_GRPC_PORT": str(grpc_a), "BILLING_REST_PORT": str(rest_a),
        "BILLING_LOG_LEVEL": "ERROR", "PYTHONUNBUFFERED": "1",
        "BILLING_ADMIN_REST_PORT": str(free_port()), "BILLING_METRICS_PORT": "0",
        "BILLING_STRIPE_STANDIN_PORT": str(free_port()),
        "BILLING_RATE_LIMIT_PER_IP": "0",  # 16 REST clients from 127.0.0.1: a per-IP limit would refuse them
    }
    with open(run_log, "wb") as out:
        run = subprocess.Popen([str(VENV_BIN / "billing-dev"), "run"], env=env, stdout=out, stderr=subprocess.STDOUT)
    # Replica B logs its warnings: the outage's lines are counted (api/logs.py OutageLogThrottle).
    replica_b = start_billing_server(database_url, tmp_path / "replica-b", migrate=False,
                                     extra_env={"BILLING_LOG_LEVEL": "WARNING", "BILLING_LOG_FORMAT": "json"})
    try:
        _wait(lambda: health_serving(f"127.0.0.1:{grpc_a}") and _rest_answers(rest_a), 30, "replica A serving")
        users = [f"outage-{os.urandom(4).hex()}-{n}" for n in range(ACCOUNTS)]
        with signed_channel(replica_b.grpc_target) as channel:
            stub = billing_service_pb2_grpc.BillingServiceStub(channel)
            for user in users:
                stub.CreateAccount(accounts_pb2.CreateAccountRequest(user_id=user), timeout=10)
                stub.CreateGrant(accounts_pb2.CreateGrantRequest(
                    user_id=user, source="gift", seconds=GRANT_SECONDS, reason="outage test",
                    idempotency_key=f"grant-{user}"), timeout=10)

        started = time.monotonic()
        until = started + LOAD_SECONDS
        logs = [ClientLog() for _ in range(CLIENTS)]
        grpc_targets = [f"127.0.0.1:{grpc_a}", replica_b.grpc_target]
        threads = [
            threading.Thread(target=_client, args=(
                i, users, rest_a, None if i % 2 == 0 else grpc_targets[(i // 2) % 2], until, logs[i]), daemon=True)
            for i in range(CLIENTS)
        ]
        for thread in threads:
            thread.start()

        time.sleep(max(0.0, started + KILL_REPLICA_AT - time.monotonic()))
        (server_a,) = [p for p in psutil.Process(run.pid).children() if "billing.entrypoints.server" in " ".join(p.cmdline())]
        server_a.send_signal(signal.SIGKILL)

        time.sleep(max(0.0, started + RESTART_DATABASE_AT - time.monotonic()))
        postgres_ctl("stop", data_dir)
        time.sleep(DATABASE_DOWN_SECONDS)
        restarted_url = postgres_ctl("start", data_dir)
        assert restarted_url.rsplit("/", 1)[0] == database_url.rsplit("/", 1)[0], "back on its own port"

        for thread in threads:
            thread.join(timeout=LOAD_SECONDS + ANSWER_WITHIN_SECONDS + 5)
        assert not any(thread.is_alive() for thread in threads)
        elapsed = time.monotonic() - started

        acknowledged = {k: v for log in logs for k, v in log.acknowledged.items()}
        unanswered = [k for log in logs for k in log.unanswered]
        retries = sum((log.retries for log in logs), Counter())
        print(f"\n{len(acknowledged)} consumes acknowledged in {elapsed:.1f}s, retries {dict(retries)}")
        assert unanswered == [], f"not answered within {ANSWER_WITHIN_SECONDS:.0f}s: {unanswered[:5]}"
        assert len(acknowledged) >= 200, "the load ran"
        assert retries, "the faults were felt (clients retried)"
        assert "restarting billing server" in run_log.read_text(errors="replace"), "billing-dev run restarted the killed server"
        _wait(lambda: health_serving(f"127.0.0.1:{grpc_a}") and health_serving(replica_b.grpc_target), 10,
              "both replicas SERVING after the faults")

        with psycopg.connect(libpq_url(database_url)) as connection:
            rows = connection.execute(
                "SELECT account_id, metadata->>'idempotency_key', count(*), count(DISTINCT bucket_seq), -sum(seconds) "
                "FROM ledger_events WHERE type = 'consumption' AND account_id = ANY(%s) GROUP BY 1, 2",
                (users,),
            ).fetchall()
            remaining = dict(connection.execute(
                "SELECT account_id, sum(remaining_seconds) FROM buckets WHERE account_id = ANY(%s) GROUP BY 1",
                (users,),
            ).fetchall())
            granted = dict(connection.execute(
                "SELECT account_id, sum(seconds) FROM ledger_events WHERE type <> 'consumption' "
                "AND account_id = ANY(%s) GROUP BY 1", (users,),
            ).fetchall())
        in_ledger = {(account, key): (rows_, buckets, seconds) for account, key, rows_, buckets, seconds in rows}
        assert set(in_ledger) == set(acknowledged), "every acknowledged consume is in the ledger, and nothing else"
        for consume, seconds in acknowledged.items():
            rows_, buckets, taken = in_ledger[consume]
            assert (rows_, taken) == (buckets, seconds), f"{consume} taken once: {in_ledger[consume]} vs {seconds} s"
        for user in users:
            spent = sum(seconds for (account, _), seconds in acknowledged.items() if account == user)
            assert remaining[user] == granted[user] - spent, user

        assert_few_outage_lines_and_no_traceback(replica_b.stderr_log)

        verify = subprocess.run([str(VENV_BIN / "billing"), "verify"], env=os.environ | {"DATABASE_URL": database_url},
                                capture_output=True, text=True, timeout=60)
        assert verify.returncode == 0, verify.stdout + verify.stderr
    finally:
        stop_process(replica_b.process)
        stop_process(run, timeout=30)


REST_PATHS = [  # every REST path that reaches the database, with a body where it takes one
    ("POST", "/v1/billing/consume", {"user_id": "u1", "operation": "build", "seconds": 1, "idempotency_key": "k1"}),
    ("GET", "/v1/billing/balance/u1", None),
    ("POST", "/v1/billing/check-sufficient-batch",
     {"userId": "u1", "operations": [{"operation": "build", "estimate_seconds": 1}]}),
    ("GET", "/v1/billing/usage/u1", None),
    ("GET", "/v1/billing/events/u1?limit=5", None),
    ("POST", "/v1/billing/admin/grants",
     {"user_id": "u1", "source": "gift", "seconds": 5, "reason": "r", "idempotency_key": "g1"}),
    ("POST", "/v1/billing/accounts", {"user_id": "u2"}),
]
FAIL_FAST_SECONDS = 2.0


def _timed_rest(ports: tuple[int, int], method: str, path: str, payload) -> tuple[int, dict, dict, float]:
    """ports: the browser listener's and the internal one's (admin paths)."""
    started = time.monotonic()
    port = ports[1] if path.startswith("/v1/billing/admin/") else ports[0]
    conn = httpclient.HTTPConnection("127.0.0.1", port, timeout=30)
    body = json.dumps(payload).encode() if payload is not None else b""
    try:
        conn.request(method, path, body=body or None,
                     headers={"Content-Type": "application/json"} | default_key().rest_headers(method, path, body))
        response = conn.getresponse()
        body = response.read()
        headers = {name.lower(): value for name, value in response.getheaders()}
    finally:
        conn.close()
    return response.status, headers, json.loads(body), time.monotonic() - started


def _assert_every_path_fails_fast(ports: tuple[int, int]) -> float:
    slowest = 0.0
    for method, path, payload in REST_PATHS:
        status, headers, body, took = _timed_rest(ports, method, path, payload)
        assert (status, body["error"]) == (503, "UNAVAILABLE"), (path, status, body)
        assert headers.get("retry-after") == "1", (path, headers)
        assert took < FAIL_FAST_SECONDS, (path, took)
        slowest = max(slowest, took)
    return slowest


@pytest.mark.slow
def test_a_server_starts_without_its_database_fails_fast_while_it_is_down_and_serves_when_it_is_back(
    own_postgres, tmp_path
):
    """Its log (warnings included) says so in a few lines without a traceback (issue 19, item 6)."""
    data_dir, database_url = own_postgres
    run_log = tmp_path / "billing-run.log"
    postgres_ctl("stop", data_dir)
    grpc_port, rest_port, admin_rest_port = free_port(), free_port(), free_port()
    grpc_target = f"127.0.0.1:{grpc_port}"
    env = os.environ | {
        "DATABASE_URL": database_url, "BILLING_GRPC_PORT": str(grpc_port), "BILLING_REST_PORT": str(rest_port),
        "BILLING_LOG_LEVEL": "WARNING",
        "BILLING_ADMIN_REST_PORT": str(admin_rest_port), "BILLING_METRICS_PORT": "0",
    }
    ports = (rest_port, admin_rest_port)
    with open(run_log, "wb") as out:
        run = subprocess.Popen([str(VENV_BIN / "billing-dev"), "run"], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        # Up without its database: health answers NOT_SERVING, every call 503 at once.
        _wait(lambda: _rest_answers(rest_port) and _health(grpc_target) == "NOT_SERVING", 20, "started, NOT_SERVING")
        _assert_every_path_fails_fast(ports)
        postgres_ctl("start", data_dir)
        _wait(lambda: _health(grpc_target) == "SERVING", 10, "SERVING once the database is back")
        status, _, body, _ = _timed_rest(ports, "POST", "/v1/billing/accounts", {"user_id": "u1"})
        assert status == 200, body

        # Down while serving: within the probe's confirmation every path is a 503 within 2 s.
        postgres_ctl("stop", data_dir)
        down_at = time.monotonic()
        slowest = max(_assert_every_path_fails_fast(ports) for _ in range(3))
        _wait(lambda: _health(grpc_target) == "NOT_SERVING", 5, "NOT_SERVING while the database is down")
        print(f"\nslowest 503 {slowest:.3f}s; NOT_SERVING {time.monotonic() - down_at:.2f}s after the stop")
        _assert_every_path_fails_fast(ports)

        postgres_ctl("start", data_dir)
        _wait(lambda: _health(grpc_target) == "SERVING", 10, "SERVING again")
        status, _, body, _ = _timed_rest(ports, "GET", "/v1/billing/balance/u1", None)
        assert status == 200 and body["totals"]["total_seconds"] == 2700, body
    finally:
        stop_process(run, timeout=30)
    outage_lines = [line for line in run_log.read_text(errors="replace").splitlines() if '"outage": "database"' in line]
    assert outage_lines, "the outage was logged"
    assert len(outage_lines) < 40, f"{len(outage_lines)} lines for ~60 refused calls in two outages"
    assert "Traceback" not in run_log.read_text(errors="replace")


def _health(target: str) -> str:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
        except grpc.RpcError as error:
            return error.code().name
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def test_the_embedded_postgresql_requires_its_password_and_restarts_on_its_own_port(own_postgres):
    data_dir, database_url = own_postgres
    secret_file = embedded_postgres.password_file(data_dir)
    assert secret_file.stat().st_mode & 0o777 == 0o600
    assert secret_file.read_text().strip() in database_url
    assert "trust" not in [line.split()[-1] for line in (data_dir / "pg_hba.conf").read_text().splitlines()
                           if line.strip() and not line.startswith("#")]
    port = int(database_url.rsplit(":", 1)[1].split("/")[0])
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="billing", connect_timeout=5)
    with psycopg.connect(libpq_url(database_url)) as connection:  # established: TIME_WAIT after the stop
        connection.execute("SELECT 1")
    postgres_ctl("stop", data_dir)
    assert postgres_ctl("start", data_dir).rsplit("/", 1)[0] == database_url.rsplit("/", 1)[0]
