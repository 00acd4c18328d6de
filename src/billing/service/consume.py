"""Consume: take AI time for one operation, exactly once per idempotency key."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from billing.domain.errors import (
    InsufficientAiTime, ResumeTokenExpired, ResumeTokenInvalid, ResumeTokenUsed,
)
from billing.domain.limits import (
    CONSUME_SECONDS_MAX, RESUME_TOKEN_MAX_LENGTH, require_idempotency_key, require_operation,
    require_seconds, require_token, require_user_id,
)
from billing.service.dependencies import Dependencies
from billing.service.results import (
    ConsumeResult, TakenFromBucket, consume_result_from_json, consume_result_to_json,
)
from billing.service.wallet_loading import answer, lock_wallet_for_request


async def consume(
    deps: Dependencies, user_id: str, operation: str, seconds: int, idempotency_key: str, resume_token: str = ""
) -> ConsumeResult:
    require_user_id(user_id)
    require_operation(operation)
    require_seconds(seconds, field="seconds", minimum=1, maximum=CONSUME_SECONDS_MAX)
    require_idempotency_key(idempotency_key)
    require_token(resume_token, field="resume_token", max_length=RESUME_TOKEN_MAX_LENGTH, required=False)
    fingerprint = f"consume:{operation}:{seconds}"
    now = deps.clock.now()
    async with deps.unit_of_work() as uow:
        # The account lock serializes every write to this account, duplicates included.
        wallet, first_answer = await lock_wallet_for_request(uow, user_id, now, idempotency_key, fingerprint)
        if first_answer is not None:
            return consume_result_from_json(first_answer, replayed=True)
        if resume_token:
            await _check_resume_token(uow, user_id, resume_token, operation, now)
        wallet.grant_daily_bonus_if_due(deps.catalog.plan(wallet.account.plan_key), now)
        try:
            debits = wallet.consume(operation, seconds, now, metadata={"idempotency_key": idempotency_key})
        except InsufficientAiTime as short:
            # Nothing is taken and the key is not stored: a retry after a top-up may succeed.
            token = resume_token or deps.new_resume_token()
            if not resume_token:
                await uow.resume_tokens.add(user_id, token, operation, seconds, now, now + deps.resume_token_ttl)
            uow.wallets.save(wallet, now)  # keeps a daily bonus granted just now
            await uow.commit()
            raise dataclasses.replace(
                short,
                suggestions=deps.catalog.suggestions_for(short.deficit_seconds, wallet.account.plan_key),
                catalog_version=deps.catalog.version,
                resume_token=token,
            ) from None
        if resume_token:
            await uow.resume_tokens.mark_used(user_id, resume_token, now)
        result = ConsumeResult(
            user_id=user_id,
            operation=operation,
            consumed_seconds=seconds,
            taken=tuple(
                TakenFromBucket(str(d.bucket.source), d.seconds, d.bucket.expires_at) for d in debits
            ),
            totals=wallet.balance(now).totals,
            idempotency_key=idempotency_key,
        )
        uow.wallets.save(wallet, now, answer(idempotency_key, fingerprint, consume_result_to_json(result)))
        await uow.commit()
    return result


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
