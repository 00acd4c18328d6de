"""WatchBalance: the balance of one account as it changes (the contract's real-time updates).

The stream opens a watcher before it reads, so a change committed between the read and the
first wait is not missed (the hub re-reads it and the version decides whether it is news).
What is sent: the current balance first, unless the client already has its version
(`since_version`, a reconnect); then every newer version the hub offers, newest only; and a
heartbeat after each `heartbeat_seconds` without one, so proxies and the client know it lives.
A balance that changed with time alone (a bucket expired, a new day's bonus; the hub re-reads it
then) keeps its version and is sent because what it shows differs from what was sent.
A resumed stream (`since_version` current) starts with a heartbeat; a time change missed while
disconnected arrives with the next change or the next time change.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import AsyncIterator

from billing.domain.limits import require_account_id, require_since_version
from billing.service.balance import BalanceReport, get_balance
from billing.service.balance_hub import BalanceHub
from billing.service.dependencies import Dependencies


@dataclass(frozen=True)
class BalanceUpdate:
    report: BalanceReport | None  # None: a heartbeat

    @property
    def version(self) -> int:
        return self.report.account.version if self.report is not None else 0


HEARTBEAT = BalanceUpdate(None)


async def watch_balance(
    deps: Dependencies, watchers: BalanceHub, account_id: str, since_version: int
) -> AsyncIterator[BalanceUpdate]:
    require_account_id(account_id)
    require_since_version(since_version)
    watcher = watchers.open(account_id)
    try:
        current = await get_balance(deps, account_id)  # a missing account is NOT_FOUND, before anything is sent
        watchers.note_read(current)
        sent = _Sent(since_version)
        if current.account.version > since_version:
            sent.record(current)
            yield BalanceUpdate(current)
        else:
            yield HEARTBEAT  # up to date: the client learns at once that the stream is open
        clock = asyncio.get_running_loop().time
        heartbeat_due = clock() + watchers.limits.heartbeat_seconds
        while True:
            # A re-read that changed nothing wakes the stream too: the heartbeat keeps its own time.
            report = await watcher.next_report(max(0.0, heartbeat_due - clock()))
            if watcher.closed:
                return
            if report is None:
                yield HEARTBEAT
            elif sent.is_news(report):
                sent.record(report)
                yield BalanceUpdate(report)
            else:
                continue
            heartbeat_due = clock() + watchers.limits.heartbeat_seconds
    finally:
        watchers.release(watcher)


class _Sent:
    """What the stream last sent: a newer version is news; so is the same version read later
    showing something else (time alone changed it), never one read earlier."""

    def __init__(self, version: int):
        self.version = version
        self.shown: tuple | None = None
        self.read_at: datetime | None = None

    def is_news(self, report: BalanceReport) -> bool:
        if report.account.version != self.version:
            return report.account.version > self.version
        later = self.read_at is None or report.read_at > self.read_at
        return later and _shown(report) != self.shown

    def record(self, report: BalanceReport) -> None:
        self.version, self.shown, self.read_at = report.account.version, _shown(report), report.read_at


def _shown(report: BalanceReport) -> tuple:
    """What a client shows of a balance, less the version: time alone can change it."""
    return report.view, report.bonus, report.account.subscription
