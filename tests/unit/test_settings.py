"""Settings: read once from the environment; refuse a pool too small for what the server keeps of it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from devstack.run import envoy_cors_origins
from devstack.envoy_config import ENVOY_TEMPLATE, render_envoy_config
from billing.settings import NO_RATE_LIMIT, Settings, direct_database_url


@pytest.fixture
def environment(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/billing")
    return monkeypatch


def test_group_commit_needs_room_in_the_pool_for_the_locking_path(environment):
    environment.setenv("BILLING_DB_POOL_SIZE", "2")
    with pytest.raises(SystemExit, match="BILLING_DB_POOL_SIZE must be at least 3"):
        Settings.from_environment()


def test_without_group_commit_a_small_pool_is_enough(environment):
    environment.setenv("BILLING_DB_POOL_SIZE", "2")
    environment.setenv("BILLING_GROUP_COMMIT", "0")
    assert Settings.from_environment().database.pool_size == 2


def test_a_resolved_database_url_stands_in_for_DATABASE_URL(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    settings = Settings.from_environment(database_url="postgresql://postgres@127.0.0.1:54329/billing")
    assert settings.database.url == "postgresql+psycopg://postgres@127.0.0.1:54329/billing"


def test_no_database_url_at_all_is_refused(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(SystemExit, match="DATABASE_URL is not set"):
        Settings.from_environment()


def test_without_a_pooler_session_work_goes_where_requests_go(environment):
    environment.delenv("BILLING_DB_POOLER", raising=False)
    environment.delenv("DATABASE_DIRECT_URL", raising=False)
    database = Settings.from_environment().database
    assert database.pooler == "none"
    assert database.session_url == database.url == "postgresql+psycopg://postgres@127.0.0.1:5432/billing"


def test_behind_a_transaction_pooler_session_work_goes_to_the_database_itself(environment):
    environment.setenv("DATABASE_URL", "postgres://billing@pgbouncer:6432/billing")
    environment.setenv("BILLING_DB_POOLER", "transaction")
    environment.setenv("DATABASE_DIRECT_URL", "postgres://billing@primary:5432/billing")
    database = Settings.from_environment().database
    assert database.pooler == "transaction"
    assert database.url == "postgresql+psycopg://billing@pgbouncer:6432/billing"
    assert database.session_url == "postgresql+psycopg://billing@primary:5432/billing"


def test_a_pooler_without_the_database_behind_it_is_refused(environment):
    environment.setenv("BILLING_DB_POOLER", "transaction")
    environment.delenv("DATABASE_DIRECT_URL", raising=False)
    with pytest.raises(SystemExit, match="set DATABASE_DIRECT_URL"):
        Settings.from_environment()
    with pytest.raises(SystemExit, match="set DATABASE_DIRECT_URL"):
        direct_database_url("postgres://billing@pgbouncer:6432/billing")


def test_an_unknown_pooler_is_refused(environment):
    environment.setenv("BILLING_DB_POOLER", "pgbouncer")
    with pytest.raises(SystemExit, match="BILLING_DB_POOLER must be one of none, transaction, transaction-prepared"):
        Settings.from_environment()


def test_envoy_ports_and_cors_origin_come_from_the_environment(environment):
    environment.setenv("BILLING_REST_PORT", "18080")
    environment.setenv("BILLING_CORS_ORIGIN", "https://app.example")
    environment.setenv("BILLING_DEMO_PORT", "0")
    settings = Settings.from_environment()
    assert (settings.edge.rest_port, settings.edge.cors_origins) == (18080, ("https://app.example",))


def test_cors_allows_the_demo_by_either_loopback_name_on_its_port(environment):
    environment.delenv("BILLING_CORS_ORIGIN", raising=False)
    environment.delenv("BILLING_DEMO_PORT", raising=False)
    settings = Settings.from_environment()
    assert envoy_cors_origins(settings) == ("http://localhost:3000", "http://127.0.0.1:3000")
    rendered = _rendered_envoy_config(settings)
    assert rendered.count("  # cors_origin\n") == 2 and '- exact: "http://127.0.0.1:3000"  # cors_origin' in rendered
    environment.setenv("BILLING_DEMO_PORT", "4000")  # `billing-dev run` serves the demo there
    environment.setenv("BILLING_CORS_ORIGIN", "https://app.example")
    assert envoy_cors_origins(Settings.from_environment()) == (
        "https://app.example", "http://localhost:4000", "http://127.0.0.1:4000")
    environment.delenv("BILLING_CORS_ORIGIN")
    environment.setenv("BILLING_DEMO_PORT", "0")  # no demo, no origin named: the default
    assert envoy_cors_origins(Settings.from_environment()) == ("http://localhost:3000",)


def test_a_production_origin_brings_in_no_demo_origin(environment):
    """The app's origins (Settings) never include the demo's, whatever BILLING_DEMO_PORT says: only the
    Envoy of a `billing-dev run` that serves the demo allows them."""
    environment.setenv("BILLING_CORS_ORIGIN", "https://app.example")
    environment.delenv("BILLING_DEMO_PORT", raising=False)  # the default: 3000
    settings = Settings.from_environment()
    assert settings.edge.cors_origins == ("https://app.example",)
    rendered = render_envoy_config(
        ENVOY_TEMPLATE.read_text(), listen_port=8080, grpc_port=50051, admin_socket=Path("/run/envoy-admin.sock"),
        cors_origin=settings.edge.cors_origins, admin_rest_port=8081, limits=NO_RATE_LIMIT,
    )
    assert re.findall(r'- exact: "([^"]+)"  # cors_origin', rendered) == ["https://app.example"]


def test_metrics_listen_on_loopback_9464_unless_told_otherwise(environment):
    settings = Settings.from_environment()
    assert (settings.metrics.host, settings.metrics.port) == ("127.0.0.1", 9464)
    environment.setenv("BILLING_METRICS_HOST", "0.0.0.0")
    environment.setenv("BILLING_METRICS_PORT", "0")  # no endpoint
    settings = Settings.from_environment()
    assert (settings.metrics.host, settings.metrics.port) == ("0.0.0.0", 0)


def test_logs_are_json_unless_text_is_asked_for(environment):
    assert Settings.from_environment().server.log_format == "json"
    environment.setenv("BILLING_LOG_FORMAT", "TEXT")
    assert Settings.from_environment().server.log_format == "text"
    environment.setenv("BILLING_LOG_FORMAT", "xml")
    with pytest.raises(SystemExit, match="BILLING_LOG_FORMAT must be one of json, text"):
        Settings.from_environment()


def test_envoy_limits_come_from_the_environment(monkeypatch):
    from billing.settings import EnvoyLimits

    for name in ("BILLING_RATE_LIMIT_PER_IP", "BILLING_RATE_LIMIT_BURST", "BILLING_MAX_CONNECTIONS",
                 "BILLING_INTERNAL_MAX_CONNECTIONS", "BILLING_WEBHOOK_RATE_LIMIT_PER_IP"):
        monkeypatch.delenv(name, raising=False)
    assert EnvoyLimits.from_environment() == EnvoyLimits(200, 400, 8192, 1024, 2000, 4000)
    assert EnvoyLimits().total_max_connections == 8192 + 1024
    monkeypatch.setenv("BILLING_RATE_LIMIT_PER_IP", "50")
    assert EnvoyLimits.from_environment() == EnvoyLimits(50, 100, 8192)
    monkeypatch.setenv("BILLING_RATE_LIMIT_BURST", "60")
    monkeypatch.setenv("BILLING_MAX_CONNECTIONS", "10")
    monkeypatch.setenv("BILLING_INTERNAL_MAX_CONNECTIONS", "3")
    monkeypatch.setenv("BILLING_WEBHOOK_RATE_LIMIT_PER_IP", "70")
    assert EnvoyLimits.from_environment() == EnvoyLimits(50, 60, 10, 3, 70, 140)
    monkeypatch.setenv("BILLING_WEBHOOK_RATE_LIMIT_PER_IP", "0")
    with pytest.raises(ValueError):
        EnvoyLimits.from_environment()
    monkeypatch.setenv("BILLING_WEBHOOK_RATE_LIMIT_PER_IP", "70")
    monkeypatch.setenv("BILLING_RATE_LIMIT_BURST", "10")
    with pytest.raises(ValueError):
        EnvoyLimits.from_environment()


def _listener_address(envoy_yaml: str, listener: str) -> tuple[str, int]:
    found = re.search(
        rf"- name: {listener}\n\s+address:\n\s+socket_address: \{{address: ([^,]+), port_value: (\d+)\}}", envoy_yaml
    )
    assert found, f"no listener {listener} in the rendered config"
    return found.group(1), int(found.group(2))


def _rendered_envoy_config(settings: Settings) -> str:
    """As `billing-dev run` renders it (src/billing/entrypoints/cli.py)."""
    return render_envoy_config(
        ENVOY_TEMPLATE.read_text(), listen_port=settings.edge.rest_port, grpc_port=settings.server.grpc_port,
        admin_socket=Path("/run/billing/envoy-admin.sock"), cors_origin=envoy_cors_origins(settings),
        admin_rest_port=settings.edge.admin_rest_port, admin_rest_host=settings.edge.admin_rest_host,
        limits=NO_RATE_LIMIT,
    )


def test_grpc_and_the_admin_rest_listener_bind_loopback_unless_told_otherwise(environment):
    for name in ("BILLING_GRPC_HOST", "BILLING_ADMIN_REST_HOST", "BILLING_GRPC_PORT", "BILLING_ADMIN_REST_PORT",
                 "BILLING_REST_PORT"):
        environment.delenv(name, raising=False)
    settings = Settings.from_environment()
    assert (settings.server.grpc_host, settings.server.grpc_port) == ("127.0.0.1", 50051)
    assert (settings.edge.admin_rest_host, settings.edge.admin_rest_port) == ("127.0.0.1", 8081)
    rendered = _rendered_envoy_config(settings)
    assert _listener_address(rendered, "billing_admin_rest") == ("127.0.0.1", 8081)
    assert _listener_address(rendered, "billing_rest") == ("0.0.0.0", 8080)  # only the browser listener is public

    environment.setenv("BILLING_GRPC_HOST", "0.0.0.0")
    environment.setenv("BILLING_ADMIN_REST_HOST", "10.0.0.7")
    settings = Settings.from_environment()
    assert (settings.server.grpc_host, settings.edge.admin_rest_host) == ("0.0.0.0", "10.0.0.7")
    assert _listener_address(_rendered_envoy_config(settings), "billing_admin_rest") == ("10.0.0.7", 8081)


@pytest.fixture
def declared_unset(monkeypatch):
    """Every declared variable unset but DATABASE_URL: what the defaults alone give."""
    from billing.settings import DECLARED

    for name in DECLARED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/billing")
    monkeypatch.setattr("billing.settings.STANDIN_FILES", Path("/nonexistent/stripe-standin"))
    return monkeypatch


def test_the_defaults_are_those_the_service_always_had(declared_unset):
    from billing.settings import (
        DEFAULT_CATALOG_PATH, DEFAULT_MASTER_KEY_PATH, ClockSettings, DatabaseSettings, EdgeSettings, KeySettings,
        LimitSettings, MetricsSettings, PaymentSettings, ServerSettings, WebhookSettings, demo_port, standin_port,
    )

    s = Settings.from_environment()
    assert s.server == ServerSettings(
        grpc_host="127.0.0.1", grpc_port=50051, workers=1, worker_ports=(), worker_port=0, shutdown_grace_seconds=10.0,
        request_timeout_seconds=10.0, catalog_path=DEFAULT_CATALOG_PATH, migrate_on_start=False, log_level="INFO",
        log_format="json",
    )
    assert s.database == DatabaseSettings(
        url="postgresql+psycopg://postgres@127.0.0.1:5432/billing", pool_size=16, group_commit=True)
    assert s.edge == EdgeSettings(
        rest_port=8080, admin_rest_port=8081, admin_rest_host="127.0.0.1", cors_origins=("http://localhost:3000",))
    assert s.keys == KeySettings(require_signatures=True, master_key_path=DEFAULT_MASTER_KEY_PATH, master_key_hex=None)
    assert s.limits == LimitSettings(
        key_rate_limits={"user": 20, "service": 5000, "admin": 1000}, max_watchers=5000, max_watchers_per_user=5,
        watch_heartbeat_seconds=15.0,
    )
    assert s.payments == PaymentSettings(
        stripe=None, checkout_success_url="http://localhost:3000/?purchased=true",
        checkout_cancel_url="http://localhost:3000/?purchase_canceled=true",
    )
    assert (s.metrics, s.clock) == (MetricsSettings(host="127.0.0.1", port=9464), ClockSettings(0, None))
    assert s.webhooks == WebhookSettings(  # webhook targets on private addresses refused
        send=True, allow_private=False, poll_seconds=0.2, dispatch_batch=500, claim_batch=100, concurrency=32)
    assert (demo_port(), standin_port()) == (3000, 12111)


def test_no_secret_reaches_a_log_line(declared_unset):
    """The database's password and the master key stay out of every group's repr, and the whole's."""
    declared_unset.setenv("DATABASE_URL", "postgresql://billing:hunter2@db.example/billing")
    declared_unset.setenv("BILLING_MASTER_KEY", "ab" * 32)
    s = Settings.from_environment()
    for shown in (repr(s), repr(s.database), repr(s.keys)):
        assert "hunter2" not in shown and "ab" * 32 not in shown


def test_the_service_objects_defaults_are_the_settings(declared_unset):
    """The watcher limits and checkout pages have no defaults of their own: the tests' come from settings too."""
    from tests.support.defaults import CHECKOUT_PAGES, WATCH_LIMITS

    s = Settings.from_environment()
    assert (WATCH_LIMITS.max_watchers, WATCH_LIMITS.max_watchers_per_account, WATCH_LIMITS.heartbeat_seconds) == (
        s.limits.max_watchers, s.limits.max_watchers_per_user, s.limits.watch_heartbeat_seconds)
    assert (CHECKOUT_PAGES.success_url, CHECKOUT_PAGES.cancel_url) == (
        s.payments.checkout_success_url, s.payments.checkout_cancel_url)


def test_checkout_pages_follow_the_app_origin_unless_set(declared_unset):
    declared_unset.setenv("BILLING_CORS_ORIGIN", "https://app.example")
    s = Settings.from_environment()
    assert (s.payments.checkout_success_url, s.payments.checkout_cancel_url) == (
        "https://app.example/?purchased=true", "https://app.example/?purchase_canceled=true")
    declared_unset.setenv("BILLING_CHECKOUT_SUCCESS_URL", "https://app.example/paid")
    declared_unset.setenv("BILLING_CHECKOUT_CANCEL_URL", "https://app.example/cart")
    s = Settings.from_environment()
    assert (s.payments.checkout_success_url, s.payments.checkout_cancel_url) == (
        "https://app.example/paid", "https://app.example/cart")


@pytest.mark.parametrize("name, given, error, message", [
    ("BILLING_GRPC_PORT", "fifty", ValueError, "invalid literal"),
    ("BILLING_SHUTDOWN_GRACE_SECONDS", "soon", ValueError, "could not convert"),
    ("BILLING_KEY_RATE_LIMIT_USER", "-1", SystemExit, "BILLING_KEY_RATE_LIMIT_USER must be a whole number"),
    ("BILLING_CLOCK_OFFSET_SECONDS", "1.5", SystemExit, "BILLING_CLOCK_OFFSET_SECONDS must be a whole"),
    ("BILLING_MAX_WATCHERS", "0", SystemExit, "BILLING_MAX_WATCHERS and BILLING_MAX_WATCHERS_PER_USER"),
    ("BILLING_WATCH_HEARTBEAT_SECONDS", "60", SystemExit, r"BILLING_WATCH_HEARTBEAT_SECONDS must be in \(0, 50\]"),
    ("BILLING_METRICS_PORT", "70000", SystemExit, "BILLING_METRICS_PORT must be a port number"),
    ("STRIPE_SECRET_KEY", "sk_test_x", SystemExit, "STRIPE_WEBHOOK_SECRET must be set"),
])
def test_bad_values_are_refused_as_before(declared_unset, name, given, error, message):
    declared_unset.setenv(name, given)
    with pytest.raises(error, match=message):
        Settings.from_environment()


def test_flags_read_the_usual_words(declared_unset):
    for word, expected in (("1", True), ("yes", True), (" ON ", True), ("0", False), ("no", False), ("", False)):
        declared_unset.setenv("BILLING_MIGRATE_ON_START", word)
        assert Settings.from_environment().server.migrate_on_start is expected


def test_envoy_balances_over_the_listed_servers_else_the_workers_else_the_one_port(monkeypatch):
    from devstack.run import envoy_upstreams

    monkeypatch.setenv("BILLING_GRPC_PORT", "50051")
    assert envoy_upstreams(Settings.from_environment("postgresql://u@h/db")) == (("127.0.0.1", 50051),)
    monkeypatch.setenv("BILLING_WORKER_PORTS", "50061,50062")
    monkeypatch.setenv("BILLING_WORKERS", "2")
    assert envoy_upstreams(Settings.from_environment("postgresql://u@h/db")) == (
        ("127.0.0.1", 50061), ("127.0.0.1", 50062))
    monkeypatch.setenv("BILLING_GRPC_UPSTREAMS", "billing-0.billing:50051, 10.0.0.2:50051,[::1]:7000")
    assert envoy_upstreams(Settings.from_environment("postgresql://u@h/db")) == (
        ("billing-0.billing", 50051), ("10.0.0.2", 50051), ("::1", 7000))


@pytest.mark.parametrize("listed", ["host", "host:", ":50051", "host:70000", "host:port"])
def test_a_bad_upstream_list_stops_with_its_name(monkeypatch, listed):
    monkeypatch.setenv("BILLING_GRPC_UPSTREAMS", listed)
    with pytest.raises(SystemExit, match="BILLING_GRPC_UPSTREAMS"):
        Settings.from_environment("postgresql://u@h/db")


def test_the_edges_envoys_are_listed_for_their_shares_of_the_per_ip_limits(monkeypatch):
    monkeypatch.setenv("BILLING_EDGE_PEERS", "envoy-edge.billing.svc:8080")
    assert Settings.from_environment("postgresql://u@h/db").edge.edge_peers == (("envoy-edge.billing.svc", 8080),)
    monkeypatch.setenv("BILLING_EDGE_PEERS", "envoy-edge")
    with pytest.raises(SystemExit, match="BILLING_EDGE_PEERS"):
        Settings.from_environment("postgresql://u@h/db")
