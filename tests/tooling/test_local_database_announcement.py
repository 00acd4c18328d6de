"""The local stack tells the `billing` commands where its database is (.data/database-url), and only
for the checkout's own database: a test's stack on another data directory never takes it over."""

from __future__ import annotations

from devstack import run
from billing.settings import DEFAULT_LOCAL_DATABASE_URL_FILE


def test_a_stack_on_another_data_directory_announces_nothing(monkeypatch, tmp_path):
    before = DEFAULT_LOCAL_DATABASE_URL_FILE.read_bytes() if DEFAULT_LOCAL_DATABASE_URL_FILE.exists() else None
    monkeypatch.setenv("EMBEDDED_PG_DATA_DIR", str(tmp_path / "pg"))
    monkeypatch.delenv("BILLING_LOCAL_DATABASE_URL_FILE", raising=False)
    run._announce("postgresql+psycopg://u:p@127.0.0.1:1/billing")
    after = DEFAULT_LOCAL_DATABASE_URL_FILE.read_bytes() if DEFAULT_LOCAL_DATABASE_URL_FILE.exists() else None
    assert after == before


def test_the_announcement_is_private_and_forgotten_with_the_database(monkeypatch, tmp_path):
    announced = tmp_path / "database-url"
    monkeypatch.setenv("BILLING_LOCAL_DATABASE_URL_FILE", str(announced))
    run._announce("postgresql+psycopg://u:p@127.0.0.1:1/billing")
    assert announced.read_text() == "postgresql+psycopg://u:p@127.0.0.1:1/billing\n"
    assert announced.stat().st_mode & 0o777 == 0o600  # it carries the password
    run.forget_database()
    assert not announced.exists()
