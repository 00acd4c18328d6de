"""The server's own bound on a call: past its time budget a call answers UNAVAILABLE (HTTP 503
with Retry-After, through the error translation layer), safe to retry with its idempotency key.

Envoy's route timeout (envoy.yaml) sits well above the budget, so a REST client always gets the
server's 503 JSON, never the proxy's timeout. While the database is down requests fail far
sooner (the storage adapter's availability check and short pool waits); the budget bounds
everything else: a slow database, a hung connection, retries adding up.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from billing.api.interceptors import Behavior, _UnaryInterceptor
from billing.service.ports import Unavailable


class TimeBudgetInterceptor(_UnaryInterceptor):
    """Innermost layer (inside error translation): a call over budget raises Unavailable."""

    def __init__(self, budget_seconds: float):
        self._budget_seconds = budget_seconds

    def wrap(self, behavior: Behavior, details: grpc.HandlerCallDetails) -> Behavior:
        budget = self._budget_seconds

        async def bounded(request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                async with asyncio.timeout(budget):
                    return await behavior(request, context)
            except TimeoutError as timeout:
                raise Unavailable(f"the call took longer than {budget:g}s", kind="time_budget") from timeout

        return bounded
