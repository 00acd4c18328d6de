"""Holds: reserve AI time before work of unknown length, commit what it used, settle the rest.

Each call is one wallet change (service/wallet_change.py) in a transaction: the hold row and the
reservations on its buckets are written together. A hold's own id makes creating it idempotent
(the same request again answers the same hold; other values are HOLD_CONFLICT); commits carry a
cumulative `used_seconds`, so a retried commit takes nothing more; a release is idempotent by its
nature. An extend holds more each time it is applied: with an idempotency key, a retry replays the
first answer; without one, a retry reserves again, which can over-reserve but never charge (the
rest comes back when the hold settles).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, TypeVar

from billing.domain import holds
from billing.domain.balance import BalanceTotals
from billing.domain.errors import HoldConflict, HoldNotFound, InsufficientAiTime, InvalidArgument
from billing.domain.hold import Hold
from billing.domain.limits import (
    CONSUME_SECONDS_MAX, IDEMPOTENCY_KEY_LENGTH_MAX, RESUME_TOKEN_LENGTH_MAX, require_account_id,
    require_operation, require_seconds, require_token,
)
from billing.domain.wallet import BALANCE_SECONDS_MAX, Wallet
from billing.service.answer_codec import AnswerCodec
from billing.service.consume import offer_resume
from billing.service.dependencies import Dependencies
from billing.service.results import HoldResult, HoldView, OpenHolds
from billing.service.upkeep import account_upkeep, decide_topup
from billing.service.wallet_change import Idempotency, ResumeTokenUse, WalletChange, change_wallet

HOLD_ANSWERS = AnswerCodec(HoldResult)
R = TypeVar("R")


async def place_hold(
    deps: Dependencies, account_id: str, hold_id: str, operation: str, seconds: int, ttl_seconds: int = 0,
    resume_token: str = "",
) -> HoldResult:
    """ttl_seconds 0: the default (holds.HOLD_TTL_SECONDS_DEFAULT)."""
    require_account_id(account_id)
    _require_hold_id(hold_id)
    require_operation(operation)
    require_seconds(seconds, field="seconds", minimum=1, maximum=CONSUME_SECONDS_MAX)
    ttl = _require_ttl(ttl_seconds) or holds.HOLD_TTL_SECONDS_DEFAULT
    require_token(resume_token, field="resume_token", max_length=RESUME_TOKEN_LENGTH_MAX, required=False)

    def place(wallet: Wallet, now: datetime) -> HoldResult:
        existing = wallet.holds.get(hold_id)
        if existing is not None:
            if (existing.operation, existing.requested_seconds, existing.requested_ttl_seconds) != (operation, seconds, ttl):
                raise HoldConflict(f"hold_id {hold_id!r} was used with other values", field="hold_id")
            return _result(wallet, existing, now, replayed=True)
        hold = holds.place(wallet, hold_id, operation, seconds, ttl, now)
        decide_topup(deps.catalog, wallet, now)  # what it reserved may leave the balance under the threshold
        return _result(wallet, hold, now)

    change = _hold_change(
        deps, account_id, hold_id, place, resume=ResumeTokenUse(resume_token, operation) if resume_token else None,
        replays=lambda wallet: hold_id in wallet.holds,
    )
    try:
        return await change_wallet(deps, change)
    except InsufficientAiTime as short:
        refusal = await offer_resume(deps, account_id, operation, seconds, resume_token, short)
        deps.metrics.refused(operation)
        raise refusal from None


async def extend_hold(
    deps: Dependencies, account_id: str, hold_id: str, seconds: int, ttl_seconds: int = 0, idempotency_key: str = "",
) -> HoldResult:
    """Holds `seconds` more and/or moves the expiry to `ttl_seconds` from now (0: keeps it)."""
    require_account_id(account_id)
    _require_hold_id(hold_id)
    require_seconds(seconds, field="seconds", minimum=0, maximum=CONSUME_SECONDS_MAX)
    ttl = _require_ttl(ttl_seconds)
    require_token(idempotency_key, field="idempotency_key", max_length=IDEMPOTENCY_KEY_LENGTH_MAX, required=False)
    if seconds == 0 and ttl == 0:
        raise InvalidArgument("extend needs seconds to hold more, ttl_seconds to move the expiry, or both", field="seconds")

    def extend(wallet: Wallet, now: datetime) -> HoldResult:
        hold = holds.extend(wallet, _hold(wallet, hold_id), seconds, ttl or None, now)
        decide_topup(deps.catalog, wallet, now)
        return _result(wallet, hold, now)

    idempotency = None
    if idempotency_key:
        # Stored with the account's other answers under a key no request can send (keys and hold
        # ids have no spaces) and that no two (hold, key) pairs share.
        idempotency = Idempotency(
            f"hold extend {len(hold_id)} {hold_id} {idempotency_key}", f"extend:{hold_id}:{seconds}:{ttl}", HOLD_ANSWERS)
    return await change_wallet(deps, _hold_change(deps, account_id, hold_id, extend, idempotency=idempotency))


async def commit_hold(deps: Dependencies, account_id: str, hold_id: str, used_seconds: int, final: bool) -> HoldResult:
    """used_seconds is cumulative: each increase is a consumption; final settles the rest back."""
    require_account_id(account_id)
    _require_hold_id(hold_id)
    require_seconds(used_seconds, field="used_seconds", minimum=0, maximum=BALANCE_SECONDS_MAX)
    taken: list[tuple[str, int]] = []

    def commit(wallet: Wallet, now: datetime) -> HoldResult:
        hold = _hold(wallet, hold_id)
        committed = holds.commit(wallet, hold, used_seconds, final, now)
        taken[:] = [(hold.operation, committed.committed_seconds - hold.committed_seconds)]
        return _result(wallet, committed, now)

    result = await change_wallet(deps, _hold_change(deps, account_id, hold_id, commit))
    _count_consumed(deps, taken)
    return result


@dataclass(frozen=True)
class Advanced:
    result: HoldResult
    short: InsufficientAiTime | None  # the extension could not be held (the commit stands)


async def advance_hold(
    deps: Dependencies, account_id: str, hold_id: str, used_seconds: int, more_seconds: int, grace_seconds: int,
    *, keep_held_time: bool = True,
) -> Advanced:
    """A metered session's step, one change: commits `used_seconds` (cumulative), holds
    `more_seconds` more when it can, and moves the expiry to `grace_seconds` from now, plus the held
    time left after the change when keep_held_time (a living session), so it outlives what it holds."""
    short: list[InsufficientAiTime] = []
    taken: list[tuple[str, int]] = []

    def advance(wallet: Wallet, now: datetime) -> HoldResult:
        hold = _hold(wallet, hold_id)
        committed = holds.commit(wallet, hold, used_seconds, False, now)
        taken[:] = [(hold.operation, committed.committed_seconds - hold.committed_seconds)]
        try:
            grown = holds.extend(wallet, committed, more_seconds, None, now) if more_seconds else committed
        except InsufficientAiTime as refused:  # raised before it reserved anything
            short[:] = [refused]
            grown = committed
        held_left = grown.held_seconds - grown.committed_seconds if keep_held_time else 0
        ttl = holds.ttl_within_limits(held_left + grace_seconds)
        extended = holds.extend(wallet, grown, 0, ttl, now)
        decide_topup(deps.catalog, wallet, now)
        return _result(wallet, extended, now)

    result = await change_wallet(deps, _hold_change(deps, account_id, hold_id, advance))
    _count_consumed(deps, taken)
    if not short:
        return Advanced(result, None)
    refusal = await offer_resume(deps, account_id, result.hold.operation, more_seconds, "", short[0])
    return Advanced(result, refusal)


async def release_hold(deps: Dependencies, account_id: str, hold_id: str) -> HoldResult:
    """Settles at what was committed; releasing a settled hold answers it as it is."""
    require_account_id(account_id)
    _require_hold_id(hold_id)

    def release(wallet: Wallet, now: datetime) -> HoldResult:
        return _result(wallet, holds.release(wallet, _hold(wallet, hold_id), now), now)

    return await change_wallet(deps, _hold_change(deps, account_id, hold_id, release))


async def list_open_holds(deps: Dependencies, account_id: str) -> OpenHolds:
    """The open holds, oldest first (those past their expiry are settled first, as any read does)."""
    require_account_id(account_id)

    def listed(wallet: Wallet, now: datetime) -> OpenHolds:
        open_holds = tuple(_view(h) for h in holds.open_holds(wallet))
        return OpenHolds(account_id, open_holds, _totals(wallet, now))

    return await change_wallet(deps, _hold_change(deps, account_id, None, listed))


def _hold_change(
    deps: Dependencies, account_id: str, hold_id: str | None, apply: Callable[[Wallet, datetime], R],
    idempotency: Idempotency[R] | None = None, **options: Any,
) -> WalletChange[R]:
    """A change to the account's holds: upkeep first, the open holds (and `hold_id`'s) loaded; a
    change without an idempotency key is its own (hold ids, cumulative commits)."""
    return WalletChange(
        account_id, apply, prepare=account_upkeep(deps.catalog), loads_holds=True, hold_id=hold_id,
        idempotency=idempotency, repeatable=idempotency is None, **options,
    )


def _count_consumed(deps: Dependencies, taken: list[tuple[str, int]]) -> None:
    for operation, seconds in taken:
        if seconds:
            deps.metrics.consumed(operation, seconds)


def _hold(wallet: Wallet, hold_id: str) -> Hold:
    hold = wallet.holds.get(hold_id)
    if hold is None:
        raise HoldNotFound(f"no hold {hold_id!r} for this user", field="hold_id")
    return hold


def _result(wallet: Wallet, hold: Hold, now: datetime, replayed: bool = False) -> HoldResult:
    return HoldResult(_view(hold), _totals(wallet, now), replayed)


def _totals(wallet: Wallet, now: datetime) -> BalanceTotals:
    return wallet.balance(now).totals


def _view(hold: Hold) -> HoldView:
    return HoldView(
        hold_id=hold.hold_id, user_id=hold.account_id, operation=hold.operation, held_seconds=hold.held_seconds,
        committed_seconds=hold.committed_seconds, state=str(hold.state), expires_at=hold.expires_at,
    )


def _require_hold_id(hold_id: str) -> None:
    require_token(hold_id, field="hold_id", max_length=IDEMPOTENCY_KEY_LENGTH_MAX, required=True)


def _require_ttl(ttl_seconds: int) -> int:
    """0 (not given) or within the hold TTL range."""
    if ttl_seconds:
        require_seconds(ttl_seconds, field="ttl_seconds", minimum=holds.HOLD_TTL_SECONDS_MIN,
                        maximum=holds.HOLD_TTL_SECONDS_MAX)
    return ttl_seconds
