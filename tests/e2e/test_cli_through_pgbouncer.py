"""The `billing` commands with DATABASE_URL through pgbouncer in transaction mode (BILLING_DB_POOLER=transaction):
what keeps session state (the migrations' advisory lock, the legacy import's run lock, temporary tables and
SETs, `billing verify`'s engine) goes to DATABASE_DIRECT_URL; the rest (tick, keys) goes through the pooler."""

from __future__ import annotations

import os
import subprocess

import psycopg

from billing.settings import libpq_url
from tests.support.database import fresh_database
from testkit.pgbouncer import running_pgbouncer, skip_unless_installed
from testkit.processes import PYTHON, REPO_ROOT


def _billing(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(PYTHON), "-m", "billing.entrypoints.cli", *args], cwd=REPO_ROOT,
                          env=os.environ | env, capture_output=True, text=True, timeout=60)


def test_the_commands_run_behind_a_transaction_pooler(tmp_path):
    skip_unless_installed()
    export = tmp_path / "legacy.csv"
    export.write_text("user_id,paid_seconds_remaining,welcome_bonus_seconds,daily_gift_used_today,plan_key\n"
                      "alice,3600,1800,300,\nbob,10,0,0,pro\n")
    with fresh_database("billing_pooled_cli") as url:
        with running_pgbouncer(url) as bouncer:
            pooled = {"DATABASE_URL": bouncer.url, "BILLING_DB_POOLER": "transaction", "DATABASE_DIRECT_URL": url}
            results = [
                _billing("migrate", **pooled),
                _billing("migrate-legacy", str(export), **pooled),
                _billing("tick", **pooled),
                _billing("keys", "create", "--scope", "admin", **pooled),
                _billing("verify", **pooled),
            ]
        with psycopg.connect(libpq_url(url)) as connection:
            accounts = connection.execute("SELECT count(*) FROM accounts").fetchone()[0]
    for result in results:
        assert result.returncode == 0, result.args[3:4] + [result.stdout, result.stderr]
    assert "migrated:         2" in results[1].stdout
    assert "ledger invariants hold" in results[4].stdout
    assert accounts == 2
