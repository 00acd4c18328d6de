"""Resume tokens: a refused operation may run once more, after a top-up, within the token's life.

An expired token is no token (issue 19, item 22): the contract's client (`retryWithResumeToken`)
knows success and 402 only, so a late resume runs as a plain consume: taken if the balance covers
it, else the contract's 402 with a new token. Expired tokens are kept a day past their expiry so
that a late one is still recognised as expired rather than unknown (400).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from billing.domain.errors import ResumeTokenInvalid, ResumeTokenUsed

KEPT_AFTER_EXPIRY = timedelta(days=1)


@dataclass(frozen=True)
class ResumeTokenRecord:
    operation: str
    expires_at: datetime
    used_at: datetime | None


def is_live(record: ResumeTokenRecord | None, now: datetime) -> bool:
    return record is not None and record.used_at is None and now < record.expires_at


def redeemable(record: ResumeTokenRecord | None, operation: str, now: datetime) -> bool:
    """True: the token resumes `operation` now (and is spent with it). False: it has expired,
    and the call runs as if it carried none. Raises for a token that is not this caller's to use."""
    if record is None or record.operation != operation:
        raise ResumeTokenInvalid(
            "resume_token is unknown or was issued for another user or operation", field="resume_token"
        )
    if record.used_at is not None:
        raise ResumeTokenUsed("resume_token was already used", field="resume_token")
    return now < record.expires_at


def forget_before(now: datetime) -> datetime:
    """Tokens that expired before this instant may be deleted."""
    return now - KEPT_AFTER_EXPIRY
