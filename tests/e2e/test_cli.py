"""The installed `billing` console script works from anywhere, without PYTHONPATH."""

from __future__ import annotations

import os
import subprocess

from tests.support.database import fresh_database
from tests.support.processes import VENV_BIN

BILLING = VENV_BIN / "billing"


def _billing(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"} | env
    return subprocess.run(
        [str(BILLING), *args], cwd="/tmp", env=environment, capture_output=True, text=True, timeout=60
    )


def test_help_lists_the_commands():
    result = _billing("--help")
    assert result.returncode == 0, result.stderr
    assert "{run,migrate,verify,tick,db-stop,db-url,keys,sign}" in result.stdout


def test_verify_a_fresh_database():
    with fresh_database("billing_cli") as url:
        result = _billing("verify", DATABASE_URL=url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ledger invariants hold" in result.stdout
