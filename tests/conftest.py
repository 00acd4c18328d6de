"""Whole-run hooks: the embedded PostgreSQL this run started is stopped at its end, and the run says so
(with pytest-xdist, the controller starts and stops it)."""

from __future__ import annotations

import testkit.signing  # noqa: F401 - sets BILLING_MASTER_KEY for every server a test starts

import os
import subprocess

# The suite's servers and ticks keep the wall clock, whatever a developer's `billing-dev clock advance` left
# in .data/stripe-standin/ (settings.clock_offset_file); a test that moves a clock says so.
os.environ.setdefault("BILLING_CLOCK_OFFSET_FILE", "")

import pytest

EMBEDDED_POSTGRES_REPORT = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    """With pytest-xdist's workers (`make test` runs two), the controller starts the embedded PostgreSQL
    before any worker needs it: the workers find it running, so none starts or stops it under another,
    and the controller stops it at the end if it started it."""
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        from tests.support.database import server_url

        server_url()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Session fixtures (the test databases) are torn down by now.
    from tests.support.database import stop_embedded_postgres_if_started

    try:
        report = stop_embedded_postgres_if_started()
    except (OSError, subprocess.CalledProcessError) as error:
        report = f"embedded PostgreSQL: could not stop it ({error}); `make db-stop` stops it"
    if report:
        session.config.stash[EMBEDDED_POSTGRES_REPORT] = report


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    report = config.stash.get(EMBEDDED_POSTGRES_REPORT, None)
    if report:
        terminalreporter.write_line(report)
