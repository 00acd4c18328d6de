"""testkit/waiting.py: what a test waits on, and how it fails when it never comes."""

from __future__ import annotations

import itertools

import pytest

from testkit.waiting import wait_until, wait_until_async


def test_the_first_truthy_reading_is_returned():
    readings = iter([0, [], "found"])
    assert wait_until(lambda: next(readings), "a reading", interval=0) == "found"


def test_past_the_deadline_it_fails_saying_what_never_happened():
    with pytest.raises(AssertionError, match=r"the queue fills: not within 0 s \(last: \[\]\)"):
        wait_until(lambda: [], "the queue fills", timeout=0)


async def test_the_async_form_awaits_a_coroutine_predicate():
    counter = itertools.count()

    async def third_reading() -> bool:
        return next(counter) >= 2

    assert await wait_until_async(third_reading, "the third reading", interval=0) is True
    with pytest.raises(AssertionError, match="never: not within 0 s"):
        await wait_until_async(lambda: False, "never", timeout=0)
