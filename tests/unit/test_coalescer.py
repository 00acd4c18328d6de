"""The group-commit coalescer, without a database: batching, distinct keys, failures, give-ups."""

from __future__ import annotations

import asyncio

import pytest

from billing.adapters.db.coalescer import BatcherStopped, Coalescer


class Recorder:
    def __init__(self, fail_with: Exception | None = None):
        self.batches: list[list] = []
        self.fail_with = fail_with

    async def run(self, items: list) -> list:
        self.batches.append(list(items))
        await asyncio.sleep(0)  # at the database: others queue meanwhile
        if self.fail_with:
            raise self.fail_with
        return [ValueError(item) if item == "bad" else item * 2 for item in items]


async def test_a_lone_item_goes_at_once_and_concurrent_ones_share_the_next_batch():
    recorder = Recorder()
    coalescer = Coalescer(recorder.run)

    assert await coalescer.submit(1) == 2
    results = await asyncio.gather(*(coalescer.submit(i) for i in range(2, 7)))

    assert results == [4, 6, 8, 10, 12]
    assert recorder.batches == [[1], [2, 3, 4, 5, 6]]


async def test_batches_are_capped():
    recorder = Recorder()
    coalescer = Coalescer(recorder.run, max_batch=2)

    await asyncio.gather(*(coalescer.submit(i) for i in range(5)))

    assert recorder.batches == [[0, 1], [2, 3], [4]]


async def test_items_with_the_same_key_go_in_separate_batches_in_order():
    recorder = Recorder()
    coalescer = Coalescer(recorder.run, distinct_by=lambda item: item % 10)

    await asyncio.gather(*(coalescer.submit(i) for i in (1, 11, 2, 21, 3)))

    assert recorder.batches == [[1, 2, 3], [11], [21]]


async def test_a_result_that_is_an_exception_is_raised_to_its_caller_only():
    coalescer = Coalescer(Recorder().run)

    results = await asyncio.gather(*(coalescer.submit(i) for i in (1, "bad", 3)), return_exceptions=True)

    assert results[0] == 2 and results[2] == 6
    assert isinstance(results[1], ValueError)


async def test_a_failed_batch_fails_each_of_its_callers_and_the_next_batch_runs():
    recorder = Recorder(fail_with=ConnectionError("gone"))
    coalescer = Coalescer(recorder.run)

    results = await asyncio.gather(*(coalescer.submit(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)

    recorder.fail_with = None
    assert await coalescer.submit(4) == 8


async def test_an_item_whose_caller_gave_up_before_its_batch_is_not_sent():
    at_database = asyncio.Event()
    batches: list[list] = []

    async def run(items: list) -> list:
        batches.append(list(items))
        await at_database.wait()
        return items

    coalescer = Coalescer(run)
    first = asyncio.ensure_future(coalescer.submit(1))
    for _ in range(3):
        await asyncio.sleep(0)  # batch [1] is now at the database
    abandoned = asyncio.ensure_future(coalescer.submit(2))
    kept = asyncio.ensure_future(coalescer.submit(3))
    for _ in range(3):
        await asyncio.sleep(0)
    abandoned.cancel()
    at_database.set()

    assert await first == 1 and await kept == 3
    assert abandoned.cancelled()
    assert batches == [[1], [3]]


async def test_callers_are_answered_even_when_the_drainer_is_cancelled():
    at_database = asyncio.Event()

    async def run(items: list) -> list:
        await at_database.wait()
        return items

    coalescer = Coalescer(run)
    in_flight = asyncio.ensure_future(coalescer.submit(1))
    for _ in range(3):
        await asyncio.sleep(0)
    queued = asyncio.ensure_future(coalescer.submit(2))
    await asyncio.sleep(0)
    coalescer._drainer.cancel()

    results = await asyncio.gather(in_flight, queued, return_exceptions=True)

    assert all(isinstance(r, BatcherStopped) for r in results)


async def test_a_stopped_coalescer_finishes_its_queue_and_refuses_new_items():
    coalescer = Coalescer(Recorder().run)
    queued = [asyncio.ensure_future(coalescer.submit(i)) for i in range(3)]
    await asyncio.sleep(0)

    await coalescer.stop()

    assert [q.result() for q in queued] == [0, 2, 4]
    with pytest.raises(BatcherStopped):
        await coalescer.submit(9)


async def test_items_without_a_key_never_conflict():
    recorder = Recorder()
    coalescer = Coalescer(recorder.run, distinct_by=lambda item: item % 10 if item > 0 else None)

    await asyncio.gather(*(coalescer.submit(i) for i in (1, 11, -1, -1, 2)))

    assert recorder.batches == [[1, -1, -1, 2], [11]]



async def test_an_abandoned_item_does_not_hold_its_keys_place():
    recorder = Recorder()
    coalescer = Coalescer(recorder.run, distinct_by=lambda item: item % 10)
    first = asyncio.ensure_future(coalescer.submit(1))
    await asyncio.sleep(0)  # 1 is at the database
    abandoned = asyncio.ensure_future(coalescer.submit(12))
    kept = asyncio.ensure_future(coalescer.submit(22))
    await asyncio.sleep(0)
    abandoned.cancel()

    assert await asyncio.gather(first, kept) == [2, 44]
    assert recorder.batches == [[1], [22]]


async def test_with_groups_a_batch_holds_one_group_the_oldest_items_first():
    """A sharded database (docs/scaling.md): each batch's items are of one group (one shard)."""
    recorder = Recorder()
    coalescer = Coalescer(recorder.run, group_by=lambda item: item % 2)

    await asyncio.gather(*(coalescer.submit(i) for i in (1, 2, 3, 4, 5, 6)))

    assert recorder.batches == [[1, 3, 5], [2, 4, 6]]


async def test_groups_and_distinct_keys_together():
    recorder = Recorder()
    coalescer = Coalescer(recorder.run, distinct_by=lambda item: item % 10, group_by=lambda item: item >= 100)

    await asyncio.gather(*(coalescer.submit(i) for i in (1, 101, 11, 2, 102, 112)))

    assert recorder.batches == [[1, 2], [101, 102], [11], [112]]
