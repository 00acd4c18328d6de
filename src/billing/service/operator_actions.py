"""Operator actions on an account (issue 23): grant, claw back, cancel or change a subscription,
turn auto top-up off, revoke a key. Each is one use case with its audit entry (service/audit.py) in
the transaction of its change; refunds are service/operator_refunds.py.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Awaitable, Callable

from billing.domain.audit import NO_ACCOUNT, OPERATOR_GRANT_SOURCES, OPERATOR_SECONDS_MAX, Action, require_plan_key
from billing.domain.auth import KEY_ID_LENGTH_MAX
from billing.domain.errors import ActionNotPossible, ApiKeyNotFound, BalanceTooLow, InvalidArgument
from billing.domain.limits import require_account_id, require_seconds, require_token
from billing.domain.wallet import Wallet
from billing.service import subscriptions
from billing.service.audit import (
    Acted, ActionRequest, ActionResult, AuditBuilder, action_request, answer_of_winner, audited_change,
    earlier_answer, record_action,
)
from billing.service.auto_topup import turn_off
from billing.service.dependencies import Dependencies
from billing.service.grants import credit_granted
from billing.service.ports import AuditKeyTaken, UnitOfWork
from billing.service.upkeep import account_upkeep
from billing.service.wallet_reading import read_wallet


def _metadata(request: ActionRequest, builder_detail: dict[str, Any]) -> dict[str, Any]:
    """What the ledger rows of an action say of it: the console links a row to its entry by the key."""
    return {"operator_action": request.action, "operator_key_id": request.operator_key_id,
            "idempotency_key": request.idempotency_key, **builder_detail}


async def grant(
    deps: Dependencies, operator_key_id: str, user_id: str, source: str, seconds: int,
    expires_at: datetime | None, reason: str, idempotency_key: str,
) -> ActionResult:
    require_account_id(user_id)
    if source not in OPERATOR_GRANT_SOURCES:
        raise InvalidArgument(f"source must be one of {', '.join(OPERATOR_GRANT_SOURCES)}", field="source")
    require_seconds(seconds, field="seconds", minimum=1, maximum=OPERATOR_SECONDS_MAX)
    if expires_at is not None and expires_at <= deps.clock.now():
        raise InvalidArgument("expires_at must be in the future", field="expires_at")
    request = action_request(Action.GRANT, operator_key_id, reason, idempotency_key, user_id=user_id, source=source,
                             seconds=seconds, expires_at=expires_at.isoformat() if expires_at else None)

    def apply(wallet: Wallet, now: datetime, detail: dict[str, Any]) -> None:
        if expires_at is not None and expires_at <= now:
            raise InvalidArgument("expires_at must be in the future", field="expires_at")
        metadata = _metadata(request, {"grant_source": source})
        bucket = credit_granted(wallet, now, source, seconds, request.reason, metadata, expires_at)
        detail.update(source=source, seconds=seconds, bucket_seq=bucket.bucket_seq,
                      expires_at=expires_at.isoformat() if expires_at else None)

    return await audited_change(deps, request, user_id, apply, prepare=account_upkeep(deps.catalog))


async def claw_back(
    deps: Dependencies, operator_key_id: str, user_id: str, seconds: int, reason: str, idempotency_key: str,
) -> ActionResult:
    """A negative adjustment of purchased and granted time, never below zero: held seconds (an
    open hold's) and today's daily bonus are not available to take."""
    require_account_id(user_id)
    require_seconds(seconds, field="seconds", minimum=1, maximum=OPERATOR_SECONDS_MAX)
    request = action_request(Action.CLAW_BACK, operator_key_id, reason, idempotency_key, user_id=user_id,
                             seconds=seconds)

    def apply(wallet: Wallet, now: datetime, detail: dict[str, Any]) -> None:
        available = sum(bucket.free_seconds for bucket in wallet.balance(now).paid)
        if seconds > available:
            raise BalanceTooLow(
                f"cannot claw back {seconds}s: only {available}s are available to take (held seconds and "
                "the daily bonus are not taken); the balance never goes below zero", field="seconds")
        debits = wallet.debit_adjustment(seconds, request.reason, now, _metadata(request, {}))
        detail.update(seconds=seconds, available_seconds=available,
                      buckets=[{"bucket_seq": d.bucket.bucket_seq, "seconds": d.seconds} for d in debits])

    return await audited_change(deps, request, user_id, apply, prepare=account_upkeep(deps.catalog))


async def disable_auto_topup(
    deps: Dependencies, operator_key_id: str, user_id: str, reason: str, idempotency_key: str,
) -> ActionResult:
    require_account_id(user_id)
    request = action_request(Action.DISABLE_AUTO_TOPUP, operator_key_id, reason, idempotency_key, user_id=user_id)

    def apply(wallet: Wallet, now: datetime, detail: dict[str, Any]) -> None:
        detail.update(was_enabled=turn_off(wallet), pending_payment=wallet.account.auto_topup.pending)

    return await audited_change(deps, request, user_id, apply, prepare=account_upkeep(deps.catalog))


async def cancel_subscription(
    deps: Dependencies, operator_key_id: str, user_id: str, reason: str, idempotency_key: str,
) -> ActionResult:
    """At the end of the current period, as the user's own cancel (service/subscriptions.py)."""
    require_account_id(user_id)
    request = action_request(Action.CANCEL_SUBSCRIPTION, operator_key_id, reason, idempotency_key, user_id=user_id)
    return await _subscription_action(deps, request, user_id, {}, lambda audit: subscriptions.cancel_subscription(
        deps, user_id, _provider_key(request), audit))


async def change_subscription(
    deps: Dependencies, operator_key_id: str, user_id: str, plan_key: str, reason: str, idempotency_key: str,
) -> ActionResult:
    """Up now (its invoice credits when paid), down at the period's end, as the user's own change."""
    require_account_id(user_id)
    require_plan_key(plan_key)
    request = action_request(Action.CHANGE_SUBSCRIPTION, operator_key_id, reason, idempotency_key, user_id=user_id,
                             plan_key=plan_key)
    return await _subscription_action(
        deps, request, user_id, {"requested_plan_key": plan_key},
        lambda audit: subscriptions.change_plan(deps, user_id, plan_key, _provider_key(request), audit))


def _provider_key(request: ActionRequest) -> str:
    """The key the subscription use cases pass on to the provider: a digest of this request's, so a
    retry is the same call there and any key the operator may use (up to 128 characters) fits what
    those use cases accept (a prefix would push a 120..128 character key over their limit)."""
    return "op_" + hashlib.sha256(f"operator\x1f{request.idempotency_key}".encode()).hexdigest()[:40]


async def _subscription_action(
    deps: Dependencies, request: ActionRequest, user_id: str, detail: dict[str, Any],
    run: Callable[[AuditBuilder], Awaitable[subscriptions.SubscriptionStatus]],
) -> ActionResult:
    earlier = await earlier_answer(deps, request)
    if earlier is not None:
        return earlier
    builder = AuditBuilder(request, detail, describe=_subscription_state)
    try:
        status = await run(builder)
    except AuditKeyTaken:
        return await answer_of_winner(deps, request)
    if builder.entry is not None:
        return ActionResult(builder.entry)
    # The provider's answer changed nothing here (a late answer of an older subscription): the
    # entry is written alone, with the account's totals.
    now = deps.clock.now()
    totals = (await read_wallet(deps, user_id, now)).balance(now).totals
    described = {**detail, "plan_key": status.plan_key, "subscription_status": status.subscription_status}

    async def act(uow: UnitOfWork, now: datetime) -> Acted:
        return Acted(user_id, totals, totals, described)

    return await record_action(deps, request, act)


def _subscription_state(wallet: Wallet) -> dict[str, Any]:
    account = wallet.account
    return {"plan_key": account.plan_key, "subscription_status": account.subscription_status,
            "cancel_at_period_end": account.subscription.cancel_at_period_end,
            "pending_plan_key": account.subscription.pending_plan_key}


async def revoke_key(
    deps: Dependencies, operator_key_id: str, key_id: str, reason: str, idempotency_key: str,
) -> ActionResult:
    """A stored key stops signing on every replica within a refresh of their key copies (5 s; this
    replica at once: the servicer refreshes it). The key that signs this call may not revoke itself."""
    require_token(key_id, field="key_id", max_length=KEY_ID_LENGTH_MAX, required=True)
    request = action_request(Action.REVOKE_KEY, operator_key_id, reason, idempotency_key, key_id=key_id)
    if key_id == operator_key_id:
        raise ActionNotPossible("an operator cannot revoke the key they are signed in with "
                                "(use `billing keys revoke`, or another admin key)", field="key_id")
    earlier = await earlier_answer(deps, request)
    if earlier is not None:
        return earlier

    async def act(uow: UnitOfWork, now: datetime) -> Acted:
        key = await uow.stored_keys.get(key_id, lock=True)
        if key is None:
            raise ApiKeyNotFound(f"no stored key {key_id!r} (session keys have no row: they expire by themselves, "
                                 "within 24 h)", field="key_id")
        if key.revoked_at is not None:
            raise ActionNotPossible(f"the key was revoked at {key.revoked_at.isoformat()}", field="key_id")
        await uow.stored_keys.revoke(key_id, now)
        detail = {"key_id": key_id, "scope": str(key.scope), "user_id": key.user_id,
                  "expires_at": key.expires_at.isoformat()}
        return Acted(key.user_id or NO_ACCOUNT, None, None, detail)

    return await record_action(deps, request, act)
