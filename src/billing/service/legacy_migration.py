"""`billing migrate-legacy FILE`: every valid row of a legacy export becomes an account with its
buckets (service/legacy_rows.py says which), written in batches by a LegacyImportTarget.

Two passes over the file. The first counts rows and user ids: a user id on two lines makes
the export ambiguous, so none of its lines is migrated (a first-wins rule would migrate
whichever came first and leave a conflict to repair by hand). The second validates, maps and
hands full batches to the target, which writes each batch in one transaction and says which
rows it did not migrate (already migrated with the same legacy values, or a conflict). A run
that stops anywhere resumes by running it again: committed batches read as already migrated.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Protocol, Sequence

from billing.domain.catalog import Catalog
from billing.service.legacy_rows import BadRow, LegacyRow, detect_format, read_rows

DEFAULT_BATCH_SIZE = 50_000
ALREADY_MIGRATED, CONFLICT = "already_migrated", "conflict"


@dataclass(frozen=True)
class NotMigrated:
    """A row of a batch the target did not migrate, and why."""

    line: int
    outcome: str  # ALREADY_MIGRATED or CONFLICT
    detail: str = ""


class LegacyImportTarget(Protocol):
    def write_batch(self, rows: Sequence[LegacyRow]) -> list[NotMigrated]:
        """Migrates the rows that are new, all or none (one transaction); returns the others.
        A dry run's target classifies the same way and writes nothing."""
        ...


class Reporter(Protocol):
    def bad_row(self, row: BadRow) -> None: ...

    def conflict(self, line: int, user_id: str, why: str) -> None: ...

    def progress(self, done: int, total: int, elapsed_s: float) -> None: ...


@dataclass
class Summary:
    read: int = 0
    migrated: int = 0
    already_migrated: int = 0
    conflicts: int = 0
    bad_rows: int = 0
    elapsed_s: float = 0.0
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


@dataclass(frozen=True)
class FileScan:
    rows: int
    repeated: dict[str, tuple[int, int]]  # user_id -> (first line, lines) for ids on more than one line


def file_lines(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        yield from handle


def file_format(path: Path) -> str:
    with open(path, "rb") as handle:
        return detect_format(path.name, handle.read(4096))


def scan(path: Path, fmt: str, catalog: Catalog) -> FileScan:
    first_line: dict[str, int] = {}
    counts: dict[str, int] = {}
    rows = 0
    for row in read_rows(file_lines(path), fmt, catalog):
        rows += 1
        if row.user_id is None:
            continue
        if row.user_id in first_line:
            counts[row.user_id] = counts.get(row.user_id, 1) + 1
        else:
            first_line[row.user_id] = row.line
    return FileScan(rows, {user_id: (first_line[user_id], count) for user_id, count in counts.items()})


def migrate_legacy_file(
    path: Path, catalog: Catalog, target: LegacyImportTarget, reporter: Reporter, *,
    batch_size: int = DEFAULT_BATCH_SIZE, dry_run: bool = False,
) -> Summary:
    """Raises HeaderError (a CSV without the required columns) before anything is written."""
    assert batch_size > 0
    started = time.monotonic()
    summary = Summary(dry_run=dry_run)
    fmt = file_format(path)
    found = scan(path, fmt, catalog)
    reporter.progress(0, found.rows, 0.0)
    batch: list[LegacyRow] = []

    def flush() -> None:
        by_line = {row.line: row for row in batch}
        for skipped in target.write_batch(batch) if batch else []:
            if skipped.outcome == ALREADY_MIGRATED:
                summary.already_migrated += 1
            else:
                summary.conflicts += 1
                reporter.conflict(skipped.line, by_line[skipped.line].user_id, skipped.detail)
        summary.migrated = summary.read - summary.bad_rows - summary.already_migrated - summary.conflicts
        batch.clear()
        reporter.progress(summary.read, found.rows, time.monotonic() - started)

    for row in read_rows(file_lines(path), fmt, catalog):
        summary.read += 1
        if isinstance(row, LegacyRow) and row.user_id in found.repeated:
            first, count = found.repeated[row.user_id]
            row = BadRow(row.line, row.user_id,
                         f"user_id is on {count} lines of the file (first on line {first}); none of them is migrated")
        if isinstance(row, BadRow):
            summary.bad_rows += 1
            reporter.bad_row(row)
            continue
        batch.append(row)
        if len(batch) >= batch_size:
            flush()
    flush()
    summary.migrated = summary.read - summary.bad_rows - summary.already_migrated - summary.conflicts
    summary.elapsed_s = time.monotonic() - started
    return summary
