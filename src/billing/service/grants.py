"""CreateGrant: support and admin credits (welcome, gift) and signed adjustments."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from billing.domain.buckets import Bucket, Source
from billing.domain.errors import InvalidArgument
from billing.domain.limits import (
    GRANT_SECONDS_MAX, GRANT_SOURCES, require_account_id, require_idempotency_key, require_reason, require_seconds,
)
from billing.domain.wallet import EventType, Wallet
from billing.service.answer_codec import AnswerCodec
from billing.service.dependencies import Dependencies
from billing.service.results import GrantResult
from billing.service.wallet_change import Idempotency, WalletChange, change_wallet

GRANT_ANSWERS = AnswerCodec(GrantResult)
# A positive adjustment lands in a never-expiring gift bucket: the contract's bucket
# sources have no "adjustment"; the ledger event keeps type "adjustment".
_BUCKET_SOURCE = {"welcome": Source.WELCOME, "gift": Source.GIFT, "adjustment": Source.GIFT}
_DEFAULT_REASON = {"welcome": "Welcome bonus", "gift": "Gift from support", "adjustment": "Balance adjustment"}


async def create_grant(
    deps: Dependencies, account_id: str, source: str, seconds: int, reason: str, idempotency_key: str
) -> GrantResult:
    require_account_id(account_id)
    if source not in GRANT_SOURCES:
        raise InvalidArgument(f"source must be one of {', '.join(GRANT_SOURCES)}", field="source")
    minimum = -GRANT_SECONDS_MAX if source == "adjustment" else 1
    require_seconds(seconds, field="seconds", minimum=minimum, maximum=GRANT_SECONDS_MAX)
    if seconds == 0:
        raise InvalidArgument("seconds must not be zero", field="seconds")
    require_reason(reason)
    require_idempotency_key(idempotency_key)
    reason = reason or _DEFAULT_REASON[source]

    def grant(wallet: Wallet, now: datetime) -> GrantResult:
        metadata = {"grant_source": source, "idempotency_key": idempotency_key}
        if seconds > 0:
            credit_granted(wallet, now, source, seconds, reason, metadata)
        else:
            wallet.debit_adjustment(-seconds, reason, now, metadata)
        return GrantResult(
            user_id=account_id, source=source, seconds=seconds, totals=wallet.balance(now).totals,
            idempotency_key=idempotency_key,
        )

    fingerprint = f"grant:{source}:{seconds}:{reason}"
    return await change_wallet(
        deps, WalletChange(account_id, grant, idempotency=Idempotency(idempotency_key, fingerprint, GRANT_ANSWERS))
    )


def credit_granted(
    wallet: Wallet, now: datetime, source: str, seconds: int, reason: str, metadata: Mapping[str, Any],
    expires_at: datetime | None = None,
) -> Bucket:
    """A grant's credit: a bucket of its source (an adjustment's is a gift bucket), a ledger event
    of type adjustment; never expiring unless `expires_at` says when (an operator's grant may)."""
    return wallet.credit(
        _BUCKET_SOURCE[source], seconds, expires_at=expires_at, now=now,
        event_type=EventType.ADJUSTMENT, reason=reason, metadata=metadata,
    )
