"""A connection of its own, outside the pool, in autocommit: for a background task that must not
wait behind requests for a pooled connection (the availability probe, the change notifier).
Opened at first use and again after it broke; closing a dead one is not an error."""

from __future__ import annotations

from typing import Any, Awaitable, Callable

import psycopg


class OwnConnection:
    def __init__(
        self, conninfo: str, connect_kwargs: dict[str, Any] | None = None,
        prepare: Callable[[psycopg.AsyncConnection], Awaitable[Any]] | None = None,
    ):
        self._conninfo = conninfo
        self._connect_kwargs = connect_kwargs or {}
        self._prepare = prepare  # run on each new connection (a session setting)
        self._connection: psycopg.AsyncConnection | None = None

    async def get(self) -> psycopg.AsyncConnection:
        connection = self._connection
        if connection is None or connection.closed or connection.broken:
            await self.drop()
            connection = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True, **self._connect_kwargs)
            if self._prepare is not None:
                await self._prepare(connection)
            self._connection = connection
        return connection

    async def drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                await connection.close()
            except Exception:  # closing a dead connection: nothing to save
                pass
