"""The migration's run (two phases, batches, several writers, the summary) and its console
output, with in-memory targets; the SQL is tested in tests/integration/test_legacy_migration.py."""

from __future__ import annotations

import io
import json
import threading
from types import SimpleNamespace

import pytest

from billing.adapters.catalog_file import load_catalog
from billing.entrypoints import legacy_migration
from billing.entrypoints.legacy_migration import ConsoleReporter
from billing.service.legacy_migration import (
    ALREADY_MIGRATED, CONFLICT, READING, WRITING, Batch, NotMigrated, migrate_legacy_file,
)
from billing.service.legacy_rows import BadRow
from billing.settings import DEFAULT_CATALOG_PATH

CATALOG, _ = load_catalog(DEFAULT_CATALOG_PATH)


class MemoryTarget:
    """Records every batch; `known` user ids read as migrated before (same values unless in `differ`)."""

    def __init__(self, known=(), differ=(), meet: threading.Barrier | None = None):
        self.batches: list[list[list[str]]] = []
        self.known, self.differ, self.meet = set(known), set(differ), meet
        self.threads: set[str] = set()

    def write_batch(self, batch: Batch) -> list[NotMigrated]:
        if self.meet is not None and not self.batches:
            self.meet.wait(timeout=10)  # broken (the run fails) unless another writer is mid-batch too
        self.threads.add(threading.current_thread().name)
        records = [line.split("\t") for line in batch.records.decode().splitlines()]
        assert len(records) == batch.rows
        self.batches.append(records)
        return [
            NotMigrated(int(r[0]), r[1], CONFLICT if r[1] in self.differ else ALREADY_MIGRATED, "differs")
            for r in records if r[1] in self.known
        ]


class Recorder:
    def __init__(self):
        self.bad: list[BadRow] = []
        self.conflicts: list[tuple[int, str, str]] = []
        self.progress_calls: list[tuple[str, int, int]] = []

    def bad_row(self, row):
        self.bad.append(row)

    def conflict(self, line, user_id, why):
        self.conflicts.append((line, user_id, why))

    def progress(self, phase, done, total, elapsed_s):
        self.progress_calls.append((phase, done, total))


def write_jsonl(path, *records):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def row(user_id, paid=0, welcome=0, used=0, **extra):
    return {"user_id": user_id, "paid_seconds_remaining": paid, "welcome_bonus_seconds": welcome,
            "daily_gift_used_today": used, **extra}


def test_valid_rows_go_out_in_batches_as_tab_separated_records(tmp_path):
    path = write_jsonl(tmp_path / "legacy.jsonl", *(row(f"u{i}", paid=i) for i in range(1, 6)))
    target, recorder = MemoryTarget(), Recorder()
    summary = migrate_legacy_file(path, CATALOG, [target], recorder, batch_size=2)
    assert [len(b) for b in target.batches] == [2, 2, 1]
    assert target.batches[0][0] == ["1", "u1", "free", "1", "0", "0"]
    assert (summary.read, summary.migrated, summary.bad_rows, summary.exit_code) == (5, 5, 0, 0)
    assert recorder.progress_calls[-1] == (WRITING, 5, 5)
    assert any(phase == READING for phase, _, _ in recorder.progress_calls)


def test_a_user_id_on_two_lines_migrates_neither(tmp_path):
    path = write_jsonl(
        tmp_path / "legacy.jsonl",
        row("alice", paid=1), row("bob"), row("alice", paid=2), row("carol"), row("alice", paid=-1),
    )
    target, recorder = MemoryTarget(), Recorder()
    summary = migrate_legacy_file(path, CATALOG, [target], recorder, batch_size=10)
    assert [r[1] for r in target.batches[0]] == ["bob", "carol"]
    reasons = {bad.line: bad.reason for bad in recorder.bad}
    assert reasons[5] == "paid_seconds_remaining must not be negative, found -1"  # its own reason first
    for line in (1, 3):
        assert reasons[line] == "user_id is on 3 lines of the file (first on line 1); none of them is migrated"
    assert (summary.read, summary.migrated, summary.bad_rows, summary.exit_code) == (5, 2, 3, 1)


def test_bad_rows_are_reported_and_the_run_goes_on(tmp_path):
    path = write_jsonl(tmp_path / "legacy.jsonl", row("a"), "{oops", row("b", plan_key="gold"), row("c"))
    target, recorder = MemoryTarget(), Recorder()
    summary = migrate_legacy_file(path, CATALOG, [target], recorder)
    assert [(bad.line, bad.reason[:14]) for bad in recorder.bad] == [(2, "not valid JSON"), (3, "plan_key 'gold")]
    assert [r[1] for r in target.batches[0]] == ["a", "c"]
    assert (summary.migrated, summary.bad_rows, summary.exit_code) == (2, 2, 1)


def test_already_migrated_rows_are_counted_and_conflicts_reported(tmp_path):
    path = write_jsonl(tmp_path / "legacy.jsonl", row("a"), row("b"), row("c"))
    target, recorder = MemoryTarget(known={"a", "b"}, differ={"b"}), Recorder()
    summary = migrate_legacy_file(path, CATALOG, [target], recorder, batch_size=2)
    assert recorder.conflicts == [(2, "b", "differs")]
    assert (summary.migrated, summary.already_migrated, summary.conflicts, summary.exit_code) == (1, 1, 1, 1)


def test_an_identical_rerun_exits_zero(tmp_path):
    path = write_jsonl(tmp_path / "legacy.jsonl", row("a"), row("b"))
    summary = migrate_legacy_file(path, CATALOG, [MemoryTarget(known={"a", "b"})], Recorder())
    assert (summary.migrated, summary.already_migrated, summary.exit_code) == (0, 2, 0)


def test_writers_run_batches_at_once(tmp_path):
    path = write_jsonl(tmp_path / "legacy.jsonl", *(row(f"u{i}") for i in range(40)))
    both_writing = threading.Barrier(2)
    targets = [MemoryTarget(meet=both_writing), MemoryTarget(meet=both_writing)]
    summary = migrate_legacy_file(path, CATALOG, targets, Recorder(), batch_size=5)
    assert summary.migrated == 40
    assert all(len(t.batches) >= 2 for t in targets)  # both took work
    assert sorted(r[1] for t in targets for b in t.batches for r in b) == sorted(f"u{i}" for i in range(40))


def test_a_failing_batch_ends_the_run_after_the_batches_in_flight(tmp_path):
    path = write_jsonl(tmp_path / "legacy.jsonl", *(row(f"u{i}") for i in range(10)))

    class Failing(MemoryTarget):
        def write_batch(self, batch):
            if len(self.batches) == 1:
                raise RuntimeError("database went away")
            return super().write_batch(batch)

    target = Failing()
    with pytest.raises(RuntimeError, match="went away"):
        migrate_legacy_file(path, CATALOG, [target], Recorder(), batch_size=3)
    assert len(target.batches) == 1


def test_the_console_shows_progress_and_keeps_report_lines_clear_of_it(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(legacy_migration, "time", SimpleNamespace(monotonic=lambda: now[0]))
    out, err = io.StringIO(), io.StringIO()
    console = ConsoleReporter(out, err, progress=True)
    console.progress(READING, 50, 100, 1.0)
    console.progress(WRITING, 0, 1000, 2.0)
    now[0] += legacy_migration.PROGRESS_EVERY_S
    console.progress(WRITING, 500, 1000, 3.0)
    console.conflict(7, "bob", "migrated before with other legacy values")
    console.bad_row(BadRow(9, None, "not valid JSON"))
    console.finish()
    assert "reading: 50%" in err.getvalue()
    assert "writing: 500/1,000 rows (50%), 500 rows/s, ETA 1 s" in err.getvalue()
    assert err.getvalue().endswith("\r")  # the progress line is cleared
    assert out.getvalue().splitlines() == [
        "line 7: user_id bob: conflict: migrated before with other legacy values",
        "line 9: bad row: not valid JSON",
    ]


def test_no_progress_line_off_a_terminal():
    err = io.StringIO()
    console = ConsoleReporter(io.StringIO(), err)  # a StringIO is no terminal
    console.progress(WRITING, 1000, 1000, 1.0)
    assert err.getvalue() == ""


def test_migrate_legacy_help_is_its_own_and_the_top_level_help_stays(capsys):
    from billing.entrypoints.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["migrate-legacy", "--help"])
    out = capsys.readouterr().out
    assert exited.value.code == 0 and out.startswith("usage: billing migrate-legacy") and "--dry-run" in out, out
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    out = capsys.readouterr().out
    assert exited.value.code == 0 and out.startswith("usage: billing [-h]") and "migrate-legacy" in out, out
    assert main(["tick", "--help"]) == 0 and capsys.readouterr().out.startswith("usage: billing [-h]")
