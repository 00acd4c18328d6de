"""The live-balance hub and the WatchBalance use case, without a database."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from billing.adapters.catalog_file import load_catalog
from billing.adapters.clock import FixedClock
from billing.adapters.db.change_notifier import EVERY_ACCOUNT, NOTIFY_PAYLOAD_BYTES_MAX, account_ids_of, payloads
from billing.domain.errors import InvalidArgument, TooManyWatchers
from billing.service.accounts import create_account
from billing.service.balance import get_balance
from billing.service.balance_watch import watch_balance
from billing.service.balance_hub import BalanceHub
from billing.service.grants import create_grant
from billing.settings import DEFAULT_CATALOG_PATH
from tests.support.defaults import watch_limits
from tests.support.fake_storage import FakeDatabase, fake_dependencies


READ_AT = datetime(2026, 3, 14, 9, 30, tzinfo=timezone.utc)


def report(account_id: str, version: int, changes_in: timedelta = timedelta(days=1)):
    return SimpleNamespace(
        account=SimpleNamespace(account_id=account_id, version=version),
        read_at=READ_AT, changes_by_itself_at=READ_AT + changes_in,
    )


class Versions:
    """A read_balance whose accounts are at the versions the test sets; counts its reads."""

    def __init__(self):
        self.version: dict[str, int] = {}
        self.reads: list[str] = []

    async def __call__(self, account_id: str):
        self.reads.append(account_id)
        await asyncio.sleep(0)
        return report(account_id, self.version[account_id])


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def test_one_change_is_read_once_for_all_watchers_of_the_account():
    versions = Versions()
    hub = BalanceHub(versions, watch_limits())
    watchers = [hub.open("alice") for _ in range(3)]
    versions.version["alice"] = 7
    hub.accounts_changed(["alice", "bob"])  # bob has no watcher: not read
    await settle()
    assert versions.reads == ["alice"]
    for watcher in watchers:
        assert (await watcher.next_report(1.0)).account.version == 7
    await hub.close()


async def test_a_slow_watcher_keeps_only_the_newest_version():
    versions = Versions()
    hub = BalanceHub(versions, watch_limits())
    watcher = hub.open("alice")
    for version in (1, 2, 3):
        versions.version["alice"] = version
        hub.accounts_changed(["alice"])
        await settle()
    assert (await watcher.next_report(1.0)).account.version == 3
    assert await watcher.next_report(0.01) is None  # nothing queued behind it
    await hub.close()


async def test_an_older_version_never_replaces_a_newer_one():
    watcher = BalanceHub(Versions(), watch_limits()).open("alice")
    watcher.offer(report("alice", 5))
    watcher.offer(report("alice", 4))
    assert (await watcher.next_report(1.0)).account.version == 5


async def test_resync_reads_every_watched_account_again():
    versions = Versions()
    hub = BalanceHub(versions, watch_limits())
    hub.open("alice"), hub.open("bob")
    versions.version.update(alice=1, bob=1)
    hub.resync()
    await settle()
    assert sorted(versions.reads) == ["alice", "bob"]
    await hub.close()


async def test_the_process_and_each_user_have_a_bound():
    hub = BalanceHub(Versions(), watch_limits(max_watchers=3, max_watchers_per_account=2))
    first = hub.open("alice")
    hub.open("alice")
    with pytest.raises(TooManyWatchers) as per_user:
        hub.open("alice")
    assert per_user.value.field == "user_id"
    hub.open("bob")
    with pytest.raises(TooManyWatchers):
        hub.open("carol")
    hub.release(first)
    hub.release(first)  # twice: counted once
    assert hub.count == 2
    hub.open("carol")


async def test_close_ends_every_watcher_and_refuses_new_ones():
    hub = BalanceHub(Versions(), watch_limits())
    watcher = hub.open("alice")
    await hub.close()
    assert await watcher.next_report(1.0) is None and watcher.closed
    with pytest.raises(TooManyWatchers):
        hub.open("alice")


@pytest.mark.parametrize("limits", [dict(max_watchers=0), dict(max_watchers_per_account=0), dict(heartbeat_seconds=0),
                                    dict(heartbeat_seconds=61)])
def test_limits_out_of_range_are_refused(limits):
    with pytest.raises(ValueError):
        watch_limits(**limits)


# ---------------------------------------------------------------- the use case, on the fake storage


@pytest.fixture
async def deps():
    clock = FixedClock(datetime(2026, 3, 14, 9, 30, tzinfo=timezone.utc))
    deps = fake_dependencies(load_catalog(DEFAULT_CATALOG_PATH)[0], clock, FakeDatabase())
    await create_account(deps, "alice", "")
    return deps


async def test_a_stream_starts_with_the_balance_then_sends_changes_and_heartbeats(deps):
    hub = BalanceHub(lambda account_id: get_balance(deps, account_id), watch_limits(heartbeat_seconds=0.05))
    stream = watch_balance(deps, hub, "alice", 0)
    first = await anext(stream)
    assert first.report is not None and first.version > 0
    assert (await anext(stream)).report is None  # a heartbeat: nothing changed
    await create_grant(deps, "alice", "gift", 60, "test", "grant-1")
    hub.accounts_changed(["alice"])
    update = await anext(stream)
    while update.report is None:
        update = await anext(stream)
    assert update.version > first.version
    assert update.report.view.totals.total_seconds == first.report.view.totals.total_seconds + 60
    await stream.aclose()
    assert hub.count == 0
    await hub.close()


async def test_a_client_that_has_the_current_version_gets_a_heartbeat_first(deps):
    hub = BalanceHub(lambda account_id: get_balance(deps, account_id), watch_limits())
    current = await get_balance(deps, "alice")
    stream = watch_balance(deps, hub, "alice", current.account.version)
    assert (await anext(stream)).report is None
    await stream.aclose()
    behind = watch_balance(deps, hub, "alice", current.account.version - 1)
    assert (await anext(behind)).version == current.account.version
    await behind.aclose()


async def test_a_negative_since_version_names_the_field(deps):
    with pytest.raises(InvalidArgument) as refused:
        await anext(watch_balance(deps, BalanceHub(Versions(), watch_limits()), "alice", -1))
    assert refused.value.field == "since_version"


async def test_the_hub_reads_an_account_again_when_its_balance_changes_by_itself(monkeypatch):
    """One timer per watched account, at the instant its last read said; none once unwatched."""
    monkeypatch.setattr("billing.service.balance_hub.TIME_CHANGE_SPREAD_SECONDS", 0.0)
    reads: list[str] = []

    async def read(account_id: str):
        reads.append(account_id)
        return report(account_id, 3)

    hub = BalanceHub(read, watch_limits())
    watchers = [hub.open("alice"), hub.open("alice")]
    hub.note_read(report("alice", 3, changes_in=timedelta(seconds=0.1)))
    hub.note_read(report("alice", 3, changes_in=timedelta(seconds=30)))  # a later instant: kept the sooner
    assert await watchers[0].next_report(0.01) is None
    assert (await watchers[0].next_report(2.0)).account.version == 3  # same version, read again
    assert (await watchers[1].next_report(0.5)).account.version == 3
    assert reads == ["alice"]  # once for both watchers; its next instant is a day away
    gone = hub.open("bob")
    hub.note_read(report("bob", 1, changes_in=timedelta(seconds=0.05)))
    hub.release(gone)
    later = hub.open("carol")
    hub.note_read(report("carol", 1, changes_in=timedelta(seconds=0.1)))  # due after bob's would have been
    assert (await later.next_report(2.0)).account.account_id == "carol"
    assert reads == ["alice", "carol"]  # bob's timer went with its last watcher
    await hub.close()


async def test_a_page_left_open_over_midnight_gets_the_new_days_bonus(deps, monkeypatch):
    """The stream of an idle account sends the balance again when the day ends: yesterday's daily
    bucket expires and today's is granted, with no request from anyone."""
    monkeypatch.setattr("billing.service.balance_hub.TIME_CHANGE_SPREAD_SECONDS", 0.0)
    clock = deps.clock
    clock.set(datetime(2026, 3, 14, 23, 59, 59, 800_000, tzinfo=timezone.utc))
    hub = BalanceHub(lambda account_id: get_balance(deps, account_id), watch_limits(heartbeat_seconds=0.5))
    stream = watch_balance(deps, hub, "alice", 0)
    first = await anext(stream)
    assert [b.expires_at for b in first.report.view.daily] == [datetime(2026, 3, 15, tzinfo=timezone.utc)]
    assert first.report.changes_by_itself_at == datetime(2026, 3, 15, tzinfo=timezone.utc)
    clock.set(datetime(2026, 3, 15, 0, 0, 0, 100_000, tzinfo=timezone.utc))  # the hub's timer fires after this
    async with asyncio.timeout(5):  # ~0.25 s to the timer
        update = await anext(stream)
        while update.report is None:
            update = await anext(stream)
    assert [b.expires_at for b in update.report.view.daily] == [datetime(2026, 3, 16, tzinfo=timezone.utc)]
    await stream.aclose()
    await hub.close()


async def test_time_alone_changing_the_balance_is_sent_with_the_same_version(deps):
    """Same version, read later, showing something else: sent. Read earlier than what was sent: not."""
    hub = BalanceHub(lambda account_id: get_balance(deps, account_id), watch_limits(heartbeat_seconds=0.05))
    stream = watch_balance(deps, hub, "alice", 0)
    first = await anext(stream)
    (watcher,) = hub._by_account["alice"]
    later = first.report.read_at + timedelta(seconds=1)
    watcher.offer(dataclasses.replace(first.report, read_at=later))  # read again, nothing shown changed
    assert (await anext(stream)).report is None  # a heartbeat
    emptied = dataclasses.replace(first.report.view, daily=())
    watcher.offer(dataclasses.replace(first.report, view=emptied, read_at=first.report.read_at - timedelta(seconds=1)))
    assert (await anext(stream)).report is None  # read before what was sent: never sent after it
    watcher.offer(dataclasses.replace(first.report, view=emptied, read_at=later))
    update = await anext(stream)
    assert update.report is not None and update.version == first.version and update.report.view.daily == ()
    await stream.aclose()
    await hub.close()


def test_a_balance_changes_by_itself_at_its_first_expiry_period_end_or_midnight():
    from billing.domain.balance import BalanceTotals, BalanceView, changes_by_itself_at

    now = datetime(2026, 3, 14, 9, 30, tzinfo=timezone.utc)
    midnight = datetime(2026, 3, 15, tzinfo=timezone.utc)

    def view(next_expiry_at):
        return BalanceView(BalanceTotals(0, 0, 0, next_expiry_at), (), ())

    assert changes_by_itself_at(view(None), None, now) == midnight
    assert changes_by_itself_at(view(now + timedelta(hours=1)), None, now) == now + timedelta(hours=1)
    assert changes_by_itself_at(view(None), now + timedelta(minutes=5), now) == now + timedelta(minutes=5)
    assert changes_by_itself_at(view(midnight + timedelta(days=3)), now - timedelta(days=1), now) == midnight


# ---------------------------------------------------------------- NOTIFY payloads


def test_payloads_stay_under_postgresqls_limit_and_name_every_account():
    account_ids = [f"user-{n:06d}-" + "x" * 100 for n in range(500)]
    chunks = payloads(account_ids)
    assert len(chunks) > 1
    assert all(len(chunk.encode()) <= NOTIFY_PAYLOAD_BYTES_MAX for chunk in chunks)
    assert [a for chunk in chunks for a in account_ids_of(chunk)] == account_ids
    assert account_ids_of(EVERY_ACCOUNT) is None
    assert payloads([]) == []
    assert payloads(["alice", "no spaces allowed"]) == [EVERY_ACCOUNT]  # never a stuck sender


async def test_a_stream_ends_when_the_server_stops(deps):
    hub = BalanceHub(lambda account_id: get_balance(deps, account_id), watch_limits())
    stream = watch_balance(deps, hub, "alice", 0)
    await anext(stream)
    waiting = asyncio.ensure_future(anext(stream))
    await settle()
    await hub.close()
    with pytest.raises(StopAsyncIteration):
        await waiting
    assert hub.count == 0


async def test_reads_that_change_nothing_do_not_hold_off_the_heartbeat(deps):
    hub = BalanceHub(lambda account_id: get_balance(deps, account_id), watch_limits(heartbeat_seconds=0.3))
    stream = watch_balance(deps, hub, "alice", 0)
    first = await anext(stream)
    (watcher,) = hub._by_account["alice"]

    async def wake_with_nothing_new():
        for _ in range(12):
            await asyncio.sleep(0.05)
            watcher.offer(first.report)

    waking = asyncio.ensure_future(wake_with_nothing_new())
    started = asyncio.get_running_loop().time()
    assert (await anext(stream)).report is None
    assert asyncio.get_running_loop().time() - started < 0.5  # due at 0.3 s, not pushed back by each wake
    await waking
    await stream.aclose()
    await hub.close()
