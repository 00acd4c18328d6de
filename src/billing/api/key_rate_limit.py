"""The per-key rate limit: each authenticated key gets its scope's token bucket in this process.

Checked after the signature (only a valid key spends its own budget; unsigned floods meet Envoy's
per-IP limit first). The limit holds across replicas without a shared store on the hot path: each
process takes its share, the rate and burst divided by the live replicas it last counted in
replica_heartbeats (share_among, from the replica reporter every ~10 s; docs/decisions.md "Per-key
limits across replicas"). Envoy spreads calls over the replicas, so together they accept at most
the key's limit; a key whose calls all reach one replica gets only that replica's share. A stream
(ConsumeStream, MeterSession) spends a token per message: its opening one is checked like a call,
the later ones are paced (read when the key has a token again), so a stream cannot outrun its key.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Awaitable, Callable, Mapping

from billing.domain.auth import ApiKey, Scope
from billing.domain.errors import RateLimited
from billing.domain.rate_limit import RateLimit, TokenBuckets, replica_share


class KeyRateLimiter:
    def __init__(
        self, limits: Mapping[Scope, RateLimit | None], clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ):
        self._configured = dict(limits)
        self._limits = dict(limits)
        self.replicas = 1
        self._clock = clock
        self._sleep = sleep
        self._buckets = TokenBuckets()

    def share_among(self, replicas: int) -> None:
        """From now on this process allows its share of each scope's limit: 1/replicas of it."""
        replicas = max(1, replicas)  # this process is live, whatever a count said
        if replicas != self.replicas:
            self._limits = {scope: None if limit is None else replica_share(limit, replicas)
                            for scope, limit in self._configured.items()}
            self.replicas = replicas

    async def pace(self, key: ApiKey) -> None:
        """Waits until the key may send one more message (a stream's): a stream is not refused past
        its key's rate, it is read at that rate (gRPC's flow control then holds the sender back)."""
        limit = self._limits.get(key.scope)
        if limit is None:
            return
        while (wait_seconds := self._buckets.take(key.key_id, limit, self._clock())) > 0:
            await self._sleep(wait_seconds)

    def check(self, key: ApiKey) -> None:
        limit = self._limits.get(key.scope)
        if limit is None:
            return
        wait_seconds = self._buckets.take(key.key_id, limit, self._clock())
        if wait_seconds > 0:
            raise RateLimited(
                "too many requests for this key; retry after Retry-After seconds",
                retry_after_seconds=max(1, math.ceil(wait_seconds)),
            )
