"""The legacy migration's runs as the console lists them (ListMigrationRuns), and what a run
records of itself: its counts and its first bad lines (RunSamples, a Reporter beside the console's)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from billing.domain.console import BadLine, MigrationRunRecord
from billing.domain.errors import InvalidArgument
from billing.service.dependencies import Dependencies
from billing.service.legacy_migration import Reporter, Summary
from billing.service.legacy_rows import BadRow
from billing.service.operator_inputs import bounded, decode_token, encode_token

RUNS_PAGE_DEFAULT, RUNS_PAGE_MAX = 20, 100
BAD_LINE_SAMPLES_MAX = 100
ERROR_LENGTH_MAX = 500
_TOKEN_KIND = "runs"


@dataclass(frozen=True)
class RunsPage:
    runs: list[MigrationRunRecord]
    next_page_token: str


async def list_migration_runs(deps: Dependencies, page_size: int, page_token: str) -> RunsPage:
    size = bounded(page_size, "page_size", RUNS_PAGE_DEFAULT, RUNS_PAGE_MAX)
    before = _before(page_token)
    runs = await deps.console_reads().migration_runs(before, size + 1)
    page, more = runs[:size], len(runs) > size
    token = encode_token(_TOKEN_KIND, page[-1].started_at.isoformat(), page[-1].run_id) if more else ""
    return RunsPage(page, token)


def _before(token: str) -> tuple[datetime, str] | None:
    parts = decode_token(token, _TOKEN_KIND, 2)
    if parts is None:
        return None
    try:
        started_at = datetime.fromisoformat(parts[0])
    except ValueError:
        started_at = None
    if started_at is None or started_at.tzinfo is None:
        raise InvalidArgument("page_token is not a token this listing issued", field="page_token")
    return started_at, parts[1]


@dataclass(frozen=True)
class RunCounts:
    rows_read: int
    accounts_migrated: int
    accounts_skipped: int  # already migrated, or a conflict with an account that exists
    bad_lines: int  # unreadable or invalid rows, and user ids on several lines

    @classmethod
    def of(cls, summary: Summary) -> "RunCounts":
        return cls(summary.read, summary.migrated, summary.already_migrated + summary.conflicts, summary.bad_rows)


class RunSamples:
    """Passes everything to the console's reporter and keeps the first bad lines and conflicts."""

    def __init__(self, inner: Reporter, keep: int = BAD_LINE_SAMPLES_MAX):
        self._inner = inner
        self._keep = keep
        self.samples: list[BadLine] = []

    def _sample(self, line: int, error: str) -> None:
        if len(self.samples) < self._keep:
            self.samples.append(BadLine(line, error[:ERROR_LENGTH_MAX]))

    def bad_row(self, row: BadRow) -> None:
        self._sample(row.line, row.reason)
        self._inner.bad_row(row)

    def conflict(self, line: int, user_id: str, why: str) -> None:
        self._sample(line, f"user_id {user_id}: conflict: {why}")
        self._inner.conflict(line, user_id, why)

    def progress(self, phase: str, done: int, total: int, elapsed_s: float) -> None:
        self._inner.progress(phase, done, total, elapsed_s)
