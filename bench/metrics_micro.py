"""Micro-benchmark: what metrics cost a call (`python -m bench.metrics_micro`, a few seconds).

1. The interceptor chain as grpc.aio runs it for one unary call (each interceptor's
   intercept_service with the same continuation chaining as grpc's _run_interceptor, then the
   wrapped behaviour awaited), with and without the MetricsInterceptor in front; the servicer
   is a no-op, so the difference is the interceptor's whole per-call cost.
2. Each metric update on the request path, alone (timeit).
Best of several repeats, in microseconds per call; run on an otherwise idle machine.
"""

from __future__ import annotations

import asyncio
import functools
import time
import timeit
from typing import Any

import grpc
from prometheus_client import CollectorRegistry

from billing.adapters.metrics import PrometheusMetrics
from billing.api.interceptors import interceptor_chain

METHOD = "/billing.v1.BillingService/Consume"
CALLS = 20_000
REPEATS = 7


class _Details:
    method = METHOD
    invocation_metadata = (("x-request-id", "0123456789abcdef0123456789abcdef"),)


class _Context:
    def code(self) -> Any:
        return None


async def _servicer(request: Any, context: Any) -> Any:
    return request


_HANDLER = grpc.unary_unary_rpc_method_handler(_servicer)


async def _run_interceptor(interceptors, query_handler, details):
    """grpc/_cython/_cygrpc/aio/server.pyx.pxi's chaining, in Python."""
    interceptor = next(interceptors, None)
    if interceptor:
        continuation = functools.partial(_run_interceptor, interceptors, query_handler)
        return await interceptor.intercept_service(continuation, details)
    return query_handler(details)


async def _calls(chain: list, n: int) -> float:
    details, context = _Details(), _Context()
    query = lambda _details: _HANDLER  # noqa: E731
    started = time.perf_counter()
    for _ in range(n):
        handler = await _run_interceptor(iter(chain), query, details)
        await handler.unary_unary(b"", context)
    return time.perf_counter() - started


def _chain_cost(chain: list) -> float:
    """Best microseconds per call over REPEATS runs."""
    async def best() -> float:
        await _calls(chain, 2_000)  # warm up
        return min([await _calls(chain, CALLS) for _ in range(REPEATS)]) / CALLS * 1e6

    try:  # the server's event loop
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner:
        return runner.run(best())


def _update_cost(statement: Any, number: int = 200_000) -> float:
    return min(timeit.repeat(statement, number=number, repeat=REPEATS)) / number * 1e6


def main() -> None:
    metrics = PrometheusMetrics(CollectorRegistry(), process_collectors=False)
    without = _chain_cost(interceptor_chain(None))
    with_metrics = _chain_cost(interceptor_chain(None, metrics))
    print(f"interceptor chain, no metrics:    {without:6.2f} us/call")
    print(f"interceptor chain, with metrics:  {with_metrics:6.2f} us/call  (+{with_metrics - without:.2f} us)")

    observer = metrics.rpc_observer(METHOD)
    histogram = metrics._rpc_seconds  # the naive way, for comparison
    updates = {
        "rpc_observer(method) lookup": lambda: metrics.rpc_observer(METHOD),
        "observe(code, seconds)": lambda: observer("OK", 0.0004),
        "histogram.labels(...).observe (naive)": lambda: histogram.labels("billing.v1.BillingService", "Consume", "OK").observe(0.0004),
        "consumed(operation, seconds)": lambda: metrics.consumed("build", 120),
        "refused(operation)": lambda: metrics.refused("build"),
        "observe_batch(size) (once per batch)": lambda: metrics.observe_batch(12),
    }
    for name, statement in updates.items():
        print(f"{name:40s} {_update_cost(statement):6.2f} us")


if __name__ == "__main__":
    main()
