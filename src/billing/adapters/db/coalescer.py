"""Runs concurrent requests' items in batches, one batch at a time (group commit's queue).

While one batch runs, arriving items queue; when it returns, the queued items (up to
max_batch) form the next. No timer: a lone item runs at once, and batches grow with load.
Pure asyncio: what a batch does (wallet_batcher.py: one statement) is the caller's `run`.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
from typing import Awaitable, Callable, Generic, Hashable, TypeVar

BATCH_SIZE_MAX = 64

Item = TypeVar("Item")
Result = TypeVar("Result")


class Coalescer(Generic[Item, Result]):
    """Runs submitted items in batches, one batch at a time; `run` returns one result (or
    exception) per item. With `distinct_by`, a batch holds at most one item per key (an item
    whose key is None conflicts with none). With `group_by`, a batch holds items of one group
    only, the group of the oldest item queued (a sharded database: one shard per statement,
    docs/scaling.md); the other groups keep their places for the next batches."""

    def __init__(
        self,
        run: Callable[[list[Item]], Awaitable[list[Result | BaseException]]],
        max_batch: int = BATCH_SIZE_MAX,
        distinct_by: Callable[[Item], Hashable] | None = None,
        group_by: Callable[[Item], Hashable] | None = None,
    ):
        self._run = run
        self._max_batch = max_batch
        self._distinct_by = distinct_by
        self._group_by = group_by
        self._pending: collections.deque[tuple[Item, asyncio.Future]] = collections.deque()
        self._drainer: asyncio.Task | None = None
        self.closed = False
        self.batches = 0  # statements sent, for tests and the benchmark

    async def submit(self, item: Item) -> Result:
        if self.closed:
            raise BatcherStopped("the wallet batcher is closed")
        loop = asyncio.get_running_loop()  # on CPython 3.11 each call is a getpid() system call
        future = loop.create_future()
        self._pending.append((item, future))
        if self._drainer is None:
            # A context of its own: the drainer serves every caller, so it must not carry the
            # request id (or any other context) of the caller that happened to start it.
            self._drainer = loop.create_task(self._drain(), context=contextvars.Context())
        return await future

    def _take_batch(self) -> list[tuple[Item, asyncio.Future]]:
        batch: list[tuple[Item, asyncio.Future]] = []
        keys: set[Hashable] = set()
        deferred: collections.deque[tuple[Item, asyncio.Future]] = collections.deque()
        group: Hashable = None
        while self._pending and len(batch) < self._max_batch:
            entry = self._pending.popleft()
            if entry[1].done():  # its caller gave up: it neither runs nor holds its key's place
                continue
            if self._group_by is not None:
                if not batch:
                    group = self._group_by(entry[0])
                elif self._group_by(entry[0]) != group:
                    deferred.append(entry)
                    continue
            key = self._distinct_by(entry[0]) if self._distinct_by else None
            if key is None:
                batch.append(entry)
            elif key in keys:
                deferred.append(entry)
            else:
                keys.add(key)
                batch.append(entry)
        self._pending.extendleft(reversed(deferred))
        return batch

    async def _drain(self) -> None:
        batch: list[tuple[Item, asyncio.Future]] = []
        try:
            while self._pending:
                batch = self._take_batch()
                if not batch:
                    continue
                self.batches += 1
                try:
                    results = await self._run([item for item, _ in batch])
                except Exception as error:  # the whole batch shares it (a lost connection, say)
                    results = [error] * len(batch)
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():
                        continue
                    if isinstance(result, BaseException):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
                batch = []
        finally:
            # Reached with work left only when the drainer itself was cancelled or broke:
            # no caller may wait forever for an answer that will not come.
            self._drainer = None
            stranded = batch + list(self._pending)
            self._pending.clear()
            for _, future in stranded:
                if not future.done():
                    future.set_exception(BatcherStopped("the wallet batcher stopped before this request ran"))

    async def stop(self) -> None:
        """Waits until what is queued has run; later submits fail with BatcherStopped."""
        self.closed = True
        if self._drainer is not None:
            await asyncio.wait([self._drainer])


class BatcherStopped(RuntimeError):
    pass
