"""`billing migrate-legacy FILE`: every valid row of a legacy export becomes an account with its
buckets (service/legacy_rows.py says which), written in batches by LegacyImportTargets.

Two phases. Reading parses and validates the file once, reports bad rows, and spools the
valid ones to a temporary file as tab-separated records. A user id on two lines makes the
export ambiguous, so none of its lines is migrated (a first-wins rule would migrate whichever
came first and leave a wrong balance to repair by hand): that is only known at the end of the
file, hence the spool. Writing hands batches of the spool to the targets (one per database
connection, running at once), each of which writes a batch in one transaction and says which
rows it did not migrate (already migrated with the same legacy values, or a conflict). A run
that stops anywhere resumes by running it again: committed batches read as already migrated.
"""

from __future__ import annotations

import tempfile
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, Protocol, Sequence

from billing.domain.catalog import Catalog
from billing.service.legacy_rows import BadRow, LegacyRow, detect_format, read_rows

DEFAULT_BATCH_SIZE = 50_000
ALREADY_MIGRATED, CONFLICT = "already_migrated", "conflict"
READING, WRITING = "reading", "writing"


@dataclass(frozen=True)
class Batch:
    """Valid rows, each a LegacyRow.record() line (tab-separated, newline-terminated)."""

    records: bytes
    rows: int


@dataclass(frozen=True)
class NotMigrated:
    """A row of a batch the target did not migrate, and why."""

    line: int
    user_id: str
    outcome: str  # ALREADY_MIGRATED or CONFLICT
    detail: str = ""


class LegacyImportTarget(Protocol):
    def write_batch(self, batch: Batch) -> list[NotMigrated]:
        """Migrates the batch's rows that are new, all or none (one transaction); returns the
        others. A dry run's target classifies the same way and writes nothing. Targets run
        in threads of their own, one batch at a time each."""
        ...


class Reporter(Protocol):
    def bad_row(self, row: BadRow) -> None: ...

    def conflict(self, line: int, user_id: str, why: str) -> None: ...

    def progress(self, phase: str, done: int, total: int, elapsed_s: float) -> None:
        """READING: bytes of the file read; WRITING: valid rows written (or classified)."""
        ...


@dataclass
class Summary:
    read: int = 0
    migrated: int = 0
    already_migrated: int = 0
    conflicts: int = 0
    bad_rows: int = 0
    elapsed_s: float = 0.0
    reading_s: float = 0.0  # of elapsed_s: the first phase (parse, validate, spool)
    dry_run: bool = False

    @property
    def rows_per_second(self) -> float:
        return self.read / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def exit_code(self) -> int:
        """Nonzero when any row was skipped, so a script or CI notices."""
        return 1 if self.conflicts or self.bad_rows else 0

    def lines(self) -> list[str]:
        verb = "would migrate" if self.dry_run else "migrated"
        return [
            f"rows read:        {self.read:,}",
            f"{verb + ':':<17} {self.migrated:,}",
            f"already migrated: {self.already_migrated:,}",
            f"conflicts:        {self.conflicts:,}",
            f"bad rows:         {self.bad_rows:,}",
            f"elapsed:          {self.elapsed_s:.1f} s ({self.rows_per_second:,.0f} rows/s)",
        ]


def file_format(path: Path) -> str:
    with open(path, "rb") as handle:
        return detect_format(path.name, handle.read(4096))


def migrate_legacy_file(
    path: Path, catalog: Catalog, targets: Sequence[LegacyImportTarget], reporter: Reporter, *,
    batch_size: int = DEFAULT_BATCH_SIZE, dry_run: bool = False,
) -> Summary:
    """Raises HeaderError (a CSV without the required columns) before anything is written."""
    assert batch_size > 0 and targets
    started = time.monotonic()
    summary = Summary(dry_run=dry_run)
    with tempfile.TemporaryFile(prefix="billing-legacy-") as spool:
        valid, repeated = _read(path, catalog, spool, summary, reporter, started)
        summary.reading_s = time.monotonic() - started
        spool.seek(0)
        with _Writers(targets) as writers:
            for batch in _batches(spool, batch_size, repeated, summary, reporter):
                for done in writers.submit(batch):
                    _count(done, summary, reporter)
                reporter.progress(WRITING, summary.migrated + summary.already_migrated + summary.conflicts, valid,
                                  time.monotonic() - started)
            for done in writers.drain():
                _count(done, summary, reporter)
    reporter.progress(WRITING, valid, valid, time.monotonic() - started)
    summary.elapsed_s = time.monotonic() - started
    return summary


def _read(
    path: Path, catalog: Catalog, spool: BinaryIO, summary: Summary, reporter: Reporter, started: float,
) -> tuple[int, dict[str, tuple[int, int]]]:
    """Returns the valid rows spooled, and user_id -> (first line, lines) for ids on several lines."""
    first_line: dict[str, int] = {}
    repeated: dict[str, int] = {}
    valid = 0
    size = max(1, path.stat().st_size)
    with open(path, "rb") as handle:
        lines = _counted(handle, lambda done: reporter.progress(READING, done, size, time.monotonic() - started))
        for row in read_rows(lines, file_format(path), catalog):
            summary.read += 1
            user_id = row.user_id
            if user_id is not None:
                if user_id in first_line:
                    repeated[user_id] = repeated.get(user_id, 1) + 1
                else:
                    first_line[user_id] = row.line
            if isinstance(row, LegacyRow):
                spool.write(row.record().encode())
                valid += 1
            else:
                summary.bad_rows += 1
                reporter.bad_row(row)
    return valid, {user_id: (first_line[user_id], count) for user_id, count in repeated.items()}


def _counted(handle: BinaryIO, progress: Callable[[int], None], every: int = 1 << 22) -> Iterator[bytes]:
    done = reported = 0
    for line in handle:
        done += len(line)
        if done - reported >= every:
            progress(done)
            reported = done
        yield line
    progress(done)


def _batches(
    spool: BinaryIO, batch_size: int, repeated: dict[str, tuple[int, int]], summary: Summary, reporter: Reporter,
) -> Iterator[Batch]:
    chunk: list[bytes] = []
    for record in spool:
        if repeated:
            line, raw_id = record.split(b"\t", 2)[:2]
            user_id = raw_id.decode()
            if user_id in repeated:
                first, count = repeated[user_id]
                summary.bad_rows += 1
                reporter.bad_row(BadRow(int(line), user_id, f"user_id is on {count} lines of the file "
                                        f"(first on line {first}); none of them is migrated"))
                continue
        chunk.append(record)
        if len(chunk) >= batch_size:
            yield Batch(b"".join(chunk), len(chunk))
            chunk = []
    if chunk:
        yield Batch(b"".join(chunk), len(chunk))


def _count(done: tuple[Batch, list[NotMigrated]], summary: Summary, reporter: Reporter) -> None:
    batch, skipped = done
    for row in skipped:
        if row.outcome == ALREADY_MIGRATED:
            summary.already_migrated += 1
        else:
            summary.conflicts += 1
            reporter.conflict(row.line, row.user_id, row.detail)
    summary.migrated += batch.rows - len(skipped)


class _Writers:
    """The targets, each writing one batch at a time in a thread of its own. submit() waits
    for the oldest batch when every target is busy and returns what has finished; leaving the
    block (an error, Ctrl-C) waits for the batches in flight, which commit or roll back whole."""

    def __init__(self, targets: Sequence[LegacyImportTarget]):
        self._idle = list(targets)
        self._executor = ThreadPoolExecutor(len(targets), thread_name_prefix="legacy-writer")
        self._running: deque[tuple[Future[list[NotMigrated]], LegacyImportTarget, Batch]] = deque()

    def __enter__(self) -> "_Writers":
        return self

    def __exit__(self, *exc: object) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def submit(self, batch: Batch) -> list[tuple[Batch, list[NotMigrated]]]:
        finished = []
        while not self._idle or (self._running and self._running[0][0].done()):
            finished.append(self._finish_oldest())
        target = self._idle.pop()
        self._running.append((self._executor.submit(target.write_batch, batch), target, batch))
        return finished

    def drain(self) -> list[tuple[Batch, list[NotMigrated]]]:
        return [self._finish_oldest() for _ in range(len(self._running))]

    def _finish_oldest(self) -> tuple[Batch, list[NotMigrated]]:
        future, target, batch = self._running.popleft()
        skipped = future.result()  # a failed batch ends the run here (after the others in flight)
        self._idle.append(target)
        return batch, skipped
