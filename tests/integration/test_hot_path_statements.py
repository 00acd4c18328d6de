"""Every statement the hot paths send names one account, as a sharded PostgreSQL (Citus, distributed
by account_id) needs to send it to one shard; and no transaction touches two accounts. The
statements are recorded as the service sends them (tests/support/statement_recorder.py, the
pgbench capture's mechanism) while the use cases run: opening an account, Consume (charged,
replayed, refused with a resume token, with a daily grant on the way), GetBalance,
CheckSufficientBatch, holds (place, commit, release, list), usage and history.

Two ways a statement names its account (docs/scaling.md, "Routing"):
- keyed: `account_id = %(account_id)s` (or `%s`), or an INSERT of one account_id: Citus's router
  planner sends it to the account's shard;
- by document: the wallet statements of wallet_sql.py carry their accounts in a JSON document and
  join on `account_id = w.account_id`. With one account in the document (a lone request, or
  BILLING_GROUP_COMMIT=0) it names one account, but the shard is not visible to Citus's planner
  from the statement text: on Citus these statements need a routing predicate (left to do).
The one exception to "one account per statement" is group commit: the batcher's statement carries
the reads and writes of several accounts at once (each in its own autocommit statement, so still
no transaction of two accounts on this PostgreSQL; on Citus a multi-shard statement, see the doc).
"""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import pytest

from billing.adapters.catalog_file import load_catalog
from billing.adapters.db import wallet_sql
from billing.adapters.db.payment_repositories import ACCOUNTS_DUE
from billing.adapters.db.distribution import PER_ACCOUNT_TABLES, every_placed_table
from billing.adapters.db.unit_of_work import PostgresStorage
from billing.adapters.db.wallet_batcher import WalletBatcher, account_hash_bucket
from billing.domain.errors import InsufficientAiTime
from billing.service.accounts import create_account
from billing.service.balance import get_balance
from billing.service.batch_check import check_sufficient_batch
from billing.service.consume import consume
from billing.service.dependencies import Dependencies
from billing.service.history import list_events
from billing.service.holds import commit_hold, list_open_holds, place_hold, release_hold
from billing.service.idle_upkeep import upkeep_idle_accounts
from billing.service.usage import get_usage
from billing.settings import DEFAULT_CATALOG_PATH
from tests.support.defaults import CHECKOUT_PAGES
from tests.support.statement_recorder import SentStatement, StatementRecorder

# The wallet statements whose accounts travel in a JSON document (wallet_sql.py).
DOCUMENT_STATEMENTS = {
    wallet_sql.READ_WALLETS: "READ_WALLETS",
    wallet_sql.SAVE_WALLETS: "SAVE_WALLETS",
    wallet_sql.READ_AND_SAVE_WALLETS: "READ_AND_SAVE_WALLETS",
}
_KEYED = re.compile(r"\baccount_id\s*=\s*%(?:\(\w+\))?s")
_INSERT_ONE = re.compile(r"^\s*INSERT\s+INTO\s+\w+\s*\(\s*account_id\b[^)]*\)\s*VALUES\s*\(\s*%(?:\(\w+\))?s", re.I)
_WRITTEN = re.compile(r"\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+([a-z_]+)", re.I)


def routing_of(statement: SentStatement) -> str:
    """How the statement names its account: 'document', 'keyed', or 'none'."""
    if statement.sql in DOCUMENT_STATEMENTS:
        return "document"
    if _KEYED.search(statement.sql) or _INSERT_ONE.search(statement.sql):
        return "keyed"
    return "none"


def accounts_named(statement: SentStatement, accounts: set[str]) -> set[str]:
    return {value for value in statement.values() if isinstance(value, str) and value in accounts}


def per_account(statements: list[SentStatement]) -> list[SentStatement]:
    return [s for s in statements if s.tables(PER_ACCOUNT_TABLES)]


def deps_recorded_by(recorder: StatementRecorder, pool, clock, batcher: WalletBatcher | None) -> Dependencies:
    catalog, _ = load_catalog(DEFAULT_CATALOG_PATH)
    return Dependencies(storage=PostgresStorage(recorder.pool(pool, "storage"), batcher), catalog=catalog,
                        clock=clock, checkout_pages=CHECKOUT_PAGES)


async def run_the_hot_paths(deps: Dependencies, account_id: str, advance) -> None:
    await create_account(deps, account_id, "free")
    await consume(deps, account_id, "build", 60, "k-1")
    await consume(deps, account_id, "build", 60, "k-2")
    await consume(deps, account_id, "build", 60, "k-1")  # a retry: replayed
    with pytest.raises(InsufficientAiTime):
        await consume(deps, account_id, "build", 80_000, "k-3")  # refused: the locked path, a resume token
    await get_balance(deps, account_id)
    await check_sufficient_batch(deps, account_id, [("build", 100), ("build", 5_000)])
    await place_hold(deps, account_id, "h-1", "build", 300)
    await commit_hold(deps, account_id, "h-1", 100, final=False)
    await commit_hold(deps, account_id, "h-1", 200, final=True)
    await place_hold(deps, account_id, "h-2", "build", 300)
    await list_open_holds(deps, account_id)
    await release_hold(deps, account_id, "h-2")
    await get_usage(deps, account_id, "day")
    await list_events(deps, account_id, 50, "")
    advance(days=1)
    await consume(deps, account_id, "build", 60, "k-4")  # the day's bonus granted on the way


@pytest.fixture(params=["group_commit", "one_by_one"])
async def recorded(request, pool, clock):
    recorder = StatementRecorder()
    batcher = WalletBatcher(recorder.pool(pool, "batcher")) if request.param == "group_commit" else None
    yield recorder, deps_recorded_by(recorder, pool, clock, batcher)
    if batcher is not None:
        await batcher.close()


async def test_every_hot_statement_names_one_account_and_routes_by_it(recorded, user_id, advance):
    recorder, deps = recorded
    other = f"{user_id}-other"  # opened first, so a statement naming it by accident would show
    await create_account(deps, other, "free")
    recorder.statements.clear()
    await run_the_hot_paths(deps, user_id, advance)

    statements = per_account(recorder.statements)
    assert len(statements) > 20  # the paths ran and were recorded
    accounts = {user_id, other}
    assert [(s.sql, accounts_named(s, accounts)) for s in statements if accounts_named(s, accounts) != {user_id}] == []
    assert [s.sql for s in statements if routing_of(s) == "none"] == []
    # The document statements sent here carry one account each (nothing else was in flight).
    assert {DOCUMENT_STATEMENTS[s.sql] for s in statements if routing_of(s) == "document"} >= {
        "READ_WALLETS", "SAVE_WALLETS"}


async def test_no_hot_transaction_touches_two_accounts_or_writes_a_shared_table(recorded, user_id, advance):
    recorder, deps = recorded
    await run_the_hot_paths(deps, user_id, advance)
    await run_the_hot_paths(deps, f"{user_id}-2", advance)

    accounts = {user_id, f"{user_id}-2"}
    by_transaction: dict[int, set[str]] = {}
    for statement in recorder.statements:
        by_transaction.setdefault(statement.transaction, set()).update(accounts_named(statement, accounts))
    assert [t for t, named in by_transaction.items() if len(named) > 1] == []
    known = set(every_placed_table())
    written = {table for s in recorder.statements for table in _WRITTEN.findall(s.sql) if table in known}
    assert sorted(written - set(PER_ACCOUNT_TABLES)) == []


async def consume_concurrently(pool, clock, accounts: list[str], shard_of=None) -> StatementRecorder:
    """Opens `accounts`, then records 5 concurrent Consumes of each through group commit."""
    recorder = StatementRecorder()
    batcher = WalletBatcher(recorder.pool(pool, "batcher"), shard_of=shard_of)
    try:
        deps = deps_recorded_by(recorder, pool, clock, batcher)
        for account_id in accounts:
            await create_account(deps, account_id, "free")
        recorder.statements.clear()
        await asyncio.gather(*(consume(deps, a, "build", 10, f"g-{n}") for n in range(5) for a in accounts))
    finally:
        await batcher.close()
    return recorder


async def test_group_commit_is_the_one_statement_that_names_several_accounts(pool, clock, user_id):
    """The documented exception: concurrent requests of different accounts share the batcher's
    statement. On Citus that statement spans shards (docs/scaling.md, "Group commit on Citus")."""
    accounts = [f"{user_id}-{i}" for i in range(6)]
    recorder = await consume_concurrently(pool, clock, accounts)

    several = [s for s in per_account(recorder.statements) if len(accounts_named(s, set(accounts))) > 1]
    assert several, "concurrent consumes of six accounts never shared a statement"
    assert {(s.source, routing_of(s)) for s in several} == {("batcher", "document")}
    # Each is its own autocommit transaction: no other statement shares its transaction.
    transactions = {s.transaction for s in several}
    assert [s for s in recorder.statements if s.transaction in transactions and s not in several] == []


async def test_group_commit_by_shard_never_mixes_shards_in_a_statement(pool, clock, user_id):
    """With a shard map (here a stand-in hash into 2 buckets), each batch is one shard's: batches
    still carry several accounts, never two shards'."""
    shard_of = account_hash_bucket(2)
    candidates = [f"{user_id}-{i}" for i in range(100)]
    accounts = [a for a in candidates if shard_of(a) == 0][:4] + [a for a in candidates if shard_of(a) == 1][:4]
    recorder = await consume_concurrently(pool, clock, accounts, shard_of)

    batched = [s for s in per_account(recorder.statements) if s.source == "batcher"]
    shards_named = [{shard_of(a) for a in accounts_named(s, set(accounts))} for s in batched]
    assert [shards for shards in shards_named if len(shards) > 1] == []
    assert any(len(accounts_named(s, set(accounts))) > 1 for s in batched)


async def test_billing_tick_reads_across_accounts_once_then_changes_each_alone(recorded, user_id, advance):
    """`billing tick` (idle upkeep; here settling expired holds): its one cross-account statement is
    the unlocked read of the accounts due (a multi-shard SELECT on Citus); each upkeep is its
    account's own change."""
    recorder, deps = recorded
    accounts = [f"{user_id}-{i}" for i in range(3)]
    for account_id in accounts:
        await create_account(deps, account_id, "free")
        await place_hold(deps, account_id, "h-1", "build", 100, ttl_seconds=60)
    advance(seconds=61)
    recorder.statements.clear()
    assert await upkeep_idle_accounts(deps) >= len(accounts)

    unrouted = [s for s in per_account(recorder.statements) if routing_of(s) == "none"]
    assert unrouted and {s.sql for s in unrouted} == {ACCOUNTS_DUE}
    by_transaction: dict[int, set[str]] = {}
    for statement in recorder.statements:
        by_transaction.setdefault(statement.transaction, set()).update(accounts_named(statement, set(accounts)))
    assert [t for t, named in by_transaction.items() if len(named) > 1] == []
    assert set().union(*by_transaction.values()) == set(accounts)  # each was changed
