"""`billing migrate-legacy` on PostgreSQL: the mapping (the contract's migrateLegacyBalance),
idempotent re-runs, resuming, conflicts, bad rows, dry runs, and the ledger invariants after."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from billing.adapters.catalog_file import load_catalog
from billing.adapters.db.invariants import find_violations
from billing.adapters.db.legacy_import import MigrationRunning, open_legacy_import
from billing.domain.buckets import Source
from billing.service.accounts import create_account
from billing.service.balance import get_balance
from billing.service.consume import consume
from billing.service.legacy_migration import migrate_legacy_file
from billing.service.legacy_rows import ledger_metadata
from billing.settings import DEFAULT_CATALOG_PATH, libpq_url

CATALOG, _ = load_catalog(DEFAULT_CATALOG_PATH)
NOW = datetime(2026, 3, 14, 9, 30, tzinfo=timezone.utc)
TABLES = ("accounts", "buckets", "ledger_events", "legacy_migrations")


class Recorder:
    def __init__(self):
        self.bad: list[tuple[int, str]] = []
        self.conflicts: list[tuple[int, str, str]] = []

    def bad_row(self, row):
        self.bad.append((row.line, row.reason))

    def conflict(self, line, user_id, why):
        self.conflicts.append((line, user_id, why))

    def progress(self, phase, done, total, elapsed_s):
        pass


def migrate(database_url, path, *, now=NOW, batch_size=2, writers=2, dry_run=False, check_foreign_keys=False,
            wrap=None):
    recorder = Recorder()
    with open_legacy_import(database_url, CATALOG, now, path.name, writers=writers, dry_run=dry_run,
                            check_foreign_keys=check_foreign_keys) as targets:
        summary = migrate_legacy_file(path, CATALOG, [wrap(t) for t in targets] if wrap else targets, recorder,
                                      batch_size=batch_size, dry_run=dry_run)
    return summary, recorder


def legacy(user_id, paid=0, welcome=0, used=0, plan_key=None):
    record = {"user_id": user_id, "paid_seconds_remaining": paid, "welcome_bonus_seconds": welcome,
              "daily_gift_used_today": used}
    return record | ({"plan_key": plan_key} if plan_key else {})


def write_jsonl(path, *records):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def contract_helper(legacy_row: dict) -> dict:
    """The guide's migrateLegacyBalance, as written (free plan: 900 s of daily bonus)."""
    paid = legacy_row["paid_seconds_remaining"] + legacy_row["welcome_bonus_seconds"]
    return {
        "total_seconds": paid, "paid_seconds": paid,
        "bonus_seconds": max(0, 900 - legacy_row["daily_gift_used_today"]),
        "used_this_month_minutes": legacy_row["daily_gift_used_today"] // 60,
    }


@pytest.fixture
def ids():
    prefix = f"lg{uuid.uuid4().hex[:8]}"
    return lambda name: f"{prefix}-{name}"


def row_counts(database_url, account_ids) -> dict[str, int]:
    with psycopg.connect(libpq_url(database_url)) as connection:
        return {
            table: connection.execute(f"SELECT count(*) FROM {table} WHERE account_id = ANY(%s)",
                                      (list(account_ids),)).fetchone()[0]
            for table in TABLES
        }


def snapshot(database_url, account_ids) -> list[tuple]:
    """Every row the accounts have, for before/after comparisons."""
    with psycopg.connect(libpq_url(database_url)) as connection:
        return [
            tuple(row) for table in TABLES
            for row in connection.execute(f"SELECT * FROM {table} WHERE account_id = ANY(%s) ORDER BY 1, 2",
                                          (list(account_ids),)).fetchall()
        ]


async def test_balances_are_what_the_contract_helper_maps_and_today_bonus_is_not_granted_twice(
    deps, clock, advance, database_url, tmp_path, ids, assert_ledger_balanced, ledger_rows,
):
    rows = {
        ids("full"): legacy(ids("full"), paid=3600, welcome=1800, used=300),
        ids("welcome"): legacy(ids("welcome"), welcome=1800),
        ids("spent-gift"): legacy(ids("spent-gift"), paid=120, used=900),
        ids("over-gift"): legacy(ids("over-gift"), paid=5, used=2000),
        ids("empty"): legacy(ids("empty")),
    }
    path = write_jsonl(tmp_path / "legacy.jsonl", *rows.values())
    summary, recorder = migrate(database_url, path, now=clock.now())
    assert (summary.migrated, summary.bad_rows, summary.conflicts, summary.exit_code) == (5, 0, 0, 0)

    for account_id, row in rows.items():
        events_before = await ledger_rows(account_id)
        report = await get_balance(deps, account_id)
        expected = contract_helper(row)
        totals = report.view.totals
        assert (totals.paid_seconds, totals.bonus_seconds) == (expected["paid_seconds"], expected["bonus_seconds"])
        assert totals.total_seconds == expected["total_seconds"] + expected["bonus_seconds"]
        assert report.bonus.used_this_month_minutes == min(expected["used_this_month_minutes"], 15)
        assert (report.account.plan_key, report.account.subscription_status) == ("free", "inactive")
        assert await ledger_rows(account_id) == events_before  # the read granted nothing more today
        await assert_ledger_balanced(account_id)

    # Tomorrow is an ordinary day: the daily bonus comes on the first touch.
    advance(days=1)
    assert (await get_balance(deps, ids("full"))).view.totals.bonus_seconds == 900
    # The paid time is spent like any never-expiring bucket (after the daily bonus).
    result = await consume(deps, ids("full"), "build", 900 + 60, idempotency_key="k1")
    assert [t.source for t in result.taken] == [Source.DAILY, Source.WELCOME]
    await assert_ledger_balanced(ids("full"))


async def test_buckets_ledger_and_counters_as_written(database_url, tmp_path, ids):
    user = ids("alice")
    path = write_jsonl(tmp_path / "export-7.jsonl", legacy(ids("other")), legacy(user, paid=3600, welcome=1800, used=300))
    migrate(database_url, path)
    with psycopg.connect(libpq_url(database_url)) as connection:
        account = connection.execute(
            "SELECT plan_key, subscription_status, last_bucket_seq, last_event_seq, bonus_last_grant_on, bonus_month,"
            " bonus_used_seconds, created_at FROM accounts WHERE account_id = %s", (user,)).fetchone()
        buckets = connection.execute(
            "SELECT bucket_seq, source, granted_seconds, remaining_seconds, expires_at FROM buckets"
            " WHERE account_id = %s ORDER BY bucket_seq", (user,)).fetchall()
        events = connection.execute(
            "SELECT event_seq, type, seconds, bucket_seq, reason, metadata FROM ledger_events"
            " WHERE account_id = %s ORDER BY event_seq", (user,)).fetchall()
        record = connection.execute(
            "SELECT plan_key, paid_seconds_remaining, welcome_bonus_seconds, daily_gift_used_today, source_file,"
            " source_line FROM legacy_migrations WHERE account_id = %s", (user,)).fetchone()
    assert account == ("free", "inactive", 3, 3, NOW.date(), NOW.date().replace(day=1), 300, NOW)
    midnight = datetime(2026, 3, 15, tzinfo=timezone.utc)
    assert buckets == [(1, "welcome", 1800, 1800, None), (2, "subscription", 3600, 3600, None),
                       (3, "daily", 600, 600, midnight)]
    assert [(e[0], e[1], e[2], e[3]) for e in events] == [
        (1, "adjustment", 1800, 1), (2, "adjustment", 3600, 2), (3, "daily_bonus", 600, 3)]
    assert [e[4] for e in events] == ["Welcome bonus (legacy migration)", "Paid time (legacy migration)", "Daily bonus"]
    assert [e[5] for e in events] == [ledger_metadata(source, 2, "export-7.jsonl")
                                      for source in (Source.WELCOME, Source.SUBSCRIPTION, Source.DAILY)]
    assert record == ("free", 3600, 1800, 300, "export-7.jsonl", 2)


async def test_paid_plans_keep_their_plan_as_active_without_a_period(database_url, tmp_path, ids):
    path = write_jsonl(tmp_path / "legacy.jsonl", legacy(ids("pro"), used=100, plan_key="pro"),
                       legacy(ids("biz"), paid=60, plan_key="business"))
    migrate(database_url, path)
    with psycopg.connect(libpq_url(database_url)) as connection:
        accounts = connection.execute(
            "SELECT account_id, plan_key, subscription_status, subscription_period_end, subscription_closes_at,"
            " last_bucket_seq FROM accounts WHERE account_id = ANY(%s) ORDER BY 1", ([ids("pro"), ids("biz")],)
        ).fetchall()
        daily = connection.execute("SELECT granted_seconds FROM buckets WHERE account_id = %s",
                                   (ids("pro"),)).fetchone()
    assert accounts == [(ids("biz"), "business", "active", None, None, 1), (ids("pro"), "pro", "active", None, None, 1)]
    assert daily == (500,)  # pro's 10 minutes less the 100 s used today


async def test_a_second_run_changes_nothing(database_url, tmp_path, ids, engine):
    path = write_jsonl(tmp_path / "legacy.jsonl", *(legacy(ids(str(i)), paid=i, welcome=60, used=i) for i in range(7)))
    accounts = [ids(str(i)) for i in range(7)]
    first, _ = migrate(database_url, path, batch_size=3)
    before = snapshot(database_url, accounts)
    again, recorder = migrate(database_url, path, batch_size=2, now=NOW + timedelta(days=3))
    assert (first.migrated, again.migrated, again.already_migrated, again.exit_code) == (7, 0, 7, 0)
    assert recorder.conflicts == []
    assert snapshot(database_url, accounts) == before


async def test_an_interrupted_run_resumes_where_it_stopped(database_url, tmp_path, ids):
    records = [legacy(ids(str(i)), paid=100 + i, welcome=30, used=i) for i in range(9)]
    accounts = [r["user_id"] for r in records]
    path = write_jsonl(tmp_path / "legacy.jsonl", *records)

    class StopAfterFirstBatch:
        def __init__(self, target):
            self.target, self.calls = target, 0

        def write_batch(self, batch):
            self.calls += 1
            if self.calls > 1:
                raise KeyboardInterrupt
            return self.target.write_batch(batch)

    with pytest.raises(KeyboardInterrupt):
        migrate(database_url, path, batch_size=4, writers=1, wrap=StopAfterFirstBatch)
    assert row_counts(database_url, accounts)["legacy_migrations"] == 4  # the first batch, whole

    resumed, recorder = migrate(database_url, path, batch_size=4)
    assert (resumed.already_migrated, resumed.migrated, resumed.exit_code) == (4, 5, 0)
    reference = write_jsonl(tmp_path / "reference.jsonl", *(legacy("ref-" + r["user_id"], paid=r["paid_seconds_remaining"],
                                                            welcome=30, used=r["daily_gift_used_today"]) for r in records))
    migrate(database_url, reference)
    assert row_counts(database_url, accounts) == row_counts(database_url, ["ref-" + a for a in accounts])


async def test_existing_accounts_are_conflicts_and_never_overwritten(deps, database_url, tmp_path, ids):
    service_user, migrated_user = ids("service"), ids("migrated")
    await create_account(deps, service_user, "free")
    migrate(database_url, write_jsonl(tmp_path / "first.jsonl", legacy(migrated_user, paid=60)))
    before = snapshot(database_url, [service_user, migrated_user])

    path = write_jsonl(tmp_path / "second.jsonl", legacy(ids("new")), legacy(service_user, paid=60),
                       legacy(migrated_user, paid=61), legacy(migrated_user + "x", paid=1))
    summary, recorder = migrate(database_url, path)
    assert sorted(recorder.conflicts) == [
        (2, service_user, "the account exists and was not opened by a legacy migration"),
        (3, migrated_user, "migrated before with other legacy values (line 1 of first.jsonl); not overwritten"),
    ]
    assert (summary.migrated, summary.conflicts, summary.exit_code) == (2, 2, 1)
    assert snapshot(database_url, [service_user, migrated_user]) == before


async def test_bad_rows_are_skipped_with_their_line_and_the_rest_is_migrated(database_url, tmp_path, ids):
    path = write_jsonl(
        tmp_path / "legacy.jsonl",
        legacy(ids("ok1")), "{not json", legacy(ids("neg"), paid=-1), "", legacy("bad id!"),
        legacy(ids("dup"), paid=1), legacy(ids("gold"), plan_key="gold"), legacy(ids("dup"), paid=2),
        legacy(ids("ok2"), paid=5), legacy(ids("empty")) | {"plan_key": ""},
        json.dumps(legacy(ids("twice"), plan_key="pro"))[:-1] + ', "plan_key": "free"}',
    )
    summary, recorder = migrate(database_url, path)
    assert [line for line, _ in recorder.bad] == [2, 3, 5, 7, 10, 11, 6, 8]
    assert dict(recorder.bad)[6].startswith("user_id is on 2 lines of the file (first on line 6)")
    assert dict(recorder.bad)[10] == "plan_key is empty (leave it out, or null, for the free plan)"
    assert dict(recorder.bad)[11] == "the key 'plan_key' appears more than once"
    assert (summary.read, summary.migrated, summary.bad_rows, summary.exit_code) == (10, 2, 8, 1)
    assert row_counts(database_url, [ids("dup"), ids("neg"), ids("gold"), ids("empty"), ids("twice")])["accounts"] == 0
    assert row_counts(database_url, [ids("ok1"), ids("ok2")])["accounts"] == 2


async def test_a_dry_run_writes_nothing_and_says_what_it_would_do(deps, database_url, tmp_path, ids):
    await create_account(deps, ids("service"), "free")
    path = write_jsonl(tmp_path / "legacy.jsonl", legacy(ids("a"), paid=5), legacy(ids("service")),
                       legacy(ids("b"), welcome=9), legacy(ids("c")))
    accounts = [ids(n) for n in ("a", "b", "c", "service")]
    before = snapshot(database_url, accounts)
    summary, recorder = migrate(database_url, path, dry_run=True)
    assert snapshot(database_url, accounts) == before
    assert (summary.migrated, summary.conflicts, summary.dry_run) == (3, 1, True)
    assert recorder.conflicts == [(2, ids("service"), "the account exists and was not opened by a legacy migration")]
    assert "would migrate:    3" in summary.lines()


async def test_with_foreign_key_checks_the_rows_are_the_same(database_url, tmp_path, ids):
    records = [legacy(ids(f"{i}"), paid=i * 7, welcome=30 * (i % 2), used=i * 100) for i in range(6)]
    migrate(database_url, write_jsonl(tmp_path / "a.jsonl", *records), check_foreign_keys=True)
    migrate(database_url, write_jsonl(tmp_path / "a.jsonl", *({**r, "user_id": "n" + r["user_id"]} for r in records)))

    def rows(prefix):
        with psycopg.connect(libpq_url(database_url)) as connection:
            return [tuple(r) for r in connection.execute(
                "SELECT substr(b.account_id, %s), b.bucket_seq, b.source, b.granted_seconds, e.type, e.seconds"
                " FROM buckets b JOIN ledger_events e USING (account_id, bucket_seq)"
                " WHERE b.account_id LIKE %s ORDER BY 1, 2", (len(prefix) + 1, prefix + "%")).fetchall()]

    checked = rows(ids(""))
    assert len(checked) == 14 and checked == rows("n" + ids(""))


async def test_one_run_at_a_time(database_url):
    with open_legacy_import(database_url, CATALOG, NOW, "a.jsonl", writers=1):
        with pytest.raises(MigrationRunning):
            with open_legacy_import(database_url, CATALOG, NOW, "b.jsonl", writers=1):
                pass
        with open_legacy_import(database_url, CATALOG, NOW, "c.jsonl", writers=1, dry_run=True):
            pass  # a dry run writes nothing and needs no lock


async def test_the_ledger_invariants_hold_after_every_run(engine):
    async with engine.connect() as connection:
        assert await find_violations(connection) == []
