"""End-to-end harness: PostgreSQL + the real gRPC server + Envoy, once per session.

Fixtures (all session-scoped):
  database_url    a fresh migrated database billing_e2e_<random> on DATABASE_URL's
                  server if set, else on the embedded PostgreSQL (tests/support/database.py).
  billing_server  `python -m billing.entrypoints.server` on a free port, migrated on start;
                  ready when grpc.health.v1 Check("") answers SERVING.
  envoy_proxy     .venv/bin/envoy with envoy.yaml rendered for free ports, started
                  from the repo root; ready when the listener answers HTTP.
  e2e             E2EStack(rest_base_url, grpc_target, database_url) with .http().
  http            e2e.http: http(method, path, json=None, headers=None, body=None)
                  -> (status, headers, body_bytes); header names lowercased.
  second_replica  another server on the same database (no Envoy), for tests on two replicas.

And, per test: own_postgres, a PostgreSQL of the test's own (testkit/postgres.py) that it may stop
and restart; yields (data_dir, database_url), its admin key the default key meanwhile.

BILLING_E2E_SERVER_CMD (shell words) replaces the server command, e.g. to run the
suite against a stub.
"""

from __future__ import annotations

import asyncio
import http.client as httpclient
import json as jsonlib
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from devstack.standin.stripe_standin import StripeStandin

from billing.adapters.db.invariants import find_violations_in_database
from billing.domain.auth import Scope
from tests.e2e.envoy_process import EnvoyProxy, running_envoy
from tests.e2e.fuzz_support import ledger_snapshot
from tests.support.database import fresh_database
from testkit.pgbouncer import skip_unless_installed, PgBouncer, running_pgbouncer
from testkit.postgres import own_database
from testkit.signing import SigningKey, create_key, default_key, has_default_key, set_default_key
from testkit.processes import (
    BillingServer, start_billing_server, stop_process,
)

HTTP_TIMEOUT = 30.0  # above the 20 s route timeout, so Envoy answers first


# ---------------------------------------------------------------- database


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    with fresh_database("billing_e2e") as url:
        yield url


@dataclass(frozen=True)
class SessionKeys:
    """Created before the server starts, so its first key refresh loads them (no waiting)."""

    admin: SigningKey
    service: SigningKey
    user: SigningKey  # acts for user_id only
    user_id: str


@pytest.fixture(scope="session")
def session_keys(database_url: str) -> SessionKeys:
    user_id = f"e2e-keyed-{uuid.uuid4().hex[:8]}"
    keys = SessionKeys(
        admin=create_key(database_url, Scope.ADMIN),
        service=create_key(database_url, Scope.SERVICE),
        user=create_key(database_url, Scope.USER, user_id=user_id),
        user_id=user_id,
    )
    set_default_key(keys.admin)
    return keys


@pytest.fixture(scope="session")
def admin_key(session_keys: SessionKeys) -> SigningKey:
    return session_keys.admin


# ---------------------------------------------------------------- gRPC server


E2E_WEBHOOK_SECRET = "whsec_e2e_" + "5" * 24
E2E_HEARTBEAT_SECONDS = 1  # live balance streams: a heartbeat a test can wait for
E2E_STRIPE_KEY = "sk_test_e2e"
E2E_RETRY_SCHEDULE = (1, 1, 2, 4, 8)


@pytest.fixture(scope="session")
def stripe_standin() -> Iterator[StripeStandin]:
    """The local Stripe stand-in the server talks to; its webhooks go to Envoy once it is up.
    clock_shift[0]: seconds added to its clock (a test starts a subscription "a month ago", so
    that its period ends seconds from now in the server's real time; signatures use real time)."""
    shift = [0.0]  # tests import this module again (not pytest's conftest instance): reach it by the fixture
    # Stripe's redelivery backoff (up to 3 days) compressed to seconds: a refused delivery comes again at once.
    standin = StripeStandin(webhook_secret=E2E_WEBHOOK_SECRET, clock=lambda: time.time() + shift[0],
                            retry_schedule=E2E_RETRY_SCHEDULE, tick_seconds=0.2).start()
    standin.clock_shift = shift  # type: ignore[attr-defined]
    try:
        yield standin
    finally:
        standin.stop()


def stripe_environment(standin: StripeStandin) -> dict[str, str]:
    return {"STRIPE_SECRET_KEY": E2E_STRIPE_KEY, "STRIPE_API_BASE": standin.api_base,
            "STRIPE_WEBHOOK_SECRET": E2E_WEBHOOK_SECRET}


@pytest.fixture(scope="session")
def billing_server(
    database_url: str, admin_key: SigningKey, tmp_path_factory: pytest.TempPathFactory, stripe_standin: StripeStandin
) -> Iterator[BillingServer]:
    server = start_billing_server(
        database_url, tmp_path_factory.mktemp("billing-server"),
        extra_env=stripe_environment(stripe_standin) | {"BILLING_WATCH_HEARTBEAT_SECONDS": str(E2E_HEARTBEAT_SECONDS)},
    )
    try:
        yield server
    finally:
        stop_process(server.process)


@pytest.fixture(scope="session")
def second_replica(
    e2e: "E2EStack", stripe_standin: StripeStandin, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BillingServer]:
    """A second server on the e2e database: the same settings, its own port, no Envoy in front."""
    server = start_billing_server(e2e.database_url, tmp_path_factory.mktemp("replica"), migrate=False,
                                  extra_env=stripe_environment(stripe_standin))
    try:
        yield server
    finally:
        assert stop_process(server.process) == 0, "the second replica exits cleanly"


@pytest.fixture(scope="session")
def pgbouncer(e2e: "E2EStack") -> Iterator[PgBouncer]:
    """pgbouncer in transaction mode (testkit/pgbouncer.py) in front of the e2e database; its URL logs in as a
    role whose defaults are the settings the service's startup options would give (pgbouncer refuses them)."""
    skip_unless_installed()
    with running_pgbouncer(e2e.database_url) as bouncer:
        yield bouncer


@pytest.fixture(scope="session")
def pooled_replicas(
    e2e: "E2EStack", pgbouncer: PgBouncer, stripe_standin: StripeStandin, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[BillingServer]]:
    """Two servers (no Envoy) as deployed behind a transaction-mode pooler: DATABASE_URL is pgbouncer's,
    BILLING_DB_POOLER=transaction, DATABASE_DIRECT_URL the database (LISTEN, the notifier, the migrations'
    lock: the first migrates on start)."""
    environment = stripe_environment(stripe_standin) | {
        "BILLING_DB_POOLER": "transaction", "DATABASE_DIRECT_URL": e2e.database_url,
        "BILLING_WATCH_HEARTBEAT_SECONDS": str(E2E_HEARTBEAT_SECONDS),
    }
    servers: list[BillingServer] = []
    try:
        for index in range(2):
            servers.append(start_billing_server(pgbouncer.url, tmp_path_factory.mktemp("pooled"), migrate=index == 0,
                                                extra_env=environment))
        yield servers
    finally:
        for server in servers:
            assert stop_process(server.process) == 0, "a server through the pooler stops cleanly"


@pytest.fixture()
def own_postgres() -> Iterator[tuple[Path, str]]:
    with own_database() as (data_dir, database_url):
        # This database's own admin key signs the test's calls (servers load it when they start).
        suite_key = default_key() if has_default_key() else None
        set_default_key(create_key(database_url, Scope.ADMIN))
        try:
            yield data_dir, database_url
        finally:
            if suite_key is not None:
                set_default_key(suite_key)


# ---------------------------------------------------------------- Envoy


@pytest.fixture(scope="session")
def envoy_proxy(billing_server: BillingServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EnvoyProxy]:
    # The fuzz test sends thousands of requests a second from 127.0.0.1: no per-IP rate limit (the
    # limit has its own Envoy in test_limits.py).
    with running_envoy(tmp_path_factory.mktemp("envoy"), [("127.0.0.1", billing_server.grpc_port)]) as proxy:
        yield proxy


# ---------------------------------------------------------------- the stack


@dataclass(frozen=True)
class E2EStack:
    rest_base_url: str
    grpc_target: str
    database_url: str
    server: BillingServer
    envoy: EnvoyProxy
    admin_key: SigningKey

    def http(
        self,
        method: str,
        path: str,
        json: Any = None,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        key: SigningKey | None | bool = True,
        browser_listener: bool = False,
    ) -> tuple[int, dict[str, str], bytes]:
        """One REST request through Envoy. `json` is encoded with content-type
        application/json; `body` sends raw bytes instead. Signed with the session's admin key
        (key=True), another key, or not at all (key=None). Admin paths go to the internal listener,
        as a backend sends them, unless browser_listener says otherwise. Returns (status, headers
        with lowercased names, repeated ones joined by ", ", body bytes)."""
        send_headers = dict(headers or {})
        if json is not None:
            if body is not None:
                raise ValueError("pass json or body, not both")
            body = jsonlib.dumps(json).encode()
            if not any(name.lower() == "content-type" for name in send_headers):
                send_headers["Content-Type"] = "application/json"
        signing_key = self.admin_key if key is True else key or None
        if signing_key is not None:
            send_headers = signing_key.rest_headers(method, path, body or b"") | send_headers
        internal = path.startswith("/v1/billing/admin/") and not browser_listener
        port = self.envoy.admin_rest_port if internal else self.envoy.listen_port
        conn = httpclient.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT)
        try:
            conn.request(method, path, body=body, headers=send_headers)
            response = conn.getresponse()
            data = response.read()
            reply_headers: dict[str, str] = {}
            for name, value in response.getheaders():
                key = name.lower()
                reply_headers[key] = f"{reply_headers[key]}, {value}" if key in reply_headers else value
            return response.status, reply_headers, data
        finally:
            conn.close()


@pytest.fixture(scope="session")
def e2e(
    database_url: str, billing_server: BillingServer, envoy_proxy: EnvoyProxy, admin_key: SigningKey,
    stripe_standin: StripeStandin,
) -> E2EStack:
    # Stripe delivers to the public listener, as in production.
    stripe_standin.configure_webhook(
        f"http://127.0.0.1:{envoy_proxy.listen_port}/v1/billing/webhooks/stripe", E2E_WEBHOOK_SECRET
    )
    return E2EStack(
        admin_key=admin_key,
        rest_base_url=f"http://127.0.0.1:{envoy_proxy.listen_port}",
        grpc_target=billing_server.grpc_target,
        database_url=database_url,
        server=billing_server,
        envoy=envoy_proxy,
    )


@pytest.fixture(scope="session")
def http(e2e: E2EStack):
    return e2e.http


@pytest.fixture
def untouched_ledger(e2e):
    """Asserts, after each fuzz test (test_fuzz*.py), that the ledger did not move and its invariants hold."""
    before = ledger_snapshot(e2e.database_url)
    tracebacks = e2e.server.stderr_log.read_text(errors="replace").count("Traceback")
    yield
    assert ledger_snapshot(e2e.database_url) == before
    assert asyncio.run(find_violations_in_database(e2e.database_url)) == []
    log = e2e.server.stderr_log.read_text(errors="replace")
    assert log.count("Traceback") == tracebacks, log[-5000:]
