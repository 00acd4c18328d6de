"""The database probe's verdict (hysteresis) and the server's per-call time budget."""

from __future__ import annotations

import asyncio

import pytest

from billing.adapters.db.availability import DatabaseAvailability
from billing.api.time_budget import TimeBudgetInterceptor
from billing.service.ports import Unavailable


async def _verdicts(observations: list[bool]) -> tuple[list[bool], list[bool]]:
    availability = DatabaseAvailability("host=unused", flip_after=2)
    changes: list[bool] = []

    async def listener(reachable: bool) -> None:
        changes.append(reachable)

    availability.on_change(listener)
    seen = []
    for reachable in observations:
        await availability.observe(reachable)
        seen.append(availability.available)
    return seen, changes


async def test_the_first_probe_decides_then_two_in_a_row_change_the_verdict():
    seen, changes = await _verdicts([True, False, True, False, False, False, True, True])
    assert seen == [True, True, True, True, False, False, False, True]
    assert changes == [True, False, True]


async def test_unreachable_from_the_start_until_two_probes_answer():
    seen, changes = await _verdicts([False, True, False, True, True])
    assert seen == [False, False, False, False, True]
    assert changes == [False, True]


async def test_a_probe_of_an_unreachable_database_fails_within_its_timeout():
    availability = DatabaseAvailability("host=127.0.0.1 port=1 user=x dbname=x", timeout=0.5)
    started = asyncio.get_running_loop().time()
    assert await availability.probe() is False
    assert asyncio.get_running_loop().time() - started < 1.0


class _Details:
    method = "/billing.v1.BillingService/Consume"
    invocation_metadata = ()


async def test_a_call_over_its_time_budget_is_unavailable():
    async def slow(request, context):
        await asyncio.sleep(5)

    bounded = TimeBudgetInterceptor(0.05).wrap(slow, _Details())
    with pytest.raises(Unavailable):
        await bounded(None, None)


async def test_a_call_within_its_budget_answers():
    async def fast(request, context):
        return "answer"

    assert await TimeBudgetInterceptor(1.0).wrap(fast, _Details())(None, None) == "answer"
