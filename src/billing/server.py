"""The gRPC server: BillingService, health and reflection; graceful stop on SIGTERM."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from billing.adapters.catalog_file import load_catalog
from billing.adapters.clock import SystemClock
from billing.adapters.db.availability import DatabaseAvailability
from billing.adapters.db.migrate import upgrade_to_head
from billing.adapters.db.unit_of_work import PostgresStorage, connection_options, open_pool
from billing.adapters.db.wallet_batcher import WalletBatcher
from billing.api.interceptors import interceptor_chain
from billing.api.request_ids import RequestIdLogFilter
from billing.api.servicer import BillingServicer
from billing.service.dependencies import Dependencies
from billing.service.ports import Authenticator
from billing.api.time_budget import TimeBudgetInterceptor
from billing.settings import Settings, libpq_url
from billing.v1 import billing_service_pb2, billing_service_pb2_grpc

log = logging.getLogger("billing.server")
MAX_MESSAGE_BYTES = 1024 * 1024
GC_YOUNG_THRESHOLD = 20_000
MIGRATION_RETRY_FIRST_SECONDS = 0.5
MIGRATION_RETRY_MAX_SECONDS = 2.0
SERVICE_NAME = billing_service_pb2.DESCRIPTOR.services_by_name["BillingService"].full_name


def create_server(
    servicer: BillingServicer, address: str, authenticator: Authenticator | None,
    request_timeout_seconds: float | None = None,
) -> tuple[grpc.aio.Server, health.aio.HealthServicer, int]:
    interceptors = interceptor_chain(authenticator)
    if request_timeout_seconds:
        interceptors.append(TimeBudgetInterceptor(request_timeout_seconds))
    server = grpc.aio.server(
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 1),
        ]
    )
    billing_service_pb2_grpc.add_BillingServiceServicer_to_server(servicer, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME), server
    )
    port = server.add_insecure_port(address)
    return server, health_servicer, port


async def serve(settings: Settings) -> None:
    catalog, fingerprint = load_catalog(settings.catalog_path)
    # Nothing here waits for the database: the server starts while it is down and serves when
    # it appears; until then (and during any outage) health says NOT_SERVING and calls answer
    # UNAVAILABLE at once.
    pool = await open_pool(settings.database_url, settings.database_pool_size, wait=False)
    availability = DatabaseAvailability(libpq_url(settings.database_url), connection_options(), pool=pool)
    batcher = WalletBatcher(pool, availability=availability) if settings.group_commit else None
    deps = Dependencies(
        storage=PostgresStorage(pool, batcher, availability), catalog=catalog, clock=SystemClock()
    )
    server, health_servicer, port = create_server(
        BillingServicer(deps, fingerprint), f"{settings.grpc_host}:{settings.grpc_port}", authenticator=None,
        request_timeout_seconds=settings.request_timeout_seconds,
    )
    if settings.worker_port:
        # This worker alone, besides the shared port: for client-side balancing over workers.
        server.add_insecure_port(f"{settings.grpc_host}:{settings.worker_port}")
    stopping = asyncio.Event()

    async def set_health(serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving and not stopping.is_set() else (
            health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for service in ("", SERVICE_NAME):
            await health_servicer.set(service, status)

    availability.on_change(set_health)
    await set_health(False)
    await server.start()
    # Everything allocated so far lives as long as the process: keep it out of the
    # collector's way, and collect young objects less often (fewer latency spikes).
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)
    log.info("billing gRPC server listening on %s:%d (catalog %s)", settings.grpc_host, port, catalog.version)
    startup = asyncio.create_task(_start_probing(settings, availability), name="startup")

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()
    log.info("stopping: draining for up to %.0fs", settings.shutdown_grace_seconds)
    await set_health(False)
    startup.cancel()
    await server.stop(settings.shutdown_grace_seconds)
    await availability.close()
    if batcher is not None:
        await batcher.close()
        log.info(
            "group commit: %d wallet reads and %d wallet writes in %d statements",
            batcher.reads, batcher.writes, batcher.batches.batches,
        )
    await pool.close()


async def _start_probing(settings: Settings, availability: DatabaseAvailability) -> None:
    """Migrations first when asked (retried until the database answers), then the probe that
    opens the server to calls."""
    if settings.migrate_on_start:
        delay = MIGRATION_RETRY_FIRST_SECONDS
        while True:
            try:
                await asyncio.to_thread(upgrade_to_head, settings.database_url)
                break
            except Exception as failure:
                if not _database_unreachable(failure):
                    log.exception("migrations failed")
                    os.kill(os.getpid(), signal.SIGTERM)  # a broken migration stops the server
                    return
                log.warning("migrations wait for the database (retry in %.1fs): %s", delay, _first_line(failure))
                await asyncio.sleep(delay)
                delay = min(delay * 2, MIGRATION_RETRY_MAX_SECONDS)
    availability.start()


def _database_unreachable(failure: BaseException) -> bool:
    """A driver's OperationalError (connection refused, timeout), raw or wrapped by SQLAlchemy."""
    import psycopg
    import sqlalchemy.exc

    return isinstance(failure, (psycopg.OperationalError, sqlalchemy.exc.OperationalError, OSError))


def _first_line(failure: BaseException) -> str:
    return (str(failure).strip().splitlines() or [type(failure).__name__])[0]


def configure_logging(level: str) -> None:
    """Every line names the call it was written for (request_ids.py), or "-" outside one."""
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdLogFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])


def _exit_cleanly(signum, frame) -> None:
    raise SystemExit(0)


def main() -> None:
    # A stop requested while still starting (before serve() installs its handlers) is a
    # clean exit, not a death by signal.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    settings = Settings.from_environment()
    configure_logging(settings.log_level)
    if settings.workers > 1:
        from billing.supervisor import run_workers

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
