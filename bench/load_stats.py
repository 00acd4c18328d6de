"""Latency percentiles and CPU time of the load generators (pure, no I/O but getrusage)."""

from __future__ import annotations

import math
import resource
from typing import Sequence

PERCENTILES = (("p50_ms", 50.0), ("p90_ms", 90.0), ("p99_ms", 99.0), ("p999_ms", 99.9))


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of an ascending sequence; 0.0 when empty.

    The smallest value with at least q% of the values <= it: p50 of 1..100 is 50, p99.9 is 100.
    """
    n = len(sorted_values)
    if n == 0:
        return 0.0
    if q <= 0:
        return sorted_values[0]
    rank = math.ceil(q / 100.0 * n - 1e-9)  # 1-based; the epsilon keeps 99.9% of 1000 at 999
    return sorted_values[min(max(rank, 1), n) - 1]


def latency_summary(latencies_s: list[float]) -> dict[str, float]:
    """p50/p90/p99/p99.9/max in milliseconds (rounded to µs) of latencies in seconds; sorts in place."""
    latencies_s.sort()
    out = {name: round(percentile(latencies_s, q) * 1000.0, 3) for name, q in PERCENTILES}
    out["max_ms"] = round((latencies_s[-1] if latencies_s else 0.0) * 1000.0, 3)
    return out


def cpu_seconds() -> float:
    """user+sys CPU of this process (all threads) so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
