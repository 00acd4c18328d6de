"""The benchmark's baseline runs the service's own Consume SQL in pgbench, and that SQL,
run by pgbench, keeps the ledger invariants (bench/pgbench_script.py)."""

from __future__ import annotations

import random
import subprocess

import pytest

from bench import pgbench_script
from billing.adapters.catalog_file import load_catalog
from billing.adapters.db.unit_of_work import PostgresStorage
from billing.service.accounts import create_account
from billing.service.dependencies import Dependencies
from billing.service.grants import create_grant
from billing.settings import DEFAULT_CATALOG_PATH

CLIENTS = 2
ACCOUNTS = 8
TRANSACTIONS_PER_CLIENT = 25


@pytest.fixture
def deps(pool, clock):
    """One way is enough: pgbench, not the service, writes here."""
    return Dependencies(storage=PostgresStorage(pool), catalog=load_catalog(DEFAULT_CATALOG_PATH)[0], clock=clock)


async def test_pgbench_runs_the_captured_consume_and_the_ledger_stays_balanced(
    deps, database_url, ledger_rows, assert_ledger_balanced, tmp_path
):
    offset = random.randrange(10**6, 10**9)  # the script's accounts are offset+1 .. offset+ACCOUNTS
    ids = [str(offset + i) for i in range(1, ACCOUNTS + 1)]
    for account_id in ids:
        await create_account(deps, account_id, "free")
        await create_grant(deps, account_id, "gift", 3600, "bench", f"grant-{account_id}")
    # Like the bench datasets, every account has the same buckets: a first Consume on the real
    # clock (the capture's) grants each today's daily bonus; the capture is then a plain
    # Consume (one read, one write) whose debit fits every account.
    for account_id in ids:
        await pgbench_script.capture_consume(database_url, account_id)
    statements = await pgbench_script.capture_consume(database_url, ids[0])
    script = pgbench_script.build_script(statements, ACCOUNTS, CLIENTS, account_offset=offset)
    (tmp_path / "consume.pgbench").write_text(script.text)
    rows_before = sum([await ledger_rows(a) for a in ids])

    command = pgbench_script.pgbench_command(
        script, str(tmp_path / "consume.pgbench"), database_url, CLIENTS, transactions=TRANSACTIONS_PER_CLIENT
    )
    finished = subprocess.run(command, capture_output=True, text=True, timeout=60)

    assert finished.returncode == 0, finished.stderr[-2000:]
    assert "number of failed transactions: 0" in finished.stdout
    assert sum([await ledger_rows(a) for a in ids]) == rows_before + CLIENTS * TRANSACTIONS_PER_CLIENT
    for account_id in ids:
        await assert_ledger_balanced(account_id)
