"""Consume: take AI time for one operation, exactly once per idempotency key."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from billing.domain.errors import (
    ConcurrentModification, InsufficientAiTime, ResumeTokenExpired, ResumeTokenInvalid, ResumeTokenUsed,
)
from billing.domain.limits import (
    CONSUME_SECONDS_MAX, RESUME_TOKEN_MAX_LENGTH, require_idempotency_key, require_operation,
    require_seconds, require_token, require_user_id,
)
from billing.service.dependencies import Dependencies
from billing.service.results import (
    ConsumeResult, TakenFromBucket, consume_result_from_json, consume_result_to_json,
)
from billing.service.wallet_loading import answer, load_wallet_for_request


# Optimistic attempts before taking the account lock: conflicts need two writers on one
# account at the same instant, so a retry almost always succeeds; the lock bounds the worst case.
OPTIMISTIC_ATTEMPTS = 4


class _NeedsLock(Exception):
    """The optimistic attempt reached a path that writes more than one statement."""


async def consume(
    deps: Dependencies, user_id: str, operation: str, seconds: int, idempotency_key: str, resume_token: str = ""
) -> ConsumeResult:
    require_user_id(user_id)
    require_operation(operation)
    require_seconds(seconds, field="seconds", minimum=1, maximum=CONSUME_SECONDS_MAX)
    require_idempotency_key(idempotency_key)
    require_token(resume_token, field="resume_token", max_length=RESUME_TOKEN_MAX_LENGTH, required=False)
    request = _Request(user_id, operation, seconds, idempotency_key, resume_token, f"consume:{operation}:{seconds}")
    async with deps.account_gate.passage(user_id):
        if not resume_token:
            for _ in range(OPTIMISTIC_ATTEMPTS):
                try:
                    return await _consume_once(deps, request, lock=False)
                except ConcurrentModification:
                    continue
                except _NeedsLock:
                    break
        return await _consume_once(deps, request, lock=True)


@dataclasses.dataclass(frozen=True)
class _Request:
    user_id: str
    operation: str
    seconds: int
    idempotency_key: str
    resume_token: str
    fingerprint: str


async def _consume_once(deps: Dependencies, request: _Request, *, lock: bool) -> ConsumeResult:
    """One attempt: locked (BEGIN ... COMMIT), or optimistic (one read, one checked write)."""
    now = deps.clock.now()
    user_id, key = request.user_id, request.idempotency_key
    async with deps.unit_of_work(optimistic=not lock) as uow:
        wallet, first_answer = await load_wallet_for_request(uow, user_id, now, key, request.fingerprint, lock=lock)
        if first_answer is not None:
            return consume_result_from_json(first_answer, replayed=True)
        if request.resume_token:
            await _check_resume_token(uow, user_id, request.resume_token, request.operation, now)
        wallet.grant_daily_bonus_if_due(deps.catalog.plan(wallet.account.plan_key), now)
        try:
            debits = wallet.consume(request.operation, request.seconds, now, metadata={"idempotency_key": key})
        except InsufficientAiTime as short:
            if not lock:
                raise _NeedsLock() from None  # the refusal writes a resume token: a locked transaction
            await _refuse(deps, uow, wallet, request, now, short)
        if request.resume_token:
            await uow.resume_tokens.mark_used(user_id, request.resume_token, now)
        result = ConsumeResult(
            user_id=user_id,
            operation=request.operation,
            consumed_seconds=request.seconds,
            taken=tuple(TakenFromBucket(str(d.bucket.source), d.seconds, d.bucket.expires_at) for d in debits),
            totals=wallet.balance(now).totals,
            idempotency_key=key,
        )
        uow.wallets.save(wallet, now, answer(key, request.fingerprint, consume_result_to_json(result)))
        await uow.commit()
    return result


async def _refuse(deps: Dependencies, uow, wallet, request: _Request, now: datetime, short: InsufficientAiTime):
    """Nothing is taken and the key is not stored, so a retry after a top-up may succeed."""
    token = request.resume_token or deps.new_resume_token()
    if not request.resume_token:
        await uow.resume_tokens.add(
            request.user_id, token, request.operation, request.seconds, now, now + deps.resume_token_ttl
        )
    uow.wallets.save(wallet, now)  # keeps a daily bonus granted just now
    await uow.commit()
    raise dataclasses.replace(
        short,
        suggestions=deps.catalog.suggestions_for(short.deficit_seconds, wallet.account.plan_key),
        catalog_version=deps.catalog.version,
        resume_token=token,
    ) from None


async def _check_resume_token(uow, user_id: str, token: str, operation: str, now: datetime) -> None:
    record = await uow.resume_tokens.get(user_id, token)
    if record is None or record.operation != operation:
        raise ResumeTokenInvalid(
            "resume_token is unknown or was issued for another user or operation", field="resume_token"
        )
    if record.used_at is not None:
        raise ResumeTokenUsed("resume_token was already used", field="resume_token")
    if record.expires_at <= now:
        raise ResumeTokenExpired("resume_token has expired", field="resume_token")
