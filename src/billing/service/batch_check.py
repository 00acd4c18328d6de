"""CheckSufficientBatch: a read-only preflight of several operations."""

from __future__ import annotations

from dataclasses import dataclass

from billing.domain.batch_check import check_cumulative
from billing.domain.errors import InvalidArgument, Suggestion
from billing.domain.limits import (
    BATCH_OPERATIONS_MAX, CONSUME_SECONDS_MAX, require_operation, require_seconds, require_account_id,
)
from billing.service.dependencies import Dependencies
from billing.service.wallet_reading import read_wallet


@dataclass(frozen=True)
class BatchResult:
    operation: str
    ok: bool
    deficit_seconds: int
    suggestions: tuple[Suggestion, ...]


async def check_sufficient_batch(
    deps: Dependencies, account_id: str, estimates: list[tuple[str, int]]
) -> list[BatchResult]:
    require_account_id(account_id)
    if not estimates:
        raise InvalidArgument("operations must hold at least one operation", field="operations")
    if len(estimates) > BATCH_OPERATIONS_MAX:
        raise InvalidArgument(f"operations may hold at most {BATCH_OPERATIONS_MAX} items", field="operations")
    for index, (operation, estimate_seconds) in enumerate(estimates):
        require_operation(operation, field=f"operations[{index}].operation")
        require_seconds(
            estimate_seconds, field=f"operations[{index}].estimate_seconds", minimum=0, maximum=CONSUME_SECONDS_MAX
        )
    now = deps.clock.now()
    wallet = await read_wallet(deps, account_id, now)
    balance_seconds = wallet.balance(now).totals.total_seconds
    plan_key = wallet.account.plan_key
    return [
        BatchResult(
            operation=check.operation,
            ok=check.ok,
            deficit_seconds=check.deficit_seconds,
            suggestions=deps.catalog.suggestions_for(check.deficit_seconds, plan_key) if not check.ok else (),
        )
        for check in check_cumulative(balance_seconds, estimates)
    ]
