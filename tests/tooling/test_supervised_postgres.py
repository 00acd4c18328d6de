"""billing-dev run's watch over the embedded PostgreSQL, without one: postmaster.pid written by hand,
pg_ctl replaced. A postmaster gone with its postmaster.pid left behind died and is started again
on its port; one gone with the file removed was stopped on purpose and is left stopped."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from devstack import supervised_postgres
from devstack.supervised_postgres import SupervisedPostgres

PORT = 54999


@pytest.fixture
def starts(monkeypatch):
    calls: list[tuple] = []
    monkeypatch.setattr(supervised_postgres.embedded_postgres, "start",
                        lambda data_dir, port, keep_port: calls.append((data_dir, port, keep_port)))
    return calls


def _postmaster_pid_file(data_dir, pid: int) -> None:
    data_dir.mkdir(exist_ok=True)
    (data_dir / "postmaster.pid").write_text(f"{pid}\n{data_dir}\n0\n{PORT}\n")


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _watch(data_dir) -> SupervisedPostgres:
    watch = SupervisedPostgres(data_dir, PORT, first_delay=0.0, max_delay=0.0, reset_after=30.0)
    watch.start()
    return watch


def test_a_postmaster_that_died_is_started_again_on_its_data_directory_and_port(tmp_path, starts):
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _postmaster_pid_file(tmp_path / "pg", alive.pid)
        watch = _watch(tmp_path / "pg")
        watch.supervise()
        assert starts == []  # alive: nothing to do
    finally:
        alive.kill()
        alive.wait()
    watch.supervise()  # dead, its postmaster.pid left behind: a restart is scheduled (no delay here)
    watch.supervise()
    assert starts == [((tmp_path / "pg").resolve(), PORT, True)] and watch.restarts == 1


def test_a_crash_found_at_start_is_restarted_too(tmp_path, starts):
    _postmaster_pid_file(tmp_path / "pg", _dead_pid())
    watch = _watch(tmp_path / "pg")
    watch.supervise()
    watch.supervise()
    assert len(starts) == 1


def test_a_clean_stop_is_left_alone_and_billing_run_stopping_restarts_nothing(tmp_path, starts):
    (tmp_path / "pg").mkdir()
    watch = _watch(tmp_path / "pg")  # no postmaster.pid: stopped (`billing-dev db-stop`)
    for _ in range(3):
        watch.supervise()
    assert starts == []
    _postmaster_pid_file(tmp_path / "pg", _dead_pid())
    watch.signal(15)
    watch.supervise()
    watch.supervise()
    assert starts == [] and watch.exit_code_after_stop() == 0


def test_a_failed_restart_is_tried_again(tmp_path, monkeypatch):
    attempts = []

    def refuses_once(data_dir, port, keep_port):
        attempts.append(port)
        if len(attempts) == 1:
            raise SystemExit("embedded PostgreSQL did not start: pre-existing shared memory block is still in use")
        _postmaster_pid_file(data_dir, os.getpid())

    monkeypatch.setattr(supervised_postgres.embedded_postgres, "start", refuses_once)
    _postmaster_pid_file(tmp_path / "pg", _dead_pid())
    watch = _watch(tmp_path / "pg")
    for _ in range(4):
        watch.supervise()
    assert attempts == [PORT, PORT]
    watch.supervise()
    assert attempts == [PORT, PORT]  # watching the new (live) postmaster
