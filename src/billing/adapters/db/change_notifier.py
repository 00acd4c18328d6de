"""Tells every replica which accounts changed: PostgreSQL NOTIFY, sent after commit, in bulk.

The storage calls `committed(account_ids)` once a wallet write has committed (unit_of_work.py):
that only adds the ids to a set and wakes the sender, so a request gains no round trip and no
lock. The sender sends what gathered meanwhile as ONE statement on a connection of its own
(`SELECT pg_notify(...) FROM unnest(...)`, payloads chunked under PostgreSQL's 8000-byte
limit), then lets changes gather for SEND_INTERVAL_SECONDS: under load that is at most ~20
NOTIFY transactions a second per process, whatever the rate of commits; a lone change after a
quiet spell goes at once.

Why not NOTIFY inside each write's transaction: PostgreSQL takes a global lock on the
notification queue at the commit of every transaction that notified, which would serialize the
group commit's statements; here only the sender's own short transactions take it. A NOTIFY
transaction gets a transaction id and a commit record: the sender's connection commits with
synchronous_commit off, so it never waits for a WAL flush (notifications are not durable
anyway: they live in memory and reach only those listening at the time). Measured: one
NOTIFY per group-commit batch with synchronous commit cost Consume ~35% of its throughput on
this 2-core VM; paced and asynchronous, see docs/performance.md.

Failure mode: a process that dies after a commit and before its send loses that notification.
Watchers of those accounts then see the change with the account's next change, or when their
stream reconnects (the first message is the current balance); nothing polls to find it sooner.
While the database is unreachable the ids wait (at most PENDING_IDS_MAX, then "every account"),
and each replica's listener re-reads all watched accounts when it reconnects anyway.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Iterable

import psycopg

from billing.adapters.db.own_connection import OwnConnection
from billing.service.ports import outage_log

log = logging.getLogger(__name__)

CHANNEL = "billing_account_changes"
# PostgreSQL refuses a payload of 8000 bytes or more.
NOTIFY_PAYLOAD_BYTES_MAX = 7900
# Account ids hold no spaces (domain/limits.py), so a space separates them.
SEPARATOR = " "
# A payload meaning "any account may have changed": listeners re-read every watched account.
EVERY_ACCOUNT = "*"
PENDING_IDS_MAX = 100_000
SEND_INTERVAL_SECONDS = 0.05
RETRY_SECONDS_MIN = 0.25
RETRY_SECONDS_MAX = 5.0


def payloads(account_ids: Iterable[str]) -> list[str]:
    """The ids in as few NOTIFY payloads as fit, each under NOTIFY_PAYLOAD_BYTES_MAX; an id no payload
    can carry (validated ids never are) makes it "every account", never a stuck sender."""
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for account_id in account_ids:
        length = len(account_id.encode()) + 1
        if not 1 < length <= NOTIFY_PAYLOAD_BYTES_MAX or SEPARATOR in account_id or account_id == EVERY_ACCOUNT:
            return [EVERY_ACCOUNT]
        if size + length > NOTIFY_PAYLOAD_BYTES_MAX:
            chunks.append(SEPARATOR.join(current))
            current, size = [], 0
        current.append(account_id)
        size += length
    if current:
        chunks.append(SEPARATOR.join(current))
    return chunks


def account_ids_of(payload: str) -> list[str] | None:
    """The ids a payload names; None: every account."""
    if payload == EVERY_ACCOUNT:
        return None
    return [account_id for account_id in payload.split(SEPARATOR) if account_id]


class ChangeNotifier:
    def __init__(self, conninfo: str, connect_kwargs: dict[str, Any] | None = None):
        # A notification is not durable whatever the commit does: no wait for the WAL flush.
        self._connection = OwnConnection(conninfo, connect_kwargs, _commit_asynchronously)
        self._pending: set[str] = set()
        self._every_account = False
        self._woken = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.sends = 0  # NOTIFY statements sent (tests, the benchmark)

    def committed(self, account_ids: Iterable[str]) -> None:
        """Called on the request path after a commit: cheap, never raises, never waits."""
        if self._every_account:
            return
        self._pending.update(account_ids)
        if len(self._pending) > PENDING_IDS_MAX:
            self._pending.clear()
            self._every_account = True
        self._woken.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="change-notifier")

    async def close(self) -> None:
        """Stops, after one last short try to send what is pending."""
        if self._task is not None:
            self._task.cancel()  # a send in flight puts its ids back
            await asyncio.gather(self._task, return_exceptions=True)
            try:
                async with asyncio.timeout(1.0):
                    await self._send_pending()
            except (psycopg.Error, OSError, TimeoutError):
                log.warning("stopping with account change notifications unsent")
        await self._connection.drop()

    async def _run(self) -> None:
        retry_seconds = RETRY_SECONDS_MIN
        while True:
            await self._woken.wait()
            self._woken.clear()
            try:
                await self._send_pending()
                retry_seconds = RETRY_SECONDS_MIN
                await asyncio.sleep(SEND_INTERVAL_SECONDS)  # the next changes gather meanwhile
            except (psycopg.Error, OSError) as failure:
                log.warning("account change notification not sent (%s); retrying in %.2fs", failure, retry_seconds,
                            extra=outage_log("database"))
                await self._connection.drop()
                self._woken.set()
                await asyncio.sleep(retry_seconds)
                retry_seconds = min(retry_seconds * 2, RETRY_SECONDS_MAX)

    async def _send_pending(self) -> None:
        if self._every_account:
            chunks = [EVERY_ACCOUNT]
        else:
            chunks = payloads(self._pending)
        if not chunks:
            return
        taken, every = self._pending, self._every_account
        self._pending, self._every_account = set(), False
        try:
            connection = await self._connection.get()
            await connection.execute("SELECT pg_notify(%s, payload) FROM unnest(%s::text[]) AS payload", (CHANNEL, chunks))
            self.sends += 1
        except BaseException:
            self._pending |= taken  # sent again with the next
            self._every_account = self._every_account or every
            raise


async def _commit_asynchronously(connection: psycopg.AsyncConnection) -> None:
    await connection.execute("SET synchronous_commit = off")
