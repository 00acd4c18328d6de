"""Reads on a hot standby never show less than the caller's writes (adapters/db/read_routing.py).

The fixture starts, in a temporary directory, a primary and a hot standby from the embedded
binaries (`pg_basebackup -R -X stream -C -S ...`, devstack/embedded_postgres.py). "Two replicas" are
two service stacks built in this process by bootstrap.build_service as a server builds its own (each
its own pools, group commit, replay fence and breaker), on the same primary and standby: a write
through one and the read through the other is what a client sees behind a load balancer.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from contextlib import AsyncExitStack
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest

from billing.adapters.clock import FixedClock
from billing.adapters.db.availability import DatabaseAvailability
from billing.adapters.db.migrate import upgrade_to_head
from billing.adapters.db.read_routing import RoutingStorage
from billing.bootstrap import build_service
from billing.service.accounts import create_account
from billing.service.balance import get_balance
from billing.service.consume import consume
from billing.service.history import list_events
from billing.service.usage import get_usage
from billing.settings import Settings, libpq_url
from devstack import embedded_postgres

PAIRS = 10_000
ACCOUNTS = 50  # concurrent write-then-read loops, PAIRS / ACCOUNTS pairs each


def _database(server_url: str, name: str) -> str:
    return server_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="module")
def servers():
    """(primary data dir, primary URL, standby URL) of a temporary primary and its hot standby."""
    root = Path(tempfile.mkdtemp(prefix="billing-replica-"))
    os.chmod(root, 0o755)  # the server's own account (when root runs the tests) must reach its directory
    primary_dir, standby_dir = root / "primary", root / "standby"
    try:
        server = embedded_postgres.start(primary_dir, port=embedded_postgres._free_port(), shared_buffers="128MB")
        with psycopg.connect(libpq_url(server), autocommit=True) as admin:
            admin.execute('CREATE DATABASE "billing_replica"')
        primary_url = _database(server, "billing_replica")
        upgrade_to_head(primary_url)
        standby = embedded_postgres.start_standby(primary_dir, standby_dir, shared_buffers="128MB")
        yield primary_dir, primary_url, _database(standby, "billing_replica")
    finally:
        embedded_postgres.stop(standby_dir)
        embedded_postgres.stop(primary_dir)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def replica_settings(monkeypatch):
    # Generous: how long a read waits decides only how many reads the standby serves, never what they
    # see; a busy test host must not leave the standby unused, which the tests check it is not.
    def settings(primary_url: str, standby_url: str, wait_ms: int = 200) -> Settings:
        monkeypatch.setenv("DATABASE_READ_URL", standby_url)
        monkeypatch.setenv("BILLING_READ_REPLICA_WAIT_MS", str(wait_ms))
        monkeypatch.setenv("BILLING_MASTER_KEY", "00" * 32)
        monkeypatch.setenv("BILLING_DB_POOL_SIZE", "6")
        monkeypatch.delenv("STRIPE_SECRET_KEY", raising=False)
        return Settings.from_environment(database_url=primary_url)

    return settings


CLOCK = FixedClock(datetime(2026, 3, 14, 9, 30, tzinfo=timezone.utc))


async def _replica(settings: Settings, stack: AsyncExitStack):
    service = await build_service(settings, stack, serving=True, clock=CLOCK)
    assert isinstance(service.deps.storage, RoutingStorage)
    probe = service.availability
    assert isinstance(probe, DatabaseAvailability)
    probe.start()  # as the server does: the units of work serve once it has seen the database
    await asyncio.wait_for(probe.decided.wait(), 10)
    await service.deps.storage.fence.warm()  # as a server's fence is long warm when its first reads come
    return service.deps


async def _write_then_read(writer, reader, pairs: int, errors: list) -> None:
    """On one new account: consume through `writer`, then at once read through `reader`; every read
    must show that consume (the balance it left, and its ledger entry on top of the history)."""
    account_id = f"rr-{uuid.uuid4().hex[:12]}"
    await create_account(writer, account_id, "free")
    for i in range(pairs):
        written = await consume(writer, account_id, "build", 1, f"k{i}")
        report = await get_balance(reader, account_id)
        if report.view.totals != written.totals:
            errors.append((account_id, i, written.totals, report.view.totals))
        writer, reader = reader, writer  # both ways across the two replicas


async def test_every_read_sees_the_write_before_it_across_two_replicas(servers, replica_settings):
    _, primary_url, standby_url = servers
    async with AsyncExitStack() as stack:
        one = await _replica(replica_settings(primary_url, standby_url), stack)
        two = await _replica(replica_settings(primary_url, standby_url), stack)
        stale: list = []
        await asyncio.gather(*(_write_then_read(one, two, PAIRS // ACCOUNTS, stale) for _ in range(ACCOUNTS)))
        assert stale == [], f"{len(stale)} stale reads, the first: {stale[:3]}"
        routed = [deps.storage for deps in (one, two)]
        # The standby really served reads (the primary the others: not caught up in time, or a standby
        # read slower than its timeout on a busy host, which is no error).
        assert sum(storage.standby_reads for storage in routed) > 0, [storage.counts() for storage in routed]


async def test_history_and_usage_on_the_standby_show_the_last_write(servers, replica_settings):
    _, primary_url, standby_url = servers
    async with AsyncExitStack() as stack:
        one = await _replica(replica_settings(primary_url, standby_url), stack)
        two = await _replica(replica_settings(primary_url, standby_url), stack)
        account_id = f"rr-{uuid.uuid4().hex[:12]}"
        await create_account(one, account_id, "free")
        for i in range(30):
            await consume(one, account_id, "build", 7, f"h{i}")
            page = await list_events(two, account_id, 200, "")
            assert -sum(event.seconds for event in page.events if event.type == "consumption") == 7 * (i + 1)
            usage = await get_usage(two, account_id, "day")
            assert usage.total_seconds == 7 * (i + 1)
        assert two.storage.standby_reads > 0


async def test_a_standby_that_stopped_replaying_is_never_read(servers, replica_settings):
    """Replay paused: the standby is as stale as it gets; every read must still show the write (the
    primary's), and the breaker stops the reads from waiting on it."""
    _, primary_url, standby_url = servers
    async with AsyncExitStack() as stack:
        deps = await _replica(replica_settings(primary_url, standby_url, wait_ms=5), stack)
        account_id = f"rr-{uuid.uuid4().hex[:12]}"
        await create_account(deps, account_id, "free")
        with psycopg.connect(libpq_url(standby_url), autocommit=True) as standby:
            standby.execute("SELECT pg_wal_replay_pause()")
            try:
                for i in range(20):
                    written = await consume(deps, account_id, "build", 1, f"p{i}")
                    assert (await get_balance(deps, account_id)).view.totals == written.totals
            finally:
                standby.execute("SELECT pg_wal_replay_resume()")
        assert deps.storage.breaker.openings >= 1


async def test_killing_the_standby_mid_load_fails_no_read(servers, replica_settings, tmp_path_factory):
    """A standby of its own (the module's stays up), killed -9 while two replicas write and read."""
    primary_dir, primary_url, _ = servers
    root = Path(tempfile.mkdtemp(prefix="billing-replica-kill-"))
    os.chmod(root, 0o755)
    standby_dir = root / "standby"
    try:
        server = embedded_postgres.start_standby(primary_dir, standby_dir, shared_buffers="128MB", slot="standby_kill")
        standby_url = _database(server, "billing_replica")
        async with AsyncExitStack() as stack:
            one = await _replica(replica_settings(primary_url, standby_url), stack)
            two = await _replica(replica_settings(primary_url, standby_url), stack)
            stale: list = []
            loops = asyncio.gather(*(_write_then_read(one, two, 60, stale) for _ in range(20)))
            while sum(deps.storage.standby_reads for deps in (one, two)) < 100:
                await asyncio.sleep(0.01)
            pid = embedded_postgres.postmaster_pid(standby_dir)
            assert pid is not None
            os.kill(pid, 9)
            await loops  # any failed read or write would raise here
            assert stale == []
            assert any(deps.storage.breaker.openings for deps in (one, two))
    finally:
        embedded_postgres.drop_standby(primary_dir, standby_dir, slot="standby_kill")
        shutil.rmtree(root, ignore_errors=True)


async def test_a_read_url_of_another_cluster_is_never_read(servers, replica_settings):
    """WAL positions of two clusters do not compare: a DATABASE_READ_URL that is not a copy of the
    primary (here another, unrelated server) is refused by its system identifier, whatever its position."""
    _, primary_url, _ = servers
    root = Path(tempfile.mkdtemp(prefix="billing-replica-other-"))
    os.chmod(root, 0o755)
    try:
        other = embedded_postgres.start(root / "other", port=embedded_postgres._free_port(), shared_buffers="64MB")
        async with AsyncExitStack() as stack:
            deps = await _replica(replica_settings(primary_url, other), stack)
            account_id = f"rr-{uuid.uuid4().hex[:12]}"
            await create_account(deps, account_id, "free")
            for i in range(5):
                written = await consume(deps, account_id, "build", 1, f"o{i}")
                assert (await get_balance(deps, account_id)).view.totals == written.totals
            assert deps.storage.standby_reads == 0
            assert "system identifiers differ" in deps.storage.breaker.reason, deps.storage.breaker.reason
    finally:
        embedded_postgres.stop(root / "other")
        shutil.rmtree(root, ignore_errors=True)
