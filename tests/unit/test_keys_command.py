"""`billing keys` reaches the keys table through the composition root (bootstrap.build_service), like every
command: no connection of its own. The command's behaviour against a database: tests/e2e/test_cli_keys.py."""

from __future__ import annotations

from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from types import SimpleNamespace
from typing import Any, AsyncIterator

import pytest

from billing.domain.auth import Scope
from billing.entrypoints import keys
from billing.settings import Settings


class _Cursor:
    rowcount = 1


class _Connection:
    def __init__(self) -> None:
        self.statements: list[str] = []

    async def execute(self, query: Any, params: Any = None) -> _Cursor:
        self.statements.append(query.split()[0])
        return _Cursor()


@pytest.fixture
def root(monkeypatch):
    """build_service as the keys command calls it: its arguments, and a pool handing out one recording connection."""
    connection = _Connection()
    calls: list[dict[str, Any]] = []

    @asynccontextmanager
    async def pooled() -> AsyncIterator[_Connection]:
        yield connection

    async def build_service(settings: Settings, stack: AsyncExitStack, **options: Any) -> SimpleNamespace:
        assert isinstance(stack, AsyncExitStack)
        calls.append({"settings": settings, **options})
        return SimpleNamespace(pool=SimpleNamespace(connection=pooled))

    monkeypatch.setattr(keys, "build_service", build_service)
    return SimpleNamespace(calls=calls, connection=connection)


@pytest.fixture
def settings(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/unused")
    return Settings.from_environment()


def test_keys_are_created_and_revoked_through_the_composition_root(root, settings):
    key = keys.create_stored_key(settings, Scope.SERVICE, None, timedelta(hours=1))
    assert keys.revoke_stored_key(settings, key.key_id) is True
    assert root.connection.statements == ["INSERT", "UPDATE"]
    assert root.calls == [{"settings": settings, "pool_size": keys.KEYS_POOL_SIZE, "announce_changes": False}] * 2
