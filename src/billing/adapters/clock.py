"""The only place that reads the wall clock; use cases receive a Clock."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class OffsetClock:
    """The wall clock moved ahead, for living through subscription periods locally (Settings refuse it with
    real Stripe): `offset_seconds`, plus the whole number of seconds written in `offset_file` when it exists.
    The file is read again whenever it changes (`billing-dev clock advance` rewrites it while the server runs);
    its modification time is checked at each reading, which costs a stat call: local use only."""

    def __init__(self, offset_seconds: int = 0, offset_file: Path | None = None):
        self._fixed = offset_seconds
        self._file = offset_file
        self._file_version: tuple[int, int, int] | None = None
        self._file_seconds = 0

    def now(self) -> datetime:
        return datetime.now(timezone.utc) + timedelta(seconds=self._fixed + self._read_file())

    def _read_file(self) -> int:
        if self._file is None:
            return 0
        try:
            stat = os.stat(self._file)
        except FileNotFoundError:
            return 0
        version = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if version != self._file_version:
            text = self._file.read_text().strip()
            # A file caught half-written keeps the offset read before.
            if text.isdigit():
                self._file_seconds, self._file_version = int(text), version
        return self._file_seconds


def service_clock(offset_seconds: int, offset_file: Path | None) -> SystemClock | OffsetClock:
    """The clock of the service's use cases: the wall clock unless an offset is configured."""
    if offset_seconds or offset_file is not None:
        return OffsetClock(offset_seconds, offset_file)
    return SystemClock()


class FixedClock:
    """For tests: time stands still until advanced."""

    def __init__(self, now: datetime):
        self._now = now

    def now(self) -> datetime:
        return self._now

    def set(self, now: datetime) -> None:
        self._now = now
