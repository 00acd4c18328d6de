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

from dataclasses import dataclass
from typing import AsyncIterator

from billing.domain.limits import require_account_id, require_since_version
from billing.service.balance import BalanceReport, get_balance
from billing.service.balance_watchers import BalanceWatchers
from billing.service.dependencies import Dependencies


@dataclass(frozen=True)
class BalanceUpdate:
    report: BalanceReport | None  # None: a heartbeat

    @property
    def version(self) -> int:
        return self.report.account.version if self.report is not None else 0


HEARTBEAT = BalanceUpdate(None)


async def watch_balance(
    deps: Dependencies, watchers: BalanceWatchers, account_id: str, since_version: int
) -> AsyncIterator[BalanceUpdate]:
    require_account_id(account_id)
    require_since_version(since_version)
    watcher = watchers.open(account_id)
    try:
        current = await get_balance(deps, account_id)  # a missing account is NOT_FOUND, before anything is sent
        watchers.note_read(current)
        sent_version, sent_shown = since_version, None
        if current.account.version > sent_version:
            sent_version, sent_shown = current.account.version, _shown(current)
            yield BalanceUpdate(current)
        else:
            yield HEARTBEAT  # up to date: the client learns at once that the stream is open
        while True:
            report = await watcher.next_report(watchers.limits.heartbeat_seconds)
            if watcher.closed:
                return
            if report is None:
                yield HEARTBEAT
            elif report.account.version > sent_version or (
                report.account.version == sent_version and _shown(report) != sent_shown
            ):
                sent_version, sent_shown = report.account.version, _shown(report)
                yield BalanceUpdate(report)
    finally:
        watchers.release(watcher)


def _shown(report: BalanceReport) -> tuple:
    """What a client shows of a balance, less the version: time alone can change it."""
    return report.view, report.bonus, report.account.subscription
