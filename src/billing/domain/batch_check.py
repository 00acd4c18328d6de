"""Preflight of a list of operations against one balance, cumulative in the listed order."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OperationCheck:
    operation: str
    ok: bool
    deficit_seconds: int


def check_cumulative(balance_seconds: int, estimates: list[tuple[str, int]]) -> list[OperationCheck]:
    """Operation i is ok when the balance covers the estimates of operations 1..i."""
    assert balance_seconds >= 0
    checks = []
    needed = 0
    for operation, estimate_seconds in estimates:
        assert estimate_seconds >= 0
        needed += estimate_seconds
        deficit = max(0, needed - balance_seconds)
        checks.append(OperationCheck(operation=operation, ok=deficit == 0, deficit_seconds=deficit))
    return checks
