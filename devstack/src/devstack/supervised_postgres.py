"""The embedded PostgreSQL as a child of `billing-dev run`: started again, on the same data directory
and port, when its postmaster dies (a crash, `kill -9`, the OOM killer).

pg_ctl starts the postmaster detached, so this watches the pid in postmaster.pid rather than a
child process. A postmaster gone with that file left behind died; one gone with the file removed
was stopped on purpose (`billing-dev db-stop`, `pg_ctl stop`) and is left stopped, watched again
once something starts it (`billing migrate`). `billing-dev run` stopping leaves it running, as
before: `make db-stop` stops it. A restart runs pg_ctl in the supervision loop (crash recovery
takes a second or two; pg_ctl waits at most START_TIMEOUT_SECONDS); one that fails (the dead
postmaster's backends still holding its shared memory, a zombie not yet reaped) is tried again
after the backoff `billing-dev run` uses for its other children.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from devstack import embedded_postgres


class SupervisedPostgres:
    name = "embedded PostgreSQL"

    def __init__(self, data_dir: Path, port: int, *, first_delay: float, max_delay: float, reset_after: float):
        self._data_dir, self._port = data_dir.resolve(), port
        self._first_delay, self._max_delay, self._reset_after = first_delay, max_delay, reset_after
        self._postmaster: int | None = None  # the pid watched
        self._watched_since = 0.0
        self._delay = 0.0
        self._restart_at: float | None = None
        self._stopping = False
        self.restarts = 0

    def start(self) -> None:
        """Watches the running postmaster (`billing-dev run` started the server before its children)."""
        self._restart_at = None
        self._postmaster = self._running_postmaster()
        self._watched_since = time.monotonic()

    def supervise(self) -> None:
        if self._stopping:
            return
        now = time.monotonic()
        if self._restart_at is not None:
            if now >= self._restart_at:
                self._restart(now)
            return
        if self._postmaster is not None and _alive(self._postmaster):
            return
        recorded = embedded_postgres.postmaster_pid(self._data_dir)
        if recorded is None:  # stopped cleanly (or never started): left so
            if self._postmaster is not None:
                _say(f"{self.name} (pid {self._postmaster}) was stopped cleanly; not restarted")
            self._postmaster = None
            return
        if _alive(recorded):  # the one watched, or one another command started
            self._postmaster, self._watched_since = recorded, now
            return
        ran = now - self._watched_since
        self._postmaster = None
        self._delay = self._first_delay if ran >= self._reset_after or not self._delay else min(
            self._delay * 2, self._max_delay)
        self._restart_at = now + self._delay
        _say(f"{self.name} (pid {recorded}) died; restarting in {self._delay:.1f}s")

    def _restart(self, now: float) -> None:
        self.restarts += 1
        _say(f"restarting {self.name} (restart {self.restarts})")
        try:
            embedded_postgres.start(self._data_dir, port=self._port, keep_port=True)
        except (SystemExit, OSError, subprocess.SubprocessError) as failed:  # start() words its failures as SystemExit
            self._delay = min(self._delay * 2, self._max_delay)
            self._restart_at = now + self._delay
            _say(f"{self.name} did not start ({str(failed).strip()[:500]}); again in {self._delay:.1f}s")
            return
        self.start()

    def _running_postmaster(self) -> int | None:
        pid = embedded_postgres.postmaster_pid(self._data_dir)
        return pid if pid is not None and _alive(pid) else None

    def signal(self, signum: int) -> None:
        self._stopping = True  # `billing-dev run` is stopping: the database outlives it

    def wait(self, timeout: float) -> None:
        pass

    def exit_code_after_stop(self) -> int:
        return 0


def _alive(pid: int) -> bool:
    """Running and not a zombie (pg_ctl detaches the postmaster; whoever reaps it may take a while)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process (the server's account when root runs this): it exists
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (macOS): it exists
    return state != "Z"


def _say(text: str) -> None:
    print(f"billing-dev run: {text}", file=sys.stderr, flush=True)
