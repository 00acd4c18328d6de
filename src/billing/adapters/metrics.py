"""Prometheus metrics (prometheus_client): the service's Metrics port, the interceptor's RPC
observations, group commit's batch sizes and the connection pool's state, on one registry that
an HTTP endpoint serves (`/metrics`, BILLING_METRICS_PORT).

Every label value comes from a fixed set (gRPC methods the server registered, status codes,
the operations the use case accepts, AUTH_FAILURE_REASONS, WEBHOOK_OUTCOMES), so no request
can create new time series. Labelled children are resolved once and kept: on the request path
an update is a dict lookup and the child's own increment (`labels()` per call costs several
microseconds). Pool gauges are read from the pool when Prometheus scrapes, not per request.

One process, one registry, one port: with BILLING_WORKERS=N each worker serves its own
(metrics_port + worker index); prometheus_client's multiprocess mode is not used
(docs/decisions.md).
"""

from __future__ import annotations

import logging
import threading
from typing import Callable, Iterator, Mapping
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR, CollectorRegistry, Counter, Histogram,
    disable_created_metrics, start_http_server,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector

from billing.domain.limits import OPERATIONS
from billing.domain.activity import ActivityCounts
from billing.service.ports import AUTH_FAILURE_REASONS, TOPUP_OUTCOMES, WEBHOOK_OUTCOMES

log = logging.getLogger(__name__)

# gRPC handling time, from ~0.3 ms (a cached catalog read) to the 15 s route timeout.
RPC_SECONDS_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 15.0)
# An outbound webhook's attempt, and an event's age when delivered (the target: p99 under 1 s).
WEBHOOK_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0)
WEBHOOK_LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 30.0, 300.0, 3600.0)
WEBHOOK_ATTEMPT_OUTCOMES = ("delivered", "retry", "failed", "lost_lease", "unrecorded")
# Wallet reads and writes per group-commit statement (coalescer.BATCH_SIZE_MAX is 64).
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
OTHER = "other"  # a reason or outcome outside the fixed set: counted, without minting a series


class _Children:
    """A labelled metric's children by label value, resolved once each (the fixed set up front,
    so its series exist at 0 from the start)."""

    def __init__(self, metric: MetricWrapperBase, values: tuple[str, ...], closed: bool):
        self._metric = metric
        self._closed = closed  # a value outside the set counts as OTHER
        self._by_value = {value: metric.labels(value) for value in values + ((OTHER,) if closed else ())}

    def __getitem__(self, value: str):
        child = self._by_value.get(value)
        if child is None:
            if self._closed:
                return self._by_value[OTHER]
            child = self._by_value[value] = self._metric.labels(value)
        return child


class RpcObserver:
    """One gRPC method's latency histogram children, by status code name."""

    __slots__ = ("_histogram", "_service", "_method", "_by_code")

    def __init__(self, histogram: Histogram, full_method: str):
        self._histogram = histogram
        self._service, _, self._method = full_method.lstrip("/").rpartition("/")
        self._by_code = {"OK": histogram.labels(self._service, self._method, "OK")}

    def __call__(self, code: str, seconds: float) -> None:
        child = self._by_code.get(code)
        if child is None:
            child = self._by_code[code] = self._histogram.labels(self._service, self._method, code)
        child.observe(seconds)


class PrometheusMetrics:
    """Implements service.ports.Metrics and api.interceptors.RpcMetrics."""

    def __init__(self, registry: CollectorRegistry | None = None, process_collectors: bool = True):
        # No `*_created` series (one per child, doubling the scrape): Prometheus finds resets itself.
        disable_created_metrics()
        self.registry = registry if registry is not None else CollectorRegistry()
        if process_collectors:  # process_* (CPU, memory, fds), python_gc_*, python_info
            for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
                self.registry.register(collector)
        registry = self.registry
        self._rpc_seconds = Histogram(
            "billing_rpc_duration_seconds", "gRPC calls served, by method and final status code, and how long they took",
            ("service", "method", "code"), buckets=RPC_SECONDS_BUCKETS, registry=registry,
        )
        self._rpc_observers: dict[str, RpcObserver] = {}
        self._consumed = _Children(
            Counter("billing_consumed_seconds", "AI time consumed, by operation (replays not counted)",
                    ("operation",), registry=registry),
            OPERATIONS, closed=False,
        )
        self._refused = _Children(
            Counter("billing_insufficient_ai_time", "Consumes refused for insufficient AI time (HTTP 402), by operation",
                    ("operation",), registry=registry),
            OPERATIONS, closed=False,
        )
        self._auth_failures = _Children(
            Counter("billing_auth_failures", "Callers refused by the authenticator, by reason", ("reason",),
                    registry=registry),
            AUTH_FAILURE_REASONS, closed=True,
        )
        self._webhooks = _Children(
            Counter("billing_webhooks", "Payment webhook deliveries handled, by outcome", ("outcome",),
                    registry=registry),
            WEBHOOK_OUTCOMES, closed=True,
        )
        self._topups = _Children(
            Counter("billing_auto_topups", "Auto top-up payments sent, by the provider's answer", ("outcome",),
                    registry=registry),
            TOPUP_OUTCOMES, closed=True,
        )
        # The console's activity panel (issue 23): the same events, counted cumulatively (an integer
        # add per event); the replica's reporter (service/replica_report.py) turns them into hourly
        # rows. A counter nobody reads until count_activity() gives one.
        self._activity = ActivityCounts()
        self._webhook_attempts = _Children(
            Histogram("billing_outbound_attempt_seconds", "Outbound webhook attempts, by outcome, and how long they took",
                      ("outcome",), buckets=WEBHOOK_SECONDS_BUCKETS, registry=registry),
            WEBHOOK_ATTEMPT_OUTCOMES, closed=True,
        )
        self._webhook_lag = Histogram(
            "billing_outbound_delivery_lag_seconds", "From an event's commit to its delivery's success",
            buckets=WEBHOOK_LAG_BUCKETS, registry=registry,
        )
        self._batch_size = Histogram(
            "billing_group_commit_batch_size", "Wallet reads and writes per group-commit statement",
            buckets=BATCH_SIZE_BUCKETS, registry=registry,
        )
        self.observe_batch: Callable[[int], None] = self._batch_size.observe

    def count_activity(self, activity: ActivityCounts) -> None:
        """Also counts consumes, refusals, top-ups and outbound deliveries into `activity`."""
        self._activity = activity

    # service.ports.Metrics
    def consumed(self, operation: str, seconds: int) -> None:
        self._consumed[operation].inc(seconds)
        activity = self._activity
        activity.consumed_seconds += seconds
        activity.consumes += 1

    def refused(self, operation: str) -> None:
        self._refused[operation].inc()
        self._activity.refusals += 1

    def topup(self, outcome: str) -> None:
        self._topups[outcome].inc()
        if outcome == "succeeded":
            self._activity.topups_succeeded += 1
        else:
            self._activity.topups_failed += 1

    def auth_failed(self, reason: str) -> None:
        self._auth_failures[reason].inc()

    def webhook(self, outcome: str) -> None:
        self._webhooks[outcome].inc()

    # service.webhook_sender_ports.DeliveryMetrics
    def webhook_attempt(self, outcome: str, seconds: float) -> None:
        self._webhook_attempts[outcome].observe(seconds)
        if outcome == "delivered":
            self._activity.webhooks_delivered += 1
        elif outcome == "failed":
            self._activity.webhooks_failed += 1

    def webhook_delivered(self, lag_seconds: float) -> None:
        self._webhook_lag.observe(lag_seconds)

    # api.interceptors.RpcMetrics
    def rpc_observer(self, method: str) -> RpcObserver:
        observer = self._rpc_observers.get(method)
        if observer is None:
            observer = self._rpc_observers[method] = RpcObserver(self._rpc_seconds, method)
        return observer

    def watch_pool(self, stats: Callable[[], Mapping[str, int]]) -> None:
        """Exports the connection pool's state (psycopg_pool's get_stats) at each scrape."""
        self.registry.register(PoolCollector(stats))


    def watch_balance_streams(self, open_streams: Callable[[], int]) -> None:
        """Exports the number of open live balance streams (the hub's count) at each scrape."""
        self.registry.register(_GaugeCollector(
            "billing_balance_streams", "Open live balance streams (WatchBalance) of this process", open_streams
        ))


    def watch_read_routing(self, counts: Callable[[], Mapping[str, int]]) -> None:
        """Exports where the reads that may use the standby went (adapters/db/read_routing.py's counts)."""
        self.registry.register(ReadRoutingCollector(counts))


class ReadRoutingCollector(Collector):
    """RoutingStorage.counts() at each scrape: ints and a flag, read from the HTTP server's thread."""

    def __init__(self, counts: Callable[[], Mapping[str, int]]):
        self._counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        counts = self._counts()
        reads = CounterMetricFamily("billing_db_routed_reads", "Reads that may use the standby, by where they went",
                                    labels=("source",))
        reads.add_metric(("standby",), counts.get("standby_reads", 0))
        reads.add_metric(("primary",), counts.get("primary_reads", 0))
        yield reads
        yield CounterMetricFamily("billing_read_replica_failures", "Reads the standby failed (answered by the primary)",
                                  value=counts.get("standby_failures", 0))
        yield GaugeMetricFamily("billing_read_replica_resting", "1 while the standby is not tried (its breaker is open)",
                                value=counts.get("resting", 0))


class _GaugeCollector(Collector):
    """One gauge read when scraped (from the HTTP server's thread: the reader only reads an int)."""

    def __init__(self, name: str, documentation: str, read: Callable[[], int]):
        self._name, self._documentation, self._read = name, documentation, read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(self._name, self._documentation, value=self._read())


class PoolCollector(Collector):
    """The pool's gauges, read when scraped (from the HTTP server's thread: get_stats() only
    reads counters and queue lengths)."""

    def __init__(self, stats: Callable[[], Mapping[str, int]]):
        self._stats = stats

    def collect(self) -> Iterator[GaugeMetricFamily]:
        stats = self._stats()
        yield GaugeMetricFamily(
            "billing_db_pool_max_connections", "Connections the pool may hold", value=stats.get("pool_max", 0)
        )
        yield GaugeMetricFamily(
            "billing_db_pool_connections", "Connections the pool holds (in use or idle)", value=stats.get("pool_size", 0)
        )
        yield GaugeMetricFamily(
            "billing_db_pool_available_connections", "Idle connections ready in the pool",
            value=stats.get("pool_available", 0),
        )
        yield GaugeMetricFamily(
            "billing_db_pool_waiting_requests", "Requests waiting for a connection", value=stats.get("requests_waiting", 0)
        )


class MetricsEndpoint:
    """prometheus_client's HTTP server (a daemon thread) serving a registry at /metrics."""

    def __init__(self, server: WSGIServer, thread: threading.Thread):
        self._server = server
        self._thread = thread

    @property
    def port(self) -> int:
        return self._server.server_port

    @classmethod
    def start(cls, registry: CollectorRegistry, host: str, port: int) -> MetricsEndpoint:
        server, thread = start_http_server(port, addr=host, registry=registry)
        return cls(server, thread)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
