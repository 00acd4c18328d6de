"""The composition root: the service built from its settings, and taken apart in reverse.

Everything a process of the service needs (the connection pool, the database's availability probe,
group commit, the change notifier, the payment provider, the message bus and its handlers) is made
here, once, inside the caller's AsyncExitStack (and, for a server, the outbound events' sender:
start_webhook_sender). Each piece registers its own teardown as it is
built, so teardown runs in the reverse order of construction by construction, whatever fails
half-way. The server (entrypoints/server.py) adds its gRPC pieces on the same stack; `billing tick` and
`billing keys` use the same root with fewer pieces.
"""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from psycopg_pool import AsyncConnectionPool

from billing.adapters.catalog_file import load_catalog
from billing.adapters.clock import SystemClock, service_clock
from billing.adapters.db.availability import ALWAYS_AVAILABLE, Availability, DatabaseAvailability
from billing.adapters.db.change_notifier import ChangeNotifier
from billing.adapters.db.operator_reads import PostgresOperatorReads
from billing.adapters.db.outbound_queue import PostgresOutboundQueue
from billing.adapters.db.read_routing import ReplayFence, RoutingStorage, StandbyBreaker
from billing.adapters.db.service_records import PostgresServiceRecords
from billing.adapters.db.unit_of_work import PostgresStorage, connection_options, open_pool
from billing.adapters.db.wallet_batcher import WalletBatcher
from billing.adapters.key_secrets import MasterKey, SessionKeyIssuer
from billing.adapters.metrics import PrometheusMetrics
from billing.adapters.stripe_payments import StripePayments
from billing.adapters.webhook_http import HttpWebhookTransport
from billing.adapters.webhook_targets import WebhookTargetPolicy
from billing.domain.activity import ActivityCounts
from billing.domain.events import WalletEvent
from billing.service.dependencies import CheckoutPages, Dependencies
from billing.service.handlers import HANDLERS
from billing.service.messagebus import Handler, MessageBus
from billing.service.ports import Clock, NobodyListening, WalletChangeNotifier
from billing.service.webhook_sender import SenderOptions, WebhookSender
from billing.settings import Settings, libpq_url

log = logging.getLogger("billing.bootstrap")


@dataclass(frozen=True)
class Service:
    """What the root built: the use cases' dependencies and the pieces an entry point adds to."""

    settings: Settings
    deps: Dependencies
    pool: AsyncConnectionPool
    availability: Availability
    metrics: PrometheusMetrics
    catalog_fingerprint: str
    master_key: MasterKey
    # What this process counted per hour for the console's activity panel (flushed by a server's reporter).
    activity: ActivityCounts


async def build_service(
    settings: Settings, stack: AsyncExitStack, *, serving: bool = False, pool_size: int | None = None,
    clock: Clock | None = None, handlers: Mapping[type[WalletEvent], tuple[Handler, ...]] = HANDLERS,
    storage_pool: Callable[[AsyncConnectionPool], Any] | None = None, announce_changes: bool = True,
) -> Service:
    """serving: a server's process (group commit when the settings ask for it, the availability
    probe, the payment provider); else a command's (its own few connections, no provider).
    storage_pool: what the storage takes its connections from, around the pool (the bench records
    every statement a use case sends). announce_changes=False: no change notifier (its connection
    and task), for a command that writes no wallet (`billing keys`); committed changes then tell nobody."""
    catalog, fingerprint = load_catalog(settings.server.catalog_path)
    # Nothing here waits for the database: a server starts while it is down and serves when it
    # appears; until then its probe says so and calls answer UNAVAILABLE at once.
    database = settings.database
    pool = await open_pool(database.url, pool_size or database.pool_size, wait=not serving, pooler=database.pooler)
    stack.push_async_callback(pool.close)
    metrics = PrometheusMetrics()
    metrics.watch_pool(pool.get_stats)
    availability: Availability = ALWAYS_AVAILABLE
    if serving:
        probe = DatabaseAvailability(libpq_url(database.url), connection_options(database.pooler), pool=pool)
        stack.push_async_callback(probe.close)
        availability = probe
    batcher = None
    if serving and settings.database.group_commit:
        batcher = WalletBatcher(pool, observe_batch=metrics.observe_batch, availability=availability)
        stack.push_async_callback(_close_batcher, batcher)
    wallet_changes: WalletChangeNotifier = NobodyListening()
    if announce_changes:
        # On the PostgreSQL itself: its connection keeps a session setting (synchronous_commit off), which
        # through a transaction-mode pooler would stay on whichever server connection ran it, for others.
        notifier = ChangeNotifier(libpq_url(database.session_url), connection_options())
        notifier.start()
        stack.push_async_callback(notifier.close)
        wallet_changes = notifier
    master = MasterKey.load(settings.keys.master_key_path, settings.keys.master_key_hex)
    storage = PostgresStorage(storage_pool(pool) if storage_pool else pool, batcher, availability)
    use_cases_storage: PostgresStorage | RoutingStorage = storage
    if serving and settings.database.read_url:
        use_cases_storage = await _with_read_replica(settings, storage, pool_size or settings.database.pool_size, stack)
        metrics.watch_read_routing(use_cases_storage.counts)
    # Signatures and key expiry follow the wall clock (callers sign with it); periods, days and
    # expiries of minutes follow the service's clock, which local use may run ahead.
    service_time = clock or service_clock(settings.clock.offset_seconds, settings.clock.offset_file)
    activity = ActivityCounts()
    metrics.count_activity(activity)
    deps = Dependencies(
        storage=use_cases_storage, catalog=catalog, clock=service_time,
        wall_clock=SystemClock(), key_issuer=SessionKeyIssuer(master), metrics=metrics,
        payments=payment_provider(settings) if serving else None,
        checkout_pages=CheckoutPages(settings.payments.checkout_success_url, settings.payments.checkout_cancel_url),
        bus=MessageBus(handlers), wallet_changes=wallet_changes,
        webhook_targets=WebhookTargetPolicy(settings.webhooks.allow_private),
        operator_reads=PostgresOperatorReads(storage), service_records=PostgresServiceRecords(storage),
    )
    return Service(settings, deps, pool, availability, metrics, fingerprint, master, activity)


async def _with_read_replica(
    settings: Settings, primary: PostgresStorage, pool_size: int, stack: AsyncExitStack,
) -> RoutingStorage:
    """DATABASE_READ_URL: the standby's own pool (and group commit of its reads), the replay fence, and the
    storage that routes the reads that may use it (adapters/db/read_routing.py). Nothing here waits for the
    standby: while it is down, reads go to the primary."""
    read_url = settings.database.read_url
    assert read_url is not None
    standby_pool = await open_pool(read_url, pool_size, wait=False)
    stack.push_async_callback(standby_pool.close)
    standby_batcher = None
    if settings.database.group_commit:
        standby_batcher = WalletBatcher(standby_pool)
        stack.push_async_callback(standby_batcher.close)
    breaker = StandbyBreaker()
    fence = ReplayFence(libpq_url(settings.database.url), libpq_url(read_url), breaker,
                        settings.database.read_replica_wait_seconds)
    stack.push_async_callback(fence.close)
    fence.start()
    log.info("read replica: balance, usage and history reads may use DATABASE_READ_URL once it has replayed "
             "what they must see (waiting at most %.0f ms)", settings.database.read_replica_wait_seconds * 1000)
    return RoutingStorage(primary, PostgresStorage(standby_pool, standby_batcher), fence, breaker)


def start_webhook_sender(service: Service, stack: AsyncExitStack) -> WebhookSender | None:
    """The outbound events' sender of a server process (None when BILLING_WEBHOOK_SENDER=0), started
    on the stack: stopped before the pool closes, its sends in flight given a few seconds."""
    settings = service.settings.webhooks
    if not settings.send:
        return None
    assert service.deps.wall_clock is not None
    sender = WebhookSender(
        PostgresOutboundQueue(service.pool),
        HttpWebhookTransport(service.deps.wall_clock, allow_private=settings.allow_private),
        service.deps.clock,
        SenderOptions(poll_seconds=settings.poll_seconds, dispatch_batch=settings.dispatch_batch,
                      claim_batch=settings.claim_batch, concurrency=settings.concurrency),
        metrics=service.metrics,
    )
    sender.start()
    stack.push_async_callback(sender.close)
    return sender


def payment_provider(settings: Settings) -> StripePayments | None:
    stripe_settings = settings.payments.stripe
    if stripe_settings is None:
        return None
    return StripePayments(stripe_settings.secret_key, stripe_settings.webhook_secrets, stripe_settings.api_base)


async def _close_batcher(batcher: WalletBatcher) -> None:
    await batcher.close()
    log.info("group commit: %d wallet reads and %d wallet writes in %d statements",
             batcher.reads, batcher.writes, batcher.batches.batches)
