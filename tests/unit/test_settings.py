"""Settings: read once from the environment; refuse a pool too small for what the server keeps of it."""

from __future__ import annotations

import pytest

from billing.settings import Settings


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
    assert Settings.from_environment().database_pool_size == 2


def test_a_resolved_database_url_stands_in_for_DATABASE_URL(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    settings = Settings.from_environment(database_url="postgresql://postgres@127.0.0.1:54329/billing")
    assert settings.database_url == "postgresql+psycopg://postgres@127.0.0.1:54329/billing"


def test_no_database_url_at_all_is_refused(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(SystemExit, match="DATABASE_URL is not set"):
        Settings.from_environment()


def test_envoy_ports_and_cors_origin_come_from_the_environment(environment):
    environment.setenv("BILLING_REST_PORT", "18080")
    environment.setenv("BILLING_ENVOY_ADMIN_PORT", "19901")
    environment.setenv("BILLING_CORS_ORIGIN", "https://app.example")
    settings = Settings.from_environment()
    assert (settings.rest_port, settings.envoy_admin_port, settings.cors_origin) == (18080, 19901, "https://app.example")


def test_metrics_listen_on_loopback_9464_unless_told_otherwise(environment):
    settings = Settings.from_environment()
    assert (settings.metrics_host, settings.metrics_port) == ("127.0.0.1", 9464)
    environment.setenv("BILLING_METRICS_HOST", "0.0.0.0")
    environment.setenv("BILLING_METRICS_PORT", "0")  # no endpoint
    settings = Settings.from_environment()
    assert (settings.metrics_host, settings.metrics_port) == ("0.0.0.0", 0)


def test_logs_are_json_unless_text_is_asked_for(environment):
    assert Settings.from_environment().log_format == "json"
    environment.setenv("BILLING_LOG_FORMAT", "TEXT")
    assert Settings.from_environment().log_format == "text"
    environment.setenv("BILLING_LOG_FORMAT", "xml")
    with pytest.raises(SystemExit, match="BILLING_LOG_FORMAT must be one of json, text"):
        Settings.from_environment()


def test_envoy_limits_come_from_the_environment(monkeypatch):
    from billing.settings import EnvoyLimits

    for name in ("BILLING_RATE_LIMIT_PER_IP", "BILLING_RATE_LIMIT_BURST", "BILLING_MAX_CONNECTIONS"):
        monkeypatch.delenv(name, raising=False)
    assert EnvoyLimits.from_environment() == EnvoyLimits(200, 400, 4096)
    monkeypatch.setenv("BILLING_RATE_LIMIT_PER_IP", "50")
    assert EnvoyLimits.from_environment() == EnvoyLimits(50, 100, 4096)
    monkeypatch.setenv("BILLING_RATE_LIMIT_BURST", "60")
    monkeypatch.setenv("BILLING_MAX_CONNECTIONS", "10")
    assert EnvoyLimits.from_environment() == EnvoyLimits(50, 60, 10)
    monkeypatch.setenv("BILLING_RATE_LIMIT_BURST", "10")
    with pytest.raises(ValueError):
        EnvoyLimits.from_environment()
