"""The account gate: one Consume per account at a time in a process, any number of accounts at once."""

from __future__ import annotations

import asyncio

from billing.service.account_gate import AccountGate


async def test_requests_for_one_account_pass_one_at_a_time_in_arrival_order():
    gate, inside, order = AccountGate(), [], []

    async def request(name: str) -> None:
        async with gate.passage("a"):
            inside.append(name)
            assert len(inside) == 1
            await asyncio.sleep(0)
            order.append(name)
            inside.remove(name)

    await asyncio.gather(*(request(f"r{i}") for i in range(5)))

    assert order == ["r0", "r1", "r2", "r3", "r4"]


async def hold(gate: AccountGate, account_id: str, release: asyncio.Event) -> None:
    async with gate.passage(account_id):
        await release.wait()


async def test_different_accounts_do_not_wait_for_each_other():
    gate, release = AccountGate(), asyncio.Event()
    holder = asyncio.ensure_future(hold(gate, "a", release))
    await asyncio.sleep(0)
    async with gate.passage("b"):
        assert len(gate) == 2
    release.set()
    await holder


async def test_the_gate_forgets_accounts_with_nothing_in_flight_even_after_a_failure_or_a_cancel():
    gate = AccountGate()

    async def fail() -> None:
        async with gate.passage("a"):
            raise ValueError("consume failed")

    results = await asyncio.gather(fail(), fail(), return_exceptions=True)
    assert all(isinstance(r, ValueError) for r in results)

    release = asyncio.Event()
    holder = asyncio.ensure_future(hold(gate, "b", release))
    await asyncio.sleep(0)
    waiter = asyncio.ensure_future(hold(gate, "b", release))
    await asyncio.sleep(0)
    waiter.cancel()
    release.set()
    await asyncio.gather(holder, waiter, return_exceptions=True)

    assert len(gate) == 0


async def test_a_request_that_waited_too_long_goes_on_without_the_gate():
    gate, release = AccountGate(wait_seconds=0.01), asyncio.Event()
    holder = asyncio.ensure_future(hold(gate, "a", release))
    await asyncio.sleep(0)
    async with gate.passage("a"):
        assert not release.is_set()  # got in while the first still holds the account
    release.set()
    await holder
    assert len(gate) == 0


async def test_a_waiting_request_cancelled_as_the_lock_frees_ends_and_leaves_the_lock_free():
    """A request cancelled (its client gone) in the turn the lock is handed to it ends cancelled, and
    the next request gets the lock (wait_for on CPython 3.11 could hand it the lock and lose the
    cancellation)."""
    gate, release = AccountGate(wait_seconds=10), asyncio.Event()
    holder = asyncio.create_task(hold(gate, "a", release))
    await asyncio.sleep(0)
    waiter = asyncio.create_task(hold(gate, "a", asyncio.Event()))
    for _ in range(2):
        await asyncio.sleep(0)
    release.set()
    await holder
    waiter.cancel()
    async with asyncio.timeout(5):  # a lost cancellation: the waiter holds the lock, waiting forever
        await asyncio.gather(waiter, return_exceptions=True)
    assert waiter.cancelled()
    async with asyncio.timeout(5):
        async with gate.passage("a"):
            pass
