"""Metrics: the interceptor records every call's final code and time, aborted and cancelled calls
included; the Prometheus adapter keeps label values to fixed sets; Consume counts what it took
and what it refused."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timezone
from types import SimpleNamespace

import grpc
import pytest
from prometheus_client import CollectorRegistry

from billing.adapters.catalog_file import load_catalog
from billing.adapters.clock import FixedClock
from billing.adapters.metrics import PrometheusMetrics
from billing.api.interceptors import (
    ErrorTranslationInterceptor, LayeredInterceptor, MetricsInterceptor, RequestIdInterceptor, interceptor_chain,
)
from billing.domain.errors import AccountNotFound, InsufficientAiTime
from billing.service.accounts import create_account
from billing.service.consume import consume
from billing.service.ports import NoMetrics, Unavailable
from billing.settings import DEFAULT_CATALOG_PATH
from tests.support.fake_storage import fake_dependencies
from testkit.waiting import wait_until_async

SERVICE = "billing.v1.BillingService"
METHOD = f"/{SERVICE}/Consume"


def details(method: str = METHOD) -> SimpleNamespace:
    return SimpleNamespace(method=method, invocation_metadata=())


class Context:
    """What the chain uses of grpc.aio.ServicerContext: abort records the code, as gRPC's does."""

    def __init__(self, time_remaining: float | None = None):
        self._code = None
        self._time_remaining = time_remaining

    async def abort(self, code, message, trailing_metadata=()):
        self._code = code
        raise grpc.aio.AbortError()

    def code(self):
        return self._code

    def time_remaining(self):
        return self._time_remaining


class Recorder:
    """An RpcMetrics that keeps what it was told."""

    def __init__(self):
        self.calls: list[tuple[str, str, float]] = []
        self.resolved: list[str] = []

    def rpc_observer(self, method):
        self.resolved.append(method)
        return lambda code, seconds: self.calls.append((method, code, seconds))


def chain(behavior, recorder, call_details=None):
    """The server's order: metrics, request id, error translation."""
    call_details = call_details or details()
    behavior = ErrorTranslationInterceptor().wrap(behavior, call_details)
    behavior = RequestIdInterceptor().wrap(behavior, call_details)
    return MetricsInterceptor(recorder).wrap(behavior, call_details)


def sample(metrics: PrometheusMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


# ---------------------------------------------------------------- the interceptor


async def test_a_successful_call_is_recorded_as_ok_with_its_time():
    recorder = Recorder()

    async def slow(request, context):
        await asyncio.sleep(0.02)
        return "answer"

    assert await chain(slow, recorder)(None, Context()) == "answer"
    [(method, code, seconds)] = recorder.calls
    assert (method, code) == (METHOD, "OK") and 0.02 <= seconds < 1


@pytest.mark.parametrize(
    ("raised", "code"),
    [
        (AccountNotFound("no account", field="user_id"), "NOT_FOUND"),
        (InsufficientAiTime(balance_seconds=1, bonus_daily_seconds=0, paid_seconds=1, deficit_seconds=9,
                            plan_key="free"), "FAILED_PRECONDITION"),
        (Unavailable("database down"), "UNAVAILABLE"),
        (RuntimeError("bug"), "INTERNAL"),
    ],
)
async def test_an_aborted_call_is_recorded_with_the_code_the_client_gets(raised, code):
    recorder = Recorder()

    async def failing(request, context):
        raise raised

    with pytest.raises(grpc.aio.AbortError):
        await chain(failing, recorder)(None, Context())
    assert [(c, s >= 0) for _, c, s in recorder.calls] == [(code, True)]


async def test_a_code_the_servicer_set_is_recorded():
    recorder = Recorder()

    async def sets_code(request, context):
        context._code = grpc.StatusCode.ALREADY_EXISTS
        return "answer"

    await chain(sets_code, recorder)(None, Context())
    assert [c for _, c, _ in recorder.calls] == ["ALREADY_EXISTS"]


@pytest.mark.parametrize(("time_remaining", "code"), [(None, "CANCELLED"), (5.0, "CANCELLED"), (0.0, "DEADLINE_EXCEEDED")])
async def test_a_cancelled_call_is_recorded_as_cancelled_or_past_its_deadline(time_remaining, code):
    recorder = Recorder()

    async def cancelled(request, context):
        raise asyncio.CancelledError()

    with pytest.raises(asyncio.CancelledError):
        await chain(cancelled, recorder)(None, Context(time_remaining))
    assert [c for _, c, _ in recorder.calls] == [code]


async def test_an_exception_escaping_the_chain_is_recorded_as_unknown():
    recorder = Recorder()

    async def escaping(request, context):
        raise KeyError("x")

    with pytest.raises(KeyError):  # without error translation below, gRPC answers UNKNOWN
        await MetricsInterceptor(recorder).wrap(escaping, details())(None, Context())
    assert [c for _, c, _ in recorder.calls] == ["UNKNOWN"]


def test_the_chain_has_metrics_outermost_and_none_without_them():
    recorder = Recorder()
    assert [type(i).__name__ for i in interceptor_chain(None, recorder)] == [
        "MetricsInterceptor", "RequestIdInterceptor", "ErrorTranslationInterceptor", "MalformedRequestInterceptor"
    ]
    assert [type(i).__name__ for i in interceptor_chain(None)] == [
        "RequestIdInterceptor", "ErrorTranslationInterceptor", "MalformedRequestInterceptor"
    ]


@pytest.mark.parametrize("served_as", ["interceptors", "one layered interceptor"])
async def test_a_real_grpc_server_reports_ok_aborted_and_deadline_exceeded_calls(served_as):
    """grpc.aio's own context: the code an abort set is what the interceptor reads; the same
    whether gRPC runs the layers as interceptors of their own or as one (server.py)."""
    metrics = PrometheusMetrics(CollectorRegistry(), process_collectors=False)

    async def echo(request: bytes, context) -> bytes:
        if request == b"missing":
            raise AccountNotFound("no account", field="user_id")
        if request == b"slow":
            await asyncio.sleep(1)
        return request

    def count(code: str) -> float:
        return sample(metrics, "billing_rpc_duration_seconds_count", service=SERVICE, method="Echo", code=code)

    handler = grpc.unary_unary_rpc_method_handler(echo)
    chain = interceptor_chain(None, metrics)
    server = grpc.aio.server(interceptors=chain if served_as == "interceptors" else [LayeredInterceptor(chain)])
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Echo": handler}),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_unary(f"/{SERVICE}/Echo")
            assert await call(b"hello", timeout=5) == b"hello"
            assert await call(b"again", timeout=5) == b"again"
            for request, expected in ((b"missing", grpc.StatusCode.NOT_FOUND), (b"slow", grpc.StatusCode.DEADLINE_EXCEEDED)):
                with pytest.raises(grpc.aio.AioRpcError) as failed:
                    await call(request, timeout=0.2)
                assert failed.value.code() == expected
        await wait_until_async(lambda: count("DEADLINE_EXCEEDED"), "the slow handler's cancellation is recorded")
    finally:
        await server.stop(0)

    assert (count("OK"), count("NOT_FOUND"), count("DEADLINE_EXCEEDED")) == (2, 1, 1)
    assert sample(metrics, "billing_rpc_duration_seconds_sum", service=SERVICE, method="Echo", code="DEADLINE_EXCEEDED") >= 0.15


# ---------------------------------------------------------------- the Prometheus adapter


@pytest.fixture
def metrics() -> PrometheusMetrics:
    return PrometheusMetrics(CollectorRegistry(), process_collectors=False)


def test_rpc_observers_are_resolved_once_per_method(metrics):
    observer = metrics.rpc_observer(METHOD)
    assert metrics.rpc_observer(METHOD) is observer
    observer("OK", 0.003)
    observer("OK", 0.2)
    observer("NOT_FOUND", 0.001)
    labels = {"service": SERVICE, "method": "Consume"}
    assert sample(metrics, "billing_rpc_duration_seconds_count", **labels, code="OK") == 2
    assert sample(metrics, "billing_rpc_duration_seconds_bucket", **labels, code="OK", le="0.005") == 1
    assert sample(metrics, "billing_rpc_duration_seconds_count", **labels, code="NOT_FOUND") == 1


def test_use_case_counters_and_their_fixed_label_sets(metrics):
    metrics.consumed("build", 120)
    metrics.consumed("build", 30)
    metrics.refused("export")
    metrics.auth_failed("bad_signature")
    metrics.auth_failed("a reason nobody declared")
    metrics.webhook("processed")
    metrics.webhook("whatever")

    assert sample(metrics, "billing_consumed_seconds_total", operation="build") == 150
    assert metrics.registry.get_sample_value("billing_consumed_seconds_total", {"operation": "plan"}) == 0  # exported at 0
    assert sample(metrics, "billing_insufficient_ai_time_total", operation="export") == 1
    assert sample(metrics, "billing_auth_failures_total", reason="bad_signature") == 1
    assert sample(metrics, "billing_auth_failures_total", reason="other") == 1
    assert metrics.registry.get_sample_value("billing_auth_failures_total", {"reason": "a reason nobody declared"}) is None
    assert sample(metrics, "billing_webhooks_total", outcome="processed") == 1
    assert sample(metrics, "billing_webhooks_total", outcome="other") == 1


def test_pool_gauges_are_read_at_scrape_time(metrics):
    stats = {"pool_min": 4, "pool_max": 4, "pool_size": 4, "pool_available": 3, "requests_waiting": 0}
    metrics.watch_pool(lambda: stats)
    assert sample(metrics, "billing_db_pool_available_connections") == 3
    stats.update(pool_available=0, requests_waiting=7)
    assert sample(metrics, "billing_db_pool_available_connections") == 0
    assert sample(metrics, "billing_db_pool_waiting_requests") == 7
    assert (sample(metrics, "billing_db_pool_connections"), sample(metrics, "billing_db_pool_max_connections")) == (4, 4)


def test_open_balance_streams_are_read_at_scrape_time(metrics):
    open_streams = [3]
    metrics.watch_balance_streams(lambda: open_streams[0])
    assert sample(metrics, "billing_balance_streams") == 3
    open_streams[0] = 0
    assert sample(metrics, "billing_balance_streams") == 0


def test_routed_reads_are_counted_by_source_at_scrape_time(metrics):
    counts = {"standby_reads": 5, "primary_reads": 2, "standby_failures": 1, "resting": 1}
    metrics.watch_read_routing(lambda: counts)
    assert sample(metrics, "billing_db_routed_reads_total", source="standby") == 5
    assert sample(metrics, "billing_db_routed_reads_total", source="primary") == 2
    assert sample(metrics, "billing_read_replica_failures_total") == 1
    counts.update(resting=0)
    assert sample(metrics, "billing_read_replica_resting") == 0


def test_batch_sizes_form_a_histogram(metrics):
    for size in (1, 3, 64):
        metrics.observe_batch(size)
    assert sample(metrics, "billing_group_commit_batch_size_count") == 3
    assert sample(metrics, "billing_group_commit_batch_size_sum") == 68
    assert sample(metrics, "billing_group_commit_batch_size_bucket", le="4.0") == 2


# ---------------------------------------------------------------- the use case


class CountingMetrics(NoMetrics):
    def __init__(self):
        self.consumed_seconds: list[tuple[str, int]] = []
        self.refusals: list[str] = []

    def consumed(self, operation, seconds):
        self.consumed_seconds.append((operation, seconds))

    def refused(self, operation):
        self.refusals.append(operation)


async def test_consume_counts_what_it_took_once_and_each_refusal():
    clock = FixedClock(datetime(2026, 3, 14, 9, 30, tzinfo=timezone.utc))
    counting = CountingMetrics()
    deps = fake_dependencies(load_catalog(DEFAULT_CATALOG_PATH)[0], clock)
    deps = dataclasses.replace(deps, metrics=counting)
    await create_account(deps, "alice", "free")

    await consume(deps, "alice", "build", 120, "op-1")
    replay = await consume(deps, "alice", "build", 120, "op-1")
    with pytest.raises(InsufficientAiTime):
        await consume(deps, "alice", "export", 86_400, "op-2")

    assert replay.replayed
    assert counting.consumed_seconds == [("build", 120)] and counting.refusals == ["export"]


def test_dependencies_count_nothing_by_default():
    clock = FixedClock(datetime(2026, 3, 14, 9, 30, tzinfo=timezone.utc))
    assert isinstance(fake_dependencies(load_catalog(DEFAULT_CATALOG_PATH)[0], clock).metrics, NoMetrics)


def test_the_console_activity_counts_the_same_events():
    from billing.domain.activity import ActivityCounts, HourCounts

    metrics = PrometheusMetrics(CollectorRegistry(), process_collectors=False)
    activity = ActivityCounts()
    metrics.consumed("build", 5)  # before count_activity: into a counter nobody reads
    metrics.count_activity(activity)
    metrics.consumed("build", 120)
    metrics.consumed("plan", 30)
    metrics.refused("export")
    metrics.topup("succeeded")
    metrics.topup("failed")
    for outcome in ("delivered", "delivered", "retry", "failed", "lost_lease"):
        metrics.webhook_attempt(outcome, 0.01)
    assert activity.totals() == HourCounts(
        consumed_seconds=150, consumes=2, refusals=1, topups_succeeded=1, topups_failed=1, webhooks_delivered=2,
        webhooks_failed=1)
    assert sample(metrics, "billing_auto_topups_total", outcome="failed") == 1
