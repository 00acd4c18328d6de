"""Hears which accounts changed on any replica: one LISTEN connection per process.

Each notification (change_notifier.py) names accounts; `on_changed` gets their ids at once
(the balance hub re-reads the watched ones). The connection is outside the pool and stays
idle, so a saturated pool never delays a notification.

When the connection dies (a database restart, pg_terminate_backend, a network failure caught
by the keepalives of connection_options) the listener reconnects with a backoff, and once it
listens again calls `on_missed`: whatever changed while it was deaf is re-read for every
watched account, so no change is lost to the gap. It does so after its first LISTEN too, as
streams may have opened before it did.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

import psycopg
from psycopg import sql

from billing.adapters.db.change_notifier import CHANNEL, account_ids_of
from billing.service.ports import outage_log

log = logging.getLogger(__name__)

RECONNECT_SECONDS_MIN = 0.1
RECONNECT_SECONDS_MAX = 5.0


class ChangeListener:
    def __init__(
        self, conninfo: str, on_changed: Callable[[list[str]], None], on_missed: Callable[[], None],
        connect_kwargs: dict[str, Any] | None = None,
    ):
        self._conninfo = conninfo
        self._connect_kwargs = connect_kwargs or {}
        self._on_changed = on_changed
        self._on_missed = on_missed
        self._task: asyncio.Task | None = None
        self.listening = asyncio.Event()  # set while LISTEN is in effect (tests wait for it)
        self.connections = 0  # successful LISTENs so far (tests: a reconnect happened)
        self.backend_pid: int | None = None  # of the listening connection (tests terminate it)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="change-listener")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        wait_seconds = RECONNECT_SECONDS_MIN
        while True:
            connections_before = self.connections
            try:
                await self._listen()
            except (psycopg.Error, OSError) as failure:
                log.warning("account change listener lost its connection (%s); reconnecting", failure,
                            extra=outage_log("database"))
            except Exception:  # a bug must not end the live balance of the whole process
                log.exception("account change listener failed; reconnecting")
            finally:
                self.listening.clear()
            if self.connections > connections_before:
                wait_seconds = RECONNECT_SECONDS_MIN  # it did listen: a fresh failure, retried soon
            await asyncio.sleep(wait_seconds)
            wait_seconds = min(wait_seconds * 2, RECONNECT_SECONDS_MAX)

    async def _listen(self) -> None:
        async with await psycopg.AsyncConnection.connect(
            self._conninfo, autocommit=True, **self._connect_kwargs
        ) as connection:
            await connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))
            self.backend_pid = connection.info.backend_pid
            self.connections += 1
            self.listening.set()
            self._on_missed()
            async for notification in connection.notifies():
                account_ids = account_ids_of(notification.payload)
                if account_ids is None:
                    self._on_missed()
                else:
                    self._on_changed(account_ids)
