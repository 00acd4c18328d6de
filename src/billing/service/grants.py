"""CreateGrant: support and admin credits (welcome, gift) and signed adjustments."""

from __future__ import annotations

from billing.domain.buckets import Source
from billing.domain.errors import InvalidArgument
from billing.domain.limits import (
    GRANT_SECONDS_MAX, GRANT_SOURCES, require_idempotency_key, require_reason, require_seconds, require_user_id,
)
from billing.domain.wallet import EventType
from billing.service.dependencies import Dependencies
from billing.service.results import GrantResult, grant_result_from_json, grant_result_to_json
from billing.service.wallet_loading import answer, load_wallet_for_request

# A positive adjustment lands in a never-expiring gift bucket: the contract's bucket
# sources have no "adjustment"; the ledger event keeps type "adjustment".
_BUCKET_SOURCE = {"welcome": Source.WELCOME, "gift": Source.GIFT, "adjustment": Source.GIFT}
_DEFAULT_REASON = {"welcome": "Welcome bonus", "gift": "Gift from support", "adjustment": "Balance adjustment"}


async def create_grant(
    deps: Dependencies, user_id: str, source: str, seconds: int, reason: str, idempotency_key: str
) -> GrantResult:
    require_user_id(user_id)
    if source not in GRANT_SOURCES:
        raise InvalidArgument(f"source must be one of {', '.join(GRANT_SOURCES)}", field="source")
    minimum = -GRANT_SECONDS_MAX if source == "adjustment" else 1
    require_seconds(seconds, field="seconds", minimum=minimum, maximum=GRANT_SECONDS_MAX)
    if seconds == 0:
        raise InvalidArgument("seconds must not be zero", field="seconds")
    require_reason(reason)
    require_idempotency_key(idempotency_key)
    reason = reason or _DEFAULT_REASON[source]
    fingerprint = f"grant:{source}:{seconds}:{reason}"
    now = deps.clock.now()
    async with deps.unit_of_work() as uow:
        wallet, first_answer = await load_wallet_for_request(uow, user_id, now, idempotency_key, fingerprint)
        if first_answer is not None:
            return grant_result_from_json(first_answer, replayed=True)
        metadata = {"grant_source": source, "idempotency_key": idempotency_key}
        if seconds > 0:
            wallet.credit(
                _BUCKET_SOURCE[source], seconds, expires_at=None, now=now,
                event_type=EventType.ADJUSTMENT, reason=reason, metadata=metadata,
            )
        else:
            wallet.debit_adjustment(-seconds, reason, now, metadata)
        result = GrantResult(
            user_id=user_id, source=source, seconds=seconds, totals=wallet.balance(now).totals,
            idempotency_key=idempotency_key,
        )
        uow.wallets.save(wallet, now, answer(idempotency_key, fingerprint, grant_result_to_json(result)))
        await uow.commit()
    return result
