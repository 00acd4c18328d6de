"""Consume: take AI time for one operation, exactly once per idempotency key.

A refusal (402) keeps today's daily bonus if it granted it, and issues a resume token in a
transaction of its own, after the refusal: if that fails the client gets a 503 and its retry
gets a new refusal and a new token (docs/decisions.md, "A refusal is written without a lock").
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from billing.domain.errors import InsufficientAiTime
from billing.domain.limits import (
    CONSUME_SECONDS_MAX, RESUME_TOKEN_LENGTH_MAX, require_account_id, require_idempotency_key,
    require_operation, require_seconds, require_token,
)
from billing.domain.resume_tokens import is_live
from billing.domain.wallet import Wallet
from billing.service.answer_codec import AnswerCodec
from billing.service.upkeep import account_upkeep, decide_topup
from billing.service.dependencies import Dependencies
from billing.service.results import ConsumeResult, TakenFromBucket
from billing.service.wallet_change import Idempotency, ResumeTokenUse, WalletChange, change_wallet

CONSUME_ANSWERS = AnswerCodec(ConsumeResult)


async def consume(
    deps: Dependencies, account_id: str, operation: str, seconds: int, idempotency_key: str, resume_token: str = ""
) -> ConsumeResult:
    require_account_id(account_id)
    require_operation(operation)
    require_seconds(seconds, field="seconds", minimum=1, maximum=CONSUME_SECONDS_MAX)
    require_idempotency_key(idempotency_key)
    require_token(resume_token, field="resume_token", max_length=RESUME_TOKEN_LENGTH_MAX, required=False)

    def take(wallet: Wallet, now: datetime) -> ConsumeResult:
        debits = wallet.consume(operation, seconds, now, metadata={"idempotency_key": idempotency_key})
        decide_topup(deps.catalog, wallet, now)  # the consume may have left the balance under the threshold
        return ConsumeResult(
            user_id=account_id,
            operation=operation,
            consumed_seconds=seconds,
            taken=tuple(TakenFromBucket(str(d.bucket.source), d.seconds, d.bucket.expires_at) for d in debits),
            totals=wallet.balance(now).totals,
            idempotency_key=idempotency_key,
        )

    change = WalletChange(
        account_id, take, prepare=account_upkeep(deps.catalog),
        idempotency=Idempotency(idempotency_key, f"consume:{operation}:{seconds}", CONSUME_ANSWERS),
        resume=ResumeTokenUse(resume_token, operation) if resume_token else None,
    )
    try:
        result = await change_wallet(deps, change)
    except InsufficientAiTime as short:
        refusal = await offer_resume(deps, account_id, operation, seconds, resume_token, short)
        deps.metrics.refused(operation)  # counted once the 402 is what the client gets
        raise refusal from None
    if not result.replayed:
        deps.metrics.consumed(operation, seconds)
    return result


async def offer_resume(
    deps: Dependencies, account_id: str, operation: str, seconds: int, resume_token: str, short: InsufficientAiTime
) -> InsufficientAiTime:
    """The refusal as the client gets it: what would cover the deficit, and a token to resume the
    operation once after a top-up (the one it came with, when it was already resuming and the token
    is still live; a new one when it came with an expired one, which counts as none)."""
    now = deps.clock.now()
    async with deps.storage.transaction() as uow:
        if resume_token and is_live(await uow.resume_tokens.get(account_id, resume_token), now):
            token = resume_token
        else:
            token = deps.new_resume_token()
            await uow.resume_tokens.add(account_id, token, operation, seconds, now, now + deps.resume_token_ttl)
            await uow.commit()
    return dataclasses.replace(
        short,
        suggestions=deps.catalog.suggestions_for(short.deficit_seconds, short.plan_key),
        catalog_version=deps.catalog.version,
        resume_token=token,
    )
