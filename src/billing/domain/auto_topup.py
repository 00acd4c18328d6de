"""Auto top-up: when a consume leaves the live balance under the account's threshold, buy its
chosen package off-session, exactly once.

The decision is a change to the account (its top-up sequence number and "pending"), written
with an `auto_topup_triggered` notice in the same transaction as the consume that caused it, so
concurrent consumes on any number of replicas decide once: the account's version check lets one
writer through and the others see "pending". The payment itself is created after commit, with
the provider's idempotency key derived from (account, sequence number), so a retry of the same
attempt is the same payment. The credit lands with the payment's webhook (a package credit),
which ends "pending".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
# A failed payment is retried after these delays; after the last, auto top-up turns itself off.
RETRY_DELAYS = (timedelta(minutes=10), timedelta(hours=1), timedelta(hours=6))
ATTEMPTS_MAX = len(RETRY_DELAYS) + 1
# A pending attempt with no outcome after this long (a crash between the decision and the
# payment, or a provider outage) is sent again under the same idempotency key: the same payment.
RESEND_PENDING_AFTER = timedelta(minutes=15)
# Past this, the provider has forgotten the idempotency key (24 h): the attempt counts as failed
# rather than risk a second payment.
GIVE_UP_PENDING_AFTER = timedelta(hours=23)

REQUIRES_ACTION = "requires_action"  # the card needs the customer (3-D Secure): never retried blindly


@dataclass(frozen=True)
class AutoTopup:
    enabled: bool = False
    threshold_seconds: int = 0
    package_key: str | None = None
    currency: str | None = None
    seq: int = 0  # attempts decided so far; the pending one is `seq`
    pending_since: datetime | None = None  # when the pending attempt was decided
    failures: int = 0  # consecutive failed attempts
    # Pending: when to send the attempt again. Not pending: no new attempt before it (backoff).
    retry_at: datetime | None = None
    last_failure: str | None = None  # the provider's code (card_declined, requires_action, ...)

    @property
    def pending(self) -> bool:
        return self.pending_since is not None


def attempt_due(topup: AutoTopup, live_seconds: int, now: datetime) -> str | None:
    """"new", "resend" or None."""
    if not topup.enabled or topup.package_key is None:
        return None
    if topup.pending_since is not None:
        resend_at = topup.retry_at or topup.pending_since + RESEND_PENDING_AFTER
        return "resend" if now >= resend_at else None
    if topup.last_failure == REQUIRES_ACTION:
        return None  # waits for the customer, then a new setting (PUT) clears it
    if topup.retry_at is not None and now < topup.retry_at:
        return None
    return "new" if live_seconds < topup.threshold_seconds else None
