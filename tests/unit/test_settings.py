"""Settings refuse a pool too small for what the server keeps of it."""

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
