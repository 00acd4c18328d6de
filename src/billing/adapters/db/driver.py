"""What the repositories need of a connection: one method, so a unit of work can hand them a
connection it takes from the pool only at the first statement (unit_of_work._LazyConnection)."""

from __future__ import annotations

from typing import Any, Protocol

import psycopg


class Driver(Protocol):
    async def execute(self, query: Any, params: Any = None) -> psycopg.AsyncCursor[Any]: ...
