"""The gRPC server: BillingService, health and reflection; graceful stop on SIGTERM."""

from __future__ import annotations

import asyncio
import atexit
import gc
import logging
import signal
import sys
from contextlib import AsyncExitStack
from datetime import datetime
from typing import Callable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from psycopg_pool import AsyncConnectionPool

from billing.adapters.db.api_keys import PostgresApiKeys
from billing.adapters.db.availability import DatabaseAvailability
from billing.adapters.db.change_listener import ChangeListener
from billing.adapters.db.pooler_sessions import warn_of_missing_session_defaults
from billing.adapters.db.unit_of_work import connection_options
from billing.adapters.hmac_auth import HmacAuthenticator, keep_refreshed, refresh_or_keep
from billing.adapters.metrics import MetricsEndpoint, PrometheusMetrics
from billing.api.interceptors import LayeredInterceptor, RpcMetrics, interceptor_chain
from billing.api.key_rate_limit import KeyRateLimiter
from billing.api.foreign_output import ForeignOutput
from billing.api.logs import log_handler, write_outage_summaries
from billing.api.operator_servicer import OperatorServicer
from billing.api.servicer import BillingServicer
from billing.api.time_budget import TimeBudgetInterceptor
from billing.bootstrap import Service, build_service, start_webhook_sender
from billing.domain.auth import ApiKey, Scope
from billing.domain.rate_limit import RateLimit
from billing.service.balance import get_balance
from billing.service.balance_hub import BalanceHub, WatchLimits
from billing.service.ports import Authenticator
from billing.service.replica_report import ReplicaReporter, this_replica
from billing.settings import NO_POOLER, Settings, libpq_url
from billing.entrypoints.startup import start_serving
from billing.v1 import billing_service_pb2, billing_service_pb2_grpc, operator_service_pb2, operator_service_pb2_grpc

log = logging.getLogger("billing.entrypoints.server")
MESSAGE_BYTES_MAX = 1024 * 1024
METADATA_BYTES_MAX = 96 * 1024
GC_YOUNG_THRESHOLD = 20_000
SERVICE_NAME = billing_service_pb2.DESCRIPTOR.services_by_name["BillingService"].full_name
OPERATOR_SERVICE_NAME = operator_service_pb2.DESCRIPTOR.services_by_name["OperatorService"].full_name
# grpc.health.v1 names: "" and SERVICE_NAME are SERVING while the database answers (readiness: Envoy and
# Kubernetes route calls by them); LIVENESS_SERVICE is SERVING as long as the process answers at all, so a
# database outage takes the pods out of rotation without getting them restarted (deploy/server.yaml).
LIVENESS_SERVICE = "liveness"


def create_server(
    servicer: BillingServicer, operator: OperatorServicer, address: str, authenticator: Authenticator | None, metrics: RpcMetrics | None = None,
    count_forbidden: Callable[[], None] | None = None, request_timeout_seconds: float | None = None,
    key_limiter: KeyRateLimiter | None = None,
) -> tuple[grpc.aio.Server, health.aio.HealthServicer, int]:
    interceptors = interceptor_chain(authenticator, metrics, count_forbidden, key_limiter)
    if request_timeout_seconds:
        interceptors.append(TimeBudgetInterceptor(request_timeout_seconds))
    server = grpc.aio.server(
        interceptors=[LayeredInterceptor(interceptors)],
        options=[
            ("grpc.max_receive_message_length", MESSAGE_BYTES_MAX),
            ("grpc.max_send_message_length", MESSAGE_BYTES_MAX),
            ("grpc.so_reuseport", 1),
            # Envoy forwards a REST request's raw body in a header for its signature (hmac_auth.py).
            ("grpc.max_metadata_size", METADATA_BYTES_MAX),
        ]
    )
    billing_service_pb2_grpc.add_BillingServiceServicer_to_server(servicer, server)
    operator_service_pb2_grpc.add_OperatorServiceServicer_to_server(operator, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, OPERATOR_SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME), server
    )
    port = server.add_insecure_port(address)
    return server, health_servicer, port


def key_rate_limiter(settings: Settings) -> KeyRateLimiter:
    return KeyRateLimiter({
        Scope(scope): RateLimit(per_second, 2 * per_second) if per_second > 0 else None
        for scope, per_second in settings.limits.key_rate_limits.items()
    })


def _share_key_limits(limiter: KeyRateLimiter, live_replicas: int) -> None:
    if live_replicas != limiter.replicas:
        # Tests wait for this line: the share a replica enforces from now on.
        log.info("per-key limits: this replica's share is 1/%d (%d live replicas)", live_replicas, live_replicas)
    limiter.share_among(live_replicas)


async def serve(settings: Settings) -> None:
    """Builds on the composition root (bootstrap.py) inside one AsyncExitStack: each piece's teardown
    is registered as it starts, so the stop runs in reverse (streams end, the server drains for the
    grace period, the listener, the webhook sender, the key refresher, the notifier, group commit, the probe,
    the pool)."""
    async with AsyncExitStack() as stack:
        service = await build_service(settings, stack, serving=True)
        await _serve(settings, service, stack)


async def _serve(settings: Settings, service: Service, stack: AsyncExitStack) -> None:
    deps, metrics, availability = service.deps, service.metrics, service.availability
    assert isinstance(availability, DatabaseAvailability)
    endpoint = _start_metrics_endpoint(metrics, settings)
    if endpoint is not None:
        stack.callback(endpoint.stop)
    authenticator = None
    if settings.keys.require_signatures:
        assert deps.wall_clock is not None
        pool = service.pool
        authenticator = HmacAuthenticator(
            service.master_key, deps.wall_clock, lambda now: _usable_keys(pool, now), metrics.auth_failed,
        )
        stack.callback(asyncio.create_task(keep_refreshed(authenticator), name="key refresher").cancel)
    limits = settings.limits
    watchers = BalanceHub(
        lambda account_id: get_balance(deps, account_id),
        WatchLimits(limits.max_watchers, limits.max_watchers_per_user, limits.watch_heartbeat_seconds),
    )
    metrics.watch_balance_streams(lambda: watchers.count)
    sender = start_webhook_sender(service, stack)
    # The console's health and activity panels: this process's heartbeat and hourly counts, every ~10 s.
    assert deps.service_records is not None
    key_limiter = key_rate_limiter(settings)
    reporter = ReplicaReporter(deps.service_records, service.activity, deps.clock, this_replica(deps.clock.now()),
                               live_replicas=lambda count: _share_key_limits(key_limiter, count))
    reporter.start()
    stack.push_async_callback(reporter.close)  # its last report after the server stopped serving

    def accounts_changed(account_ids: list[str]) -> None:
        watchers.accounts_changed(account_ids)
        if sender is not None:
            sender.wake()  # a wallet change may have written outbound events: dispatch them now

    # LISTEN is a session's: through a transaction-mode pooler it would listen on a server connection that
    # others then use, and hear nothing. The listener goes to the PostgreSQL itself (DATABASE_DIRECT_URL).
    listener = ChangeListener(libpq_url(settings.database.session_url), accounts_changed, watchers.resync,
                              connection_options())
    server, health_servicer, port = create_server(
        BillingServicer(deps, service.catalog_fingerprint, watchers),
        OperatorServicer(deps, keys_changed=lambda: _refresh_keys(authenticator)),
        f"{settings.server.grpc_host}:{settings.server.grpc_port}",
        authenticator, metrics=metrics, count_forbidden=lambda: metrics.auth_failed("forbidden_scope"),
        request_timeout_seconds=settings.server.request_timeout_seconds, key_limiter=key_limiter,
    )
    if settings.server.worker_port:
        # This worker alone, besides the shared port: for client-side balancing over workers.
        server.add_insecure_port(f"{settings.server.grpc_host}:{settings.server.worker_port}")
    stopping = asyncio.Event()

    async def set_health(serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving and not stopping.is_set() else (
            health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for service_name in ("", SERVICE_NAME):
            await health_servicer.set(service_name, status)

    async def load_keys() -> None:  # the keys that exist now sign from the first call on
        if authenticator is not None:
            await refresh_or_keep(authenticator)
        if settings.database.pooler != NO_POOLER:  # in the background: it never delays serving
            check = asyncio.create_task(warn_of_missing_session_defaults(service.pool), name="pooler sessions check")
            stack.callback(check.cancel)

    availability.on_change(set_health)
    await set_health(False)
    listener.start()
    stack.push_async_callback(listener.close)
    await server.start()
    await health_servicer.set(LIVENESS_SERVICE, health_pb2.HealthCheckResponse.SERVING)
    stack.push_async_callback(server.stop, settings.server.shutdown_grace_seconds)
    stack.push_async_callback(watchers.close)  # live balance streams end first (OK), not after the grace period
    # Everything allocated so far lives as long as the process: keep it out of the
    # collector's way, and collect young objects less often (fewer latency spikes).
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)
    log.info("billing gRPC server listening on %s:%d (catalog %s)", settings.server.grpc_host, port,
             deps.catalog.version)
    stack.callback(asyncio.create_task(start_serving(settings, availability, load_keys), name="startup").cancel)
    stack.callback(asyncio.create_task(write_outage_summaries(), name="outage summaries").cancel)

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()
    log.info("stopping: draining for up to %.0fs", settings.server.shutdown_grace_seconds)
    await set_health(False)


def _start_metrics_endpoint(metrics: PrometheusMetrics, settings: Settings) -> MetricsEndpoint | None:
    """/metrics on its own port; one that cannot be bound costs the metrics, not the service
    (Prometheus reports the target down)."""
    if not settings.metrics.port:
        return None
    try:
        endpoint = MetricsEndpoint.start(metrics.registry, settings.metrics.host, settings.metrics.port)
    except OSError as error:
        log.error("metrics: cannot listen on %s:%d (%s); serving without /metrics",
                  settings.metrics.host, settings.metrics.port, error)
        return None
    log.info("metrics on http://%s:%d/metrics", settings.metrics.host, endpoint.port)
    return endpoint


async def _refresh_keys(authenticator: HmacAuthenticator | None) -> None:
    if authenticator is not None:
        await refresh_or_keep(authenticator)


async def _usable_keys(pool: AsyncConnectionPool, now: datetime) -> list[ApiKey]:
    async with pool.connection() as connection:
        return await PostgresApiKeys(connection).usable(now)


def configure_logging(level: str, log_format: str = "json", wrap_foreign_output: bool = False) -> None:
    """One JSON object per line, or text (api/logs.py); every line names its call (request_ids.py).
    wrap_foreign_output (JSON only): what others write to fd 2 (gRPC core) becomes JSON lines too
    (api/foreign_output.py); a process serving gRPC asks for it, a supervisor of workers does not
    (each worker wraps its own, into the stderr they share)."""
    _quiet_chatty_libraries(level)
    if not (wrap_foreign_output and log_format == "json"):
        logging.basicConfig(level=level, handlers=[log_handler(log_format)])
        return
    foreign = ForeignOutput()
    logging.basicConfig(level=level, handlers=[log_handler(log_format, foreign.real_stderr)])
    foreign.start()  # after the handler: a line read before it would go to logging's last resort, fd 2
    atexit.register(foreign.restore)  # before logging's own shutdown (atexit runs last in, first out)


# Libraries that log a line at INFO for every request they make (the Stripe SDK: each API call and its
# answer): under a call, its one line is the service's own; their lines show at DEBUG.
CHATTY_LIBRARIES = ("stripe",)


def _quiet_chatty_libraries(level: str) -> None:
    if logging.getLevelName(level.upper()) != logging.DEBUG:
        for name in CHATTY_LIBRARIES:
            logging.getLogger(name).setLevel(logging.WARNING)


def _exit_cleanly(signum, frame) -> None:
    raise SystemExit(0)


def main() -> None:
    # A stop requested while still starting (before serve() installs its handlers) is a
    # clean exit, not a death by signal.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    settings = Settings.from_environment()
    configure_logging(settings.server.log_level, settings.server.log_format,
                      wrap_foreign_output=settings.server.workers <= 1)
    if settings.server.workers > 1:
        from billing.entrypoints.workers import run_workers

        sys.exit(run_workers(settings))
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner:
        runner.run(serve(settings))


if __name__ == "__main__":
    main()
