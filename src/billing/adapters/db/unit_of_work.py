"""PostgreSQL storage: the units of work of service/ports.py on a psycopg pool.

Three kinds, one class:
- transaction: BEGIN on a connection of its own; wallets loaded for change are locked
  (SELECT ... FOR UPDATE); the queued wallet writes and COMMIT at commit().
- unlocked: autocommit; one wallet read, then at most one wallet write, which checks the
  account version it was planned against and is atomic on its own (a conflict raises
  ConcurrentModification). A change that one wallet statement cannot carry (an account
  insert, a resume token, a write that adds no ledger entry) raises NeedsTransaction.
- reader: autocommit; each statement reads its own snapshot.
- single write: autocommit; one statement that is atomic by itself (a record that goes with
  nothing else), without the BEGIN and COMMIT round trips of a transaction.
With a WalletBatcher (group commit), the wallet reads and writes of unlocked and reading
units of work join those of concurrent requests in one statement; they take a connection of
their own only for anything else, and only when they first need it.

Driver failures (connection loss, pool exhaustion, timeouts, deadlocks) leave a unit of
work as the service-level Unavailable; the use cases and the API never see psycopg.
"""

from __future__ import annotations

import enum
from datetime import datetime
from types import TracebackType
from typing import Any, Callable, Iterable, NoReturn

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from billing.adapters.db.api_keys import PostgresApiKeys
from billing.adapters.db.audit_entries import PostgresAuditTrail
from billing.adapters.db.refund_intents import PostgresRefundIntents
from billing.adapters.db.availability import ALWAYS_AVAILABLE, Availability
from billing.adapters.db.coalescer import BatcherStopped
from billing.adapters.db.holds import PostgresHolds
from billing.adapters.db.ledger_history import PostgresLedgerHistory
from billing.adapters.db.payment_repositories import (
    PostgresPaymentProfiles, PostgresPayments, PostgresPlanChanges, PostgresUpkeepQueue, PostgresProviderEventInbox,
)
from billing.adapters.db.console_logins import PostgresConsoleLogins
from billing.adapters.db.resume_tokens import PostgresResumeTokens
from billing.adapters.db.stripe_inbox import PostgresStripeInbox
from billing.adapters.db.wallet_batcher import CONFLICT_FAILURES, WalletBatcher
from billing.adapters.db.webhook_admin import PostgresDeliveryLog, PostgresWebhookEndpoints
from billing.adapters.db.wallet_queries import (
    WalletRead, WalletQueries, advances_version, save_wallets, wallet_document,
)
from billing.domain.events import WalletChanged, WalletEvent
from billing.domain.idempotency import StoredAnswer
from billing.domain.wallet import Account, Wallet
from billing.service.ports import ConcurrentModification, NeedsTransaction, Unavailable
from billing.settings import NO_POOLER, TRANSACTION_POOLER_PREPARED, libpq_url

# A request waits at most this long for a connection: while the database is down the pool has
# none, and the request must answer 503 within ~2 s (before the probe has confirmed the outage;
# after that, units of work fail at once). A pool this busy for this long is overloaded anyway.
POOL_TIMEOUT_SECONDS = 1.0
# The pool's own reconnection (per connection, backing off 1, 2, 4 ... s) gives up after this:
# a long backoff would keep the pool empty long after the database is back. The availability
# probe refills the pool when the database answers again (pool.check()), and a waiting
# request grows it too.
RECONNECT_GIVE_UP_SECONDS = 3.0
STATEMENT_TIMEOUT_MS = 5000
SESSION_OPTIONS = f"-c statement_timeout={STATEMENT_TIMEOUT_MS} -c timezone=UTC"
# statement_timeout runs on the server: a database host that vanished (a failover without a
# reset) would leave a request waiting on its socket for the kernel's TCP timeouts (~15
# minutes). libpq's keepalives and TCP_USER_TIMEOUT bound that to ~15 s; ignored on Unix sockets.
DEAD_PEER_DETECTION = {
    "connect_timeout": 2, "keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
    "keepalives_count": 2, "tcp_user_timeout": 15_000,
}
# What the service calls Unavailable: the database is unreachable, saturated or timed out.
# (Deadlocks and serialization failures are OperationalErrors too.)
DRIVER_OUTAGES = (psycopg.OperationalError, PoolTimeout, BatcherStopped)


def connection_options(pooler: str = NO_POOLER) -> dict[str, Any]:
    """What every connection of the service is opened with (the pool's and the probe's), to PostgreSQL
    itself or through `pooler` (BILLING_DB_POOLER). Through a transaction-mode pooler each transaction may
    run on another server connection: a statement psycopg prepared on one (after prepare_threshold runs)
    is missing on the next, or, under the same name, is another client's, which answers with its rows
    (docs/decisions.md). So nothing is prepared unless the pooler keeps prepared statements apart
    (pgbouncer >= 1.21, max_prepared_statements). pgbouncer refuses the startup `options` (1.18), so
    statement_timeout and timezone are then the role's defaults on the server (docs/configuration.md)."""
    if pooler == NO_POOLER:
        return {"options": SESSION_OPTIONS, **DEAD_PEER_DETECTION}
    if pooler == TRANSACTION_POOLER_PREPARED:
        return dict(DEAD_PEER_DETECTION)
    return {"prepare_threshold": None, **DEAD_PEER_DETECTION}


async def open_pool(database_url: str, size: int, wait: bool = True, pooler: str = NO_POOLER) -> AsyncConnectionPool:
    """A fixed-size pool: connections opened per burst cost more than waiting for one.

    wait=False (the server): returns at once, the pool fills in the background, so a server
    starts while the database is down and serves when it appears. pooler: BILLING_DB_POOLER."""
    pool = AsyncConnectionPool(
        conninfo=libpq_url(database_url),
        min_size=size,
        max_size=size,
        timeout=POOL_TIMEOUT_SECONDS,
        reconnect_timeout=RECONNECT_GIVE_UP_SECONDS,
        kwargs=connection_options(pooler),
        reset=_reset_to_transactions,
        open=False,
    )
    await pool.open(wait=wait)
    return pool


async def _reset_to_transactions(connection: psycopg.AsyncConnection) -> None:
    """Every connection goes back to the pool in transaction mode, whoever used it."""
    await connection.set_autocommit(False)


class _Kind(enum.Enum):
    TRANSACTION = "transaction"
    UNLOCKED = "unlocked"
    READER = "reader"
    SINGLE_WRITE = "single write"


class PostgresStorage:
    """`availability` (availability.py) says whether the database answers: while it does not,
    every unit of work fails at once with Unavailable, before it waits for the pool.
    A unit of work's commit hands over what it wrote as domain events (collect_new_events: a
    WalletChanged for every wallet, then the events they recorded), which the message bus handles."""

    def __init__(
        self, pool: AsyncConnectionPool, batcher: WalletBatcher | None = None,
        availability: Availability = ALWAYS_AVAILABLE,
    ):
        self.pool = pool
        self.batcher = batcher
        self.availability = availability

    def transaction(self) -> PostgresUnitOfWork:
        return PostgresUnitOfWork(self.pool, _Kind.TRANSACTION, None, self.availability)

    def unlocked(self) -> PostgresUnitOfWork:
        return PostgresUnitOfWork(self.pool, _Kind.UNLOCKED, self.batcher, self.availability)

    def reader(self) -> PostgresUnitOfWork:
        return PostgresUnitOfWork(self.pool, _Kind.READER, self.batcher, self.availability)

    def single_write(self) -> PostgresUnitOfWork:
        return PostgresUnitOfWork(self.pool, _Kind.SINGLE_WRITE, None, self.availability)


class _LazyConnection:
    """The unit of work's connection, taken from the pool at its first statement."""

    def __init__(self, unit: PostgresUnitOfWork):
        self._unit = unit
        self._statements = 0

    async def execute(self, query: Any, params: Any = None) -> psycopg.AsyncCursor:
        self._statements += 1
        # Two statements without a transaction would not be all or nothing.
        assert self._statements == 1 or self._unit.kind is not _Kind.SINGLE_WRITE, "a single write is one statement"
        return await (await self._unit.connection()).execute(query, params)


class PostgresUnitOfWork:
    def __init__(
        self, pool: AsyncConnectionPool, kind: _Kind, batcher: WalletBatcher | None,
        availability: Availability = ALWAYS_AVAILABLE,
    ):
        self._availability = availability
        self._new_events: list[WalletEvent] = []
        self._pool = pool
        self._kind = kind
        self._batcher = batcher
        self._connection: psycopg.AsyncConnection | None = None
        self._driver = _LazyConnection(self)
        self._wallets = PostgresWallets(self, WalletQueries(self._driver), batcher)
        self._payments = PostgresPayments(self._driver)
        self._holds = PostgresHolds(self._driver)

    @property
    def is_transaction(self) -> bool:
        return self._kind is _Kind.TRANSACTION

    @property
    def kind(self) -> _Kind:
        return self._kind

    @property
    def wallets(self) -> PostgresWallets:
        return self._wallets

    @property
    def resume_tokens(self) -> PostgresResumeTokens:
        if self._kind is _Kind.UNLOCKED:
            # A token is used or issued together with the change it belongs to.
            raise NeedsTransaction("resume tokens change only inside a transaction")
        return PostgresResumeTokens(self._driver)

    @property
    def history(self) -> PostgresLedgerHistory:
        return PostgresLedgerHistory(self._driver)

    @property
    def payments(self) -> PostgresPayments:
        if self._kind is _Kind.UNLOCKED:
            # A payment record is written with the credit or refund it belongs to.
            raise NeedsTransaction("payments change only inside a transaction")
        return self._payments

    @property
    def holds(self) -> PostgresHolds:
        if self._kind is _Kind.UNLOCKED:
            # A hold row is written with the reservations its wallet write carries.
            raise NeedsTransaction("holds change only inside a transaction")
        return self._holds

    @property
    def payment_profiles(self) -> PostgresPaymentProfiles:
        return PostgresPaymentProfiles(self._driver)

    @property
    def provider_events(self) -> PostgresProviderEventInbox:
        return PostgresProviderEventInbox(self._driver)

    @property
    def upkeep_queue(self) -> PostgresUpkeepQueue:
        return PostgresUpkeepQueue(self._driver)

    @property
    def plan_changes(self) -> PostgresPlanChanges:
        return PostgresPlanChanges(self._driver)

    @property
    def webhook_endpoints(self) -> PostgresWebhookEndpoints:
        if self._kind is _Kind.UNLOCKED:
            raise NeedsTransaction("webhook endpoints change only inside a transaction")
        return PostgresWebhookEndpoints(self._driver)

    @property
    def delivery_log(self) -> PostgresDeliveryLog:
        if self._kind is _Kind.UNLOCKED:
            raise NeedsTransaction("deliveries are replayed only inside a transaction")
        return PostgresDeliveryLog(self._driver)

    @property
    def audit_entries(self) -> PostgresAuditTrail:
        if self._kind is _Kind.UNLOCKED:
            # An entry is written in the transaction of the change it records.
            raise NeedsTransaction("audit entries are written only inside a transaction")
        return PostgresAuditTrail(self._driver)

    @property
    def refund_intents(self) -> PostgresRefundIntents:
        if self._kind is _Kind.UNLOCKED:
            raise NeedsTransaction("refund intents change only inside a transaction")
        return PostgresRefundIntents(self._driver)

    @property
    def stripe_inbox(self) -> PostgresStripeInbox:
        return PostgresStripeInbox(self._driver)

    @property
    def stored_keys(self) -> PostgresApiKeys:
        return PostgresApiKeys(self._driver)

    @property
    def console_logins(self) -> PostgresConsoleLogins:
        return PostgresConsoleLogins(self._driver)

    async def connection(self) -> psycopg.AsyncConnection:
        if self._connection is None:
            connection = await self._pool.getconn()
            try:
                # Set either way: a pooled connection must not carry its previous user's mode
                # (a transaction in autocommit would hold no lock and roll nothing back).
                await connection.set_autocommit(not self.is_transaction)
            except BaseException:
                await self._pool.putconn(connection)
                raise
            self._connection = connection
        return self._connection

    async def __aenter__(self) -> PostgresUnitOfWork:
        if not self._availability.available:
            raise Unavailable("the database is unreachable", kind="database")
        if self.is_transaction:
            try:
                await self.connection()
            except DRIVER_OUTAGES as outage:
                raise Unavailable(str(outage), kind="database") from outage
        return self

    async def commit(self) -> None:
        """Sends the queued wallet writes, then COMMIT (implicit when unlocked)."""
        assert self._kind is not _Kind.READER, "a reader writes nothing"
        documents, self._wallets.pending = self._wallets.pending, []
        if self._kind is _Kind.SINGLE_WRITE:
            assert not documents and not self._payments.pending and not self._holds.pending, "a single write is one statement"
            return  # written (autocommit) when it ran
        if self.is_transaction:
            if documents:
                await save_wallets(self._driver, documents, all_or_nothing=True)
            await self._payments.flush()
            await self._holds.flush()
            await (await self.connection()).commit()
            self._committed(documents)
            return
        assert len(documents) <= 1, "an unlocked unit of work saves one wallet"
        assert not self._holds.pending, "holds are written in transactions only"
        if documents:
            await self._save_unlocked(documents[0])
            self._committed(documents)

    def _committed(self, documents: list[dict[str, Any]]) -> None:
        saved, self._wallets.saved = self._wallets.saved, []
        self._new_events += [WalletChanged(document["account_id"]) for document in documents]
        self._new_events += [event for wallet in saved for event in wallet.events]

    def collect_new_events(self) -> list[WalletEvent]:
        events, self._new_events = self._new_events, []
        return events

    async def _save_unlocked(self, document: dict[str, Any]) -> None:
        if not advances_version(document):
            raise NeedsTransaction("a change without a ledger entry is invisible to a version check")
        try:
            if self._batcher is not None:
                saved = await self._batcher.save(document)
            else:
                saved = document["account_id"] in await save_wallets(self._driver, [document], all_or_nothing=False)
        except CONFLICT_FAILURES as conflict:
            # The version check failed, or another writer took the same sequence numbers (or
            # the write's self-check found the stored wallet not as read): retried as a conflict;
            # the transaction fallback reports it if it persists.
            raise ConcurrentModification(str(conflict)) from conflict
        if not saved:
            raise ConcurrentModification(f"account {document['account_id']} changed since it was read")

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        connection, self._connection = self._connection, None
        try:
            if connection is not None:
                await _release(self._pool, connection)
        except DRIVER_OUTAGES as outage:
            if exc is None:
                raise Unavailable(str(outage), kind="database") from outage
        if isinstance(exc, DRIVER_OUTAGES):
            raise Unavailable(str(exc), kind="database") from exc


async def _release(pool: AsyncConnectionPool, connection: psycopg.AsyncConnection) -> None:
    try:
        if connection.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            await connection.rollback()
    finally:
        await pool.putconn(connection)  # the pool's reset puts it back in transaction mode


class PostgresWallets:
    """The wallet repository of one unit of work: SQL on its connection, or the batcher's."""

    def __init__(self, unit: PostgresUnitOfWork, repository: WalletQueries, batcher: WalletBatcher | None):
        self._unit = unit
        self._repository = repository
        self._batcher = batcher
        self.pending: list[dict[str, Any]] = []  # documents for SAVE_WALLETS, sent at commit
        self.saved: list[Wallet] = []  # their wallets, whose recorded events follow the commit

    async def exists(self, account_id: str) -> bool:
        return await self._repository.exists(account_id)

    async def add_account(self, account: Account) -> bool:
        if not self._unit.is_transaction:
            _needs_transaction("opening an account")
        return await self._repository.add_account(account)

    async def read(
        self, account_id: str, now: datetime, idempotency_key: str | None = None,
        expired_since: datetime | None = None,
    ) -> tuple[Wallet | None, StoredAnswer | None]:
        if self._batcher is not None:
            return await self._batcher.read(WalletRead(account_id, now, idempotency_key, expired_since))
        return await self._repository.read(account_id, now, idempotency_key, expired_since)

    async def load_for_change(
        self, account_id: str, now: datetime, idempotency_key: str | None = None,
        expired_since: datetime | None = None,
    ) -> tuple[Wallet | None, StoredAnswer | None]:
        if self._unit.is_transaction:
            return await self._repository.lock_and_load(account_id, now, idempotency_key, expired_since)
        return await self.read(account_id, now, idempotency_key, expired_since)

    def save(self, wallet: Wallet, now: datetime, answer: StoredAnswer | None = None) -> None:
        document = wallet_document(wallet, now, answer)
        if document is not None:
            self.pending.append(document)
        if document is not None or wallet.events:
            self.saved.append(wallet)


def _needs_transaction(what: str) -> NoReturn:
    raise NeedsTransaction(f"{what} needs a transaction")
