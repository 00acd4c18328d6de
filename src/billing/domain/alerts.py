"""Balance alerts: an account's thresholds and where its available balance stands against them.

The state is the lowest threshold the available balance is below (`below_seconds`), with 1 for an
empty balance (nothing is below 1 s but zero), and None when it is at or above every threshold.
An event is due when the state moves: below a threshold it was not below (`balance.low`, once per
crossing, whatever the change that crossed it), to empty (`balance.depleted`), or back above them
all (`balance.recovered`). Comparing states rather than a balance before and after means no
"before" is needed, and concurrent changes cannot both see the same crossing: the state is saved
with the change, under its version check.
"""

from __future__ import annotations

from dataclasses import dataclass

from billing.domain.errors import InvalidArgument

DEFAULT_THRESHOLDS_SECONDS = (600, 120)
THRESHOLDS_MAX = 5
THRESHOLD_SECONDS_MAX = 1_000_000_000
EMPTY = 1  # the state of an empty balance: below 1 s


@dataclass(frozen=True)
class AlertState:
    thresholds_seconds: tuple[int, ...] | None = None  # None: the catalog's default
    below_seconds: int | None = None


@dataclass(frozen=True)
class Crossing:
    type: str  # balance.low | balance.depleted | balance.recovered
    threshold_seconds: int | None = None


def require_thresholds(thresholds: list[int] | tuple[int, ...]) -> tuple[int, ...]:
    """At most 5, distinct, positive; kept highest first."""
    if len(thresholds) > THRESHOLDS_MAX:
        raise InvalidArgument(f"thresholds_seconds may hold at most {THRESHOLDS_MAX} values", field="thresholds_seconds")
    if any(not 0 < t <= THRESHOLD_SECONDS_MAX for t in thresholds):
        raise InvalidArgument(
            f"thresholds_seconds must be between 1 and {THRESHOLD_SECONDS_MAX}", field="thresholds_seconds")
    if len(set(thresholds)) != len(thresholds):
        raise InvalidArgument("thresholds_seconds must be distinct", field="thresholds_seconds")
    return tuple(sorted(thresholds, reverse=True))


def level_of(available_seconds: int, thresholds: tuple[int, ...]) -> int | None:
    below = [t for t in thresholds if available_seconds < t]
    if available_seconds == 0:
        below.append(EMPTY)
    return min(below) if below else None


def crossings(old_level: int | None, new_level: int | None, thresholds: tuple[int, ...]) -> list[Crossing]:
    """What moving from `old_level` to `new_level` announces, highest threshold first."""
    if new_level == old_level:
        return []
    if new_level is None:
        return [Crossing("balance.recovered")]
    events = [
        Crossing("balance.low", t) for t in sorted(thresholds, reverse=True)
        if t >= new_level and (old_level is None or t < old_level)
    ]
    if new_level == EMPTY:
        events.append(Crossing("balance.depleted"))
    return events
