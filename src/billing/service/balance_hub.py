"""The live-balance hub of one process: which streams watch which account, and what they are owed.

A change to an account (announced by the change feed: adapters/db/change_listener.py, from any
replica) marks the account *stale*; one reader task re-reads each stale account's balance ONCE,
however many streams watch it, and offers the report to each of them. A stream keeps only the
newest report it has not sent (Watcher): a slow client skips versions, it never queues them, so
memory per stream is bounded whatever the rate of changes.

A balance also changes with nothing written: a bucket expires, the UTC day ends (the daily bonus
resets), a subscription period closes. Each report says when that happens next
(`changes_by_itself_at`); the hub keeps ONE timer per watched account and re-reads it then, as if
it had changed (the re-read's upkeep writes what is due, e.g. the new day's bonus). Timers of
many accounts falling on the same instant (midnight: a read and the new day's bonus written for
every watched account) are spread over TIME_CHANGE_SPREAD_SECONDS.

Bounds: at most `max_watchers` streams in the process and `max_watchers_per_account` per account
(a browser with a few tabs), else TooManyWatchers (429). The reader runs at most READ_CONCURRENCY
reads at once (they join the group commit's statements); a read that fails (an outage) marks its
account stale again after READ_RETRY_SECONDS.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from typing import Awaitable, Callable, Iterable

from billing.domain.errors import AccountNotFound, TooManyWatchers
from billing.service.balance import BalanceReport
from billing.service.ports import Unavailable, outage_log

log = logging.getLogger(__name__)

READ_CONCURRENCY = 64
READ_RETRY_SECONDS = 1.0
TIME_CHANGE_SPREAD_SECONDS = 10.0
# A balance read a little after its instant, so the reader's clock is surely past it.
TIME_CHANGE_MARGIN_SECONDS = 0.05

ReadBalance = Callable[[str], Awaitable[BalanceReport]]


@dataclass(frozen=True)
class WatchLimits:
    """BILLING_MAX_WATCHERS, BILLING_MAX_WATCHERS_PER_USER and BILLING_WATCH_HEARTBEAT_SECONDS: their
    defaults are the settings' (billing.settings), which the server passes in."""

    max_watchers: int
    max_watchers_per_account: int
    heartbeat_seconds: float

    def __post_init__(self) -> None:
        if self.max_watchers < 1 or self.max_watchers_per_account < 1:
            raise ValueError(f"watcher bounds must be at least 1: {self}")
        if not 0 < self.heartbeat_seconds <= 50:  # under Envoy's 60 s idle timeout (envoy.yaml)
            raise ValueError(f"the heartbeat interval must be in (0, 50] seconds: {self}")


class Watcher:
    """One open stream of one account: the newest report it has not sent yet, nothing older."""

    def __init__(self, account_id: str):
        self.account_id = account_id
        self.closed = False
        self._pending: BalanceReport | None = None
        self._woken = asyncio.Event()

    def offer(self, report: BalanceReport) -> None:
        assert report.account.account_id == self.account_id
        # An equal version read later is newer too: time changed the balance, not a write.
        if self._pending is None or report.account.version >= self._pending.account.version:
            self._pending = report
            self._woken.set()

    def close(self) -> None:
        self.closed = True
        self._woken.set()

    async def next_report(self, timeout_seconds: float) -> BalanceReport | None:
        """The newest report offered since the last call; None after timeout_seconds without one,
        or when the watcher is closed (look at `closed`)."""
        try:
            async with asyncio.timeout(timeout_seconds):
                await self._woken.wait()
        except TimeoutError:
            return None
        self._woken.clear()
        report, self._pending = self._pending, None
        return report


class BalanceHub:
    def __init__(self, read_balance: ReadBalance, limits: WatchLimits):
        self._read_balance = read_balance
        self.limits = limits
        self._by_account: dict[str, set[Watcher]] = {}
        self._count = 0
        self._stale: set[str] = set()
        self._stale_marked = asyncio.Event()
        self._reader: asyncio.Task | None = None
        self._closed = False
        self._time_changes: dict[str, tuple[float, asyncio.TimerHandle]] = {}
        self.reads = 0  # balance reads made for watchers (tests, the benchmark)

    @property
    def count(self) -> int:
        return self._count

    def open(self, account_id: str) -> Watcher:
        if self._closed:
            raise TooManyWatchers("the server is stopping; reconnect to another")
        watchers = self._by_account.get(account_id, ())
        if self._count >= self.limits.max_watchers:
            raise TooManyWatchers(f"this server holds its maximum of {self.limits.max_watchers} balance streams")
        if len(watchers) >= self.limits.max_watchers_per_account:
            raise TooManyWatchers(
                f"at most {self.limits.max_watchers_per_account} balance streams per user_id", field="user_id"
            )
        watcher = Watcher(account_id)
        self._by_account.setdefault(account_id, set()).add(watcher)
        self._count += 1
        return watcher

    def release(self, watcher: Watcher) -> None:
        watchers = self._by_account.get(watcher.account_id)
        if watchers is None or watcher not in watchers:
            return
        watchers.discard(watcher)
        self._count -= 1
        if not watchers:
            del self._by_account[watcher.account_id]
            self._cancel_time_change(watcher.account_id)
        assert self._count >= 0

    def note_read(self, report: BalanceReport) -> None:
        """A balance of a watched account was read (a stream's first read, or the hub's): its
        account is re-read when the balance next changes by itself, unless sooner already."""
        account_id = report.account.account_id
        if self._closed or account_id not in self._by_account:
            return
        loop = asyncio.get_running_loop()
        delay = (report.changes_by_itself_at - report.read_at).total_seconds() + TIME_CHANGE_MARGIN_SECONDS
        due = loop.time() + delay + random.uniform(0, TIME_CHANGE_SPREAD_SECONDS)
        scheduled = self._time_changes.get(account_id)
        if scheduled is not None and scheduled[0] <= due:
            return
        self._cancel_time_change(account_id)
        handle = loop.call_at(due, self._time_changed, account_id)
        self._time_changes[account_id] = (due, handle)

    def _time_changed(self, account_id: str) -> None:
        self._time_changes.pop(account_id, None)
        self._mark_stale([account_id])

    def _cancel_time_change(self, account_id: str) -> None:
        scheduled = self._time_changes.pop(account_id, None)
        if scheduled is not None:
            scheduled[1].cancel()

    def accounts_changed(self, account_ids: Iterable[str]) -> None:
        """Called by the change feed: these accounts changed (unwatched ones are ignored)."""
        watched = [account_id for account_id in account_ids if account_id in self._by_account]
        if watched:
            self._mark_stale(watched)

    def resync(self) -> None:
        """Every watched account may have changed unseen (the feed was down): read them all again."""
        self._mark_stale(list(self._by_account))

    def _mark_stale(self, account_ids: Iterable[str]) -> None:
        if self._closed:
            return
        self._stale.update(account_ids)
        self._stale_marked.set()
        if self._reader is None or self._reader.done():
            self._reader = asyncio.get_running_loop().create_task(self._read_stale(), name="balance-watchers")

    async def _read_stale(self) -> None:
        while not self._closed:
            await self._stale_marked.wait()
            self._stale_marked.clear()
            while self._stale:
                batch = [self._stale.pop() for _ in range(min(READ_CONCURRENCY, len(self._stale)))]
                await asyncio.gather(*(self._read_and_offer(account_id) for account_id in batch))

    async def _read_and_offer(self, account_id: str) -> None:
        if account_id not in self._by_account:
            return  # its last watcher left meanwhile
        self.reads += 1
        try:
            report = await self._read_balance(account_id)
        except AccountNotFound:
            return
        except (Unavailable, TimeoutError) as outage:
            log.warning("balance of %s not re-read for its watchers (%s); retrying", account_id, outage,
                        extra=outage_log(getattr(outage, "kind", None) or "database"))
            asyncio.get_running_loop().call_later(READ_RETRY_SECONDS, self._mark_stale, [account_id])
            return
        except Exception:
            log.exception("balance of %s not re-read for its watchers", account_id)
            return
        self._cancel_time_change(account_id)  # this read's own instant replaces the older one
        self.note_read(report)
        for watcher in self._by_account.get(account_id, ()):
            watcher.offer(report)

    async def close(self) -> None:
        """Ends every stream (each sends nothing more and finishes OK) and the reader."""
        self._closed = True
        for account_id in list(self._time_changes):
            self._cancel_time_change(account_id)
        for watchers in self._by_account.values():
            for watcher in watchers:
                watcher.close()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
