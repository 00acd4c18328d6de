"""Token buckets per API key: how many calls a key may make, per second and in a burst.

Time is passed in (seconds on any monotonic scale). Memory is bounded: past `max_keys` buckets,
the full ones are forgotten (a full bucket is the same as a new one); if every bucket is in use,
all are forgotten at once, which lets each key a burst more but never refuses a caller wrongly.
"""

from __future__ import annotations

from dataclasses import dataclass

TRACKED_KEYS_MAX = 100_000


@dataclass(frozen=True)
class RateLimit:
    per_second: float
    burst: float

    def __post_init__(self) -> None:
        if self.per_second <= 0 or self.burst < 1:
            raise ValueError(f"a rate limit needs a positive rate and a burst of at least 1: {self}")


def replica_share(limit: RateLimit, replicas: int) -> RateLimit:
    """One replica's part of a limit that holds across `replicas` live ones (each keeps its own buckets):
    the rate and the burst divided by their number, so together they accept at most the limit when
    the calls are spread over them. The burst stays at least one call (a bucket below one never
    refills to a call), which is the only way the sum can pass the limit: past `burst` replicas."""
    if replicas <= 1:
        return limit
    return RateLimit(limit.per_second / replicas, max(1.0, limit.burst / replicas))


class TokenBuckets:
    def __init__(self, max_keys: int = TRACKED_KEYS_MAX):
        self._max_keys = max_keys
        self._buckets: dict[str, tuple[float, float, RateLimit]] = {}  # key -> (tokens, at, its limit)

    def take(self, key: str, limit: RateLimit, now: float) -> float:
        """Takes one token: 0.0 when the call may go, else the seconds until a token is there."""
        tokens, at, _ = self._buckets.get(key, (limit.burst, now, limit))
        tokens = min(limit.burst, tokens + max(0.0, now - at) * limit.per_second)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now, limit)
            return (1.0 - tokens) / limit.per_second
        if key not in self._buckets and len(self._buckets) >= self._max_keys:
            self._forget_full(now)
        self._buckets[key] = (tokens - 1.0, now, limit)
        return 0.0

    def _forget_full(self, now: float) -> None:
        self._buckets = {
            key: (tokens, at, limit) for key, (tokens, at, limit) in self._buckets.items()
            if tokens + (now - at) * limit.per_second < limit.burst
        }
        if len(self._buckets) >= self._max_keys:
            self._buckets.clear()

    def __len__(self) -> int:
        return len(self._buckets)
