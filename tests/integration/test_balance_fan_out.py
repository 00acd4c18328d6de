"""Live balance across replicas: two processes' worth of notifier, listener and hub on one
database. A change committed through one replica's storage reaches the other's watchers."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import psycopg
import pytest

from billing.adapters.catalog_file import load_catalog
from billing.adapters.db.change_listener import ChangeListener
from billing.adapters.db.change_notifier import ChangeNotifier
from billing.adapters.db.unit_of_work import PostgresStorage, connection_options
from billing.adapters.db.wallet_batcher import WalletBatcher
from billing.service.accounts import create_account
from billing.service.balance import get_balance
from billing.service.balance_hub import BalanceHub, Watcher
from billing.service.consume import consume
from billing.service.dependencies import Dependencies
from billing.service.handlers import message_bus
from billing.service.grants import create_grant
from billing.settings import DEFAULT_CATALOG_PATH, libpq_url
from tests.support.defaults import watch_limits
from testkit.waiting import wait_until_async

FAN_OUT_SECONDS_MAX = 1.0
RECONNECT_SECONDS_MAX = 5.0


@dataclass
class Replica:
    deps: Dependencies
    batcher: WalletBatcher
    notifier: ChangeNotifier
    listener: ChangeListener
    watchers: BalanceHub
    heard: set[str]  # every account id the listener has passed on

    async def has_heard(self, account_ids: list[str]) -> None:
        await wait_until_async(lambda: self.heard.issuperset(account_ids), f"the listener hears of {account_ids}")

    async def stop(self) -> None:
        await self.watchers.close()
        await self.listener.close()
        await self.batcher.close()
        await self.notifier.close()


class Announced(list):
    def committed(self, account_ids) -> None:
        self.extend(account_ids)


async def start_replica(pool, clock, database_url: str) -> Replica:
    """What server.serve() composes, minus gRPC (sharing the test's pool is fine: each replica
    has its own batcher, notifier and listening connection)."""
    conninfo = libpq_url(database_url)
    notifier = ChangeNotifier(conninfo, connection_options())
    batcher = WalletBatcher(pool)
    catalog, _ = load_catalog(DEFAULT_CATALOG_PATH)
    deps = Dependencies(storage=PostgresStorage(pool, batcher), catalog=catalog, clock=clock, bus=message_bus(),
                        wallet_changes=notifier)
    watchers = BalanceHub(lambda account_id: get_balance(deps, account_id), watch_limits())
    heard: set[str] = set()

    def accounts_changed(account_ids: list[str]) -> None:
        heard.update(account_ids)
        watchers.accounts_changed(account_ids)

    listener = ChangeListener(conninfo, accounts_changed, watchers.resync, connection_options())
    notifier.start()
    listener.start()
    await asyncio.wait_for(listener.listening.wait(), RECONNECT_SECONDS_MAX)
    return Replica(deps, batcher, notifier, listener, watchers, heard)


@pytest.fixture
async def replicas(pool, clock, database_url):
    started = [await start_replica(pool, clock, database_url) for _ in range(2)]
    yield started
    for replica in started:
        await replica.stop()


async def newer_than(watcher: Watcher, version: int, timeout_seconds: float):
    """The first report the watcher gets with a version above `version`."""
    deadline = asyncio.get_running_loop().time() + timeout_seconds
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        assert remaining > 0, f"no version above {version} within {timeout_seconds}s"
        report = await watcher.next_report(remaining)
        if report is not None and report.account.version > version:
            return report


async def test_a_grant_committed_on_one_replica_reaches_every_watcher_on_the_other(replicas, user_id):
    writer, reader = replicas
    await create_account(writer.deps, user_id, "free")
    before = await get_balance(reader.deps, user_id)
    await reader.has_heard([user_id])  # the creation's notification is out of the way
    watchers = [reader.watchers.open(user_id) for _ in range(3)]
    reads_before = reader.watchers.reads
    started = asyncio.get_running_loop().time()
    await create_grant(writer.deps, user_id, "gift", 120, "fan-out", uuid.uuid4().hex)
    reports = [await newer_than(watcher, before.account.version, FAN_OUT_SECONDS_MAX) for watcher in watchers]
    assert asyncio.get_running_loop().time() - started < FAN_OUT_SECONDS_MAX
    assert {r.view.totals.total_seconds for r in reports} == {before.view.totals.total_seconds + 120}
    assert reader.watchers.reads - reads_before == 1  # once for the account, not once per watcher


async def test_concurrent_consumes_share_their_notifications(replicas, user_id):
    writer, reader = replicas
    account_ids = [f"{user_id}-{n}" for n in range(20)]
    for account_id in account_ids:
        await create_account(writer.deps, account_id, "free")
    versions = {a: (await get_balance(reader.deps, a)).account.version for a in account_ids}
    await reader.has_heard(account_ids)  # the creations' notifications are out of the way
    watchers = {a: reader.watchers.open(a) for a in account_ids}
    sends_before = writer.notifier.sends
    await asyncio.gather(*(consume(writer.deps, a, "build", 30, uuid.uuid4().hex, None) for a in account_ids))
    for account_id, watcher in watchers.items():
        await newer_than(watcher, versions[account_id], FAN_OUT_SECONDS_MAX)
    assert writer.notifier.sends - sends_before < len(account_ids)


async def test_the_listener_reconnects_after_its_connection_is_killed_and_misses_nothing(
    replicas, user_id, database_url
):
    writer, reader = replicas
    await create_account(writer.deps, user_id, "free")
    before = await get_balance(reader.deps, user_id)
    watcher = reader.watchers.open(user_id)
    killed_pid = reader.listener.backend_pid
    async with await psycopg.AsyncConnection.connect(libpq_url(database_url), autocommit=True) as admin:
        await admin.execute("SELECT pg_terminate_backend(%s)", (killed_pid,))
    # Committed while the listener is deaf (or just back): found by its re-read after reconnecting.
    await create_grant(writer.deps, user_id, "gift", 60, "during the gap", uuid.uuid4().hex)
    report = await newer_than(watcher, before.account.version, RECONNECT_SECONDS_MAX)
    assert report.view.totals.total_seconds == before.view.totals.total_seconds + 60
    assert reader.listener.connections == 2 and reader.listener.backend_pid != killed_pid


async def test_every_committed_wallet_write_is_announced_and_a_plain_read_is_not(pool, clock, user_id):
    """The unit of work, not each use case, hands over WalletChanged for the bus to tell the notifier: a
    transaction (opening the account), a group-committed write (consume) and a lone unlocked one."""
    announced = Announced()
    catalog, _ = load_catalog(DEFAULT_CATALOG_PATH)
    batcher = WalletBatcher(pool)
    deps = Dependencies(storage=PostgresStorage(pool, batcher), catalog=catalog, clock=clock, bus=message_bus(),
                        wallet_changes=announced)
    unbatched = Dependencies(storage=PostgresStorage(pool), catalog=catalog, clock=clock, bus=message_bus(),
                             wallet_changes=announced)
    try:
        await create_account(deps, user_id, "free")
        assert announced == [user_id]
        await get_balance(deps, user_id)
        assert announced == [user_id]
        await consume(deps, user_id, "build", 30, uuid.uuid4().hex, None)
        await consume(unbatched, user_id, "build", 30, uuid.uuid4().hex, None)
        assert announced == [user_id] * 3
    finally:
        await batcher.close()
