"""Resume tokens: a refused operation may run once more, after a top-up, within the token's life."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from billing.domain.errors import ResumeTokenExpired, ResumeTokenInvalid, ResumeTokenUsed


@dataclass(frozen=True)
class ResumeTokenRecord:
    operation: str
    expires_at: datetime
    used_at: datetime | None


def require_redeemable(record: ResumeTokenRecord | None, operation: str, now: datetime) -> None:
    """Raises unless the token (None: unknown to this account) may resume `operation` now."""
    if record is None or record.operation != operation:
        raise ResumeTokenInvalid(
            "resume_token is unknown or was issued for another user or operation", field="resume_token"
        )
    if record.used_at is not None:
        raise ResumeTokenUsed("resume_token was already used", field="resume_token")
    if record.expires_at <= now:
        raise ResumeTokenExpired("resume_token has expired", field="resume_token")
