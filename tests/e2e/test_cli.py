"""The installed `billing` console script works from anywhere, without PYTHONPATH."""

from __future__ import annotations

import os
import subprocess

import psycopg

from billing.settings import libpq_url
from tests.support.database import fresh_database
from testkit.processes import VENV_BIN

BILLING = VENV_BIN / "billing"


def _billing(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"} | env
    return subprocess.run(
        [str(BILLING), *args], cwd="/tmp", env=environment, capture_output=True, text=True, timeout=60
    )


def test_help_lists_the_commands():
    result = _billing("--help")
    assert result.returncode == 0, result.stderr
    assert "{migrate,verify,tick,keys,console-login,webhooks,sign,migrate-legacy}" in result.stdout
    local = subprocess.run([str(VENV_BIN / "billing-dev"), "--help"], capture_output=True, text=True, timeout=60)
    assert local.returncode == 0 and "{run,migrate,db-stop,db-url,clock,stripe-secret}" in local.stdout


def test_without_a_database_the_service_commands_say_so(tmp_path):
    """No DATABASE_URL and no local stack announced: a clear exit, not a traceback."""
    result = _billing("verify", BILLING_LOCAL_DATABASE_URL_FILE=str(tmp_path / "none"))
    assert result.returncode != 0 and "DATABASE_URL is not set" in result.stderr and "Traceback" not in result.stderr


def test_verify_a_fresh_database():
    with fresh_database("billing_cli") as url:
        result = _billing("verify", DATABASE_URL=url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ledger invariants hold" in result.stdout


def test_migrate_legacy_from_a_csv_file(tmp_path):
    export = tmp_path / "legacy.csv"
    export.write_text(
        "user_id,paid_seconds_remaining,welcome_bonus_seconds,daily_gift_used_today,plan_key\n"
        "alice,3600,1800,300,\n"
        "bob,10,0,0,pro\n"
    )
    with fresh_database("billing_cli") as url:
        dry = _billing("migrate-legacy", str(export), "--dry-run", DATABASE_URL=url)
        first = _billing("migrate-legacy", str(export), DATABASE_URL=url)
        again = _billing("migrate-legacy", str(export), "--batch-size", "1", DATABASE_URL=url)
        export.write_text(export.read_text() + "carol,-5,0,0,\nbob,11,0,0,pro\n")
        changed = _billing("migrate-legacy", str(export), DATABASE_URL=url)
        verify = _billing("verify", DATABASE_URL=url)
        with psycopg.connect(libpq_url(url)) as connection:  # each real run recorded (the console's operations page)
            runs = connection.execute(
                "SELECT source_file, rows_read, accounts_migrated, accounts_skipped, bad_lines, bad_line_samples "
                "FROM migration_runs WHERE finished_at IS NOT NULL ORDER BY started_at").fetchall()
    assert [run[:5] for run in runs] == [("legacy.csv", 2, 2, 0, 0), ("legacy.csv", 2, 0, 2, 0), ("legacy.csv", 4, 0, 1, 3)]
    assert runs[2][5][0] == {"line": 4, "error": "paid_seconds_remaining must not be negative, found -5"}
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "dry run, nothing written" in dry.stdout and "would migrate:    2" in dry.stdout
    assert first.returncode == 0, first.stdout + first.stderr
    assert "migrated:         2" in first.stdout
    assert again.returncode == 0 and "already migrated: 2" in again.stdout
    assert changed.returncode == 1, changed.stdout + changed.stderr
    assert "line 4: user_id carol: bad row: paid_seconds_remaining must not be negative, found -5" in changed.stdout
    assert "user_id bob: bad row: user_id is on 2 lines of the file (first on line 3)" in changed.stdout
    assert verify.returncode == 0, verify.stdout


def test_migrate_legacy_refuses_a_csv_without_the_columns(tmp_path):
    export = tmp_path / "legacy.csv"
    export.write_text("user_id,paid\nalice,1\n")
    with fresh_database("billing_cli") as url:
        result = _billing("migrate-legacy", str(export), DATABASE_URL=url)
    assert result.returncode == 2
    assert "the CSV header lacks paid_seconds_remaining, welcome_bonus_seconds, daily_gift_used_today" in result.stderr
