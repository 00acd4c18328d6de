"""One Consume per account at a time in this process.

Two Consumes of one account in flight together read the same version of the wallet; only one
write can win, and the other pays a whole second attempt (read, plan, write). Queueing the
second behind the first in the process costs it the wait it would have spent anyway and saves
the wasted attempt. Other processes and replicas still race; the version check decides there.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import AsyncIterator


# Beyond this wait the account is busy for long (a slow statement, an outage): a request goes
# on ungated rather than queueing behind every failure before it; the version check still decides.
GATE_WAIT_SECONDS = 1.0


class AccountGate:
    def __init__(self, wait_seconds: float = GATE_WAIT_SECONDS) -> None:
        self._wait_seconds = wait_seconds
        self._locks: dict[str, asyncio.Lock] = {}
        self._holders: dict[str, int] = {}  # requests holding or waiting for each lock

    @asynccontextmanager
    async def passage(self, account_id: str) -> AsyncIterator[None]:
        lock = self._locks.get(account_id)
        if lock is None:
            lock = self._locks[account_id] = asyncio.Lock()
        holders = self._holders[account_id] = self._holders.get(account_id, 0) + 1
        acquired = False
        try:
            if holders == 1:  # nobody else holds or awaits it: taken at once, without a timeout's handle
                await lock.acquire()
                acquired = True
            else:
                try:
                    # Not wait_for: on CPython 3.11 it can return the acquired lock to a request that
                    # was cancelled meanwhile, swallowing the cancellation (asyncio.timeout cannot).
                    async with asyncio.timeout(self._wait_seconds):
                        await lock.acquire()
                    acquired = True
                except TimeoutError:
                    pass
            yield
        finally:
            if acquired:
                lock.release()
            # The last one out removes the lock: the maps hold only accounts in flight.
            remaining = self._holders[account_id] - 1
            if remaining:
                self._holders[account_id] = remaining
            else:
                del self._holders[account_id], self._locks[account_id]

    def __len__(self) -> int:
        return len(self._locks)
