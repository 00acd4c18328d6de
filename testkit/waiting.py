"""Waiting for something to happen, with a deadline: never a fixed sleep standing in for it.

The predicate is polled every `interval` until it returns something truthy, which is returned;
past `timeout` an AssertionError says what never happened (and what the predicate last gave)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

TIMEOUT_SECONDS = 10.0
INTERVAL_SECONDS = 0.05


def wait_until(predicate: Callable[[], T], what: str, timeout: float = TIMEOUT_SECONDS,
               interval: float = INTERVAL_SECONDS) -> T:
    deadline = time.monotonic() + timeout
    while True:
        found = predicate()
        if found:
            return found
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s (last: {found!r})")
        time.sleep(interval)


async def wait_until_async(predicate: Callable[[], T | Awaitable[T]], what: str, timeout: float = TIMEOUT_SECONDS,
                           interval: float = INTERVAL_SECONDS) -> T:
    """As wait_until, on the running loop (the predicate may be a coroutine function)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        found = predicate()
        if inspect.isawaitable(found):
            found = await found
        if found:
            return found
        if loop.time() >= deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s (last: {found!r})")
        await asyncio.sleep(interval)
