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

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from billing.domain.wallet import Wallet

# A failed payment is retried after these delays; after the last, auto top-up turns itself off.
RETRY_DELAYS = (timedelta(minutes=10), timedelta(hours=1), timedelta(hours=6))
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
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


@dataclass(frozen=True)
class TopupAttempt:
    """What the use case does after commit: (re)send attempt `seq` to the provider."""

    seq: int
    package_key: str
    currency: str
    resend: bool


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


def decide(wallet: "Wallet", now: datetime, package_minutes: int) -> TopupAttempt | None:
    """Called inside a wallet change: marks the decision (and its notice) on the wallet."""
    from billing.domain.wallet import EventType

    topup = wallet.account.auto_topup
    if not topup.enabled:
        return None  # before the balance: every consume asks
    live = wallet.balance(now).totals.total_seconds
    due = attempt_due(topup, live, now)
    if due is None or wallet.account.last_bucket_seq == 0:
        return None
    assert topup.package_key is not None and topup.currency is not None
    if due == "resend":
        assert topup.pending_since is not None
        if now - topup.pending_since >= GIVE_UP_PENDING_AFTER:
            record_failure(wallet, now, "no_outcome")
            return None
        wallet.change_auto_topup(dataclasses.replace(topup, retry_at=now + RESEND_PENDING_AFTER))
        wallet.topup_attempt = TopupAttempt(topup.seq, topup.package_key, topup.currency, resend=True)
        return wallet.topup_attempt
    seq = topup.seq + 1
    wallet.change_auto_topup(dataclasses.replace(topup, seq=seq, pending_since=now, retry_at=None))
    wallet.notice(
        EventType.AUTO_TOPUP_TRIGGERED, f"Auto top-up: buying the {topup.package_key} package",
        wallet.account.last_bucket_seq, now,
        {"topup_seq": seq, "package_key": topup.package_key, "package_minutes": package_minutes,
         "currency": topup.currency, "threshold_seconds": topup.threshold_seconds, "balance_seconds": live},
    )
    wallet.topup_attempt = TopupAttempt(seq, topup.package_key, topup.currency, resend=False)
    return wallet.topup_attempt


def record_failure(wallet: "Wallet", now: datetime, code: str) -> bool:
    """A failed attempt: retried later with backoff, or (after MAX_ATTEMPTS, or when the customer
    must act) auto top-up stops. Returns True when it turned itself off."""
    from billing.domain.wallet import EventType

    topup = wallet.account.auto_topup
    failures = topup.failures + 1
    gives_up = failures >= MAX_ATTEMPTS
    retry_at = None if gives_up or code == REQUIRES_ACTION else now + RETRY_DELAYS[failures - 1]
    wallet.change_auto_topup(dataclasses.replace(
        topup, pending_since=None, failures=failures, retry_at=retry_at, last_failure=code,
        enabled=topup.enabled and not gives_up,
    ))
    if gives_up and wallet.account.last_bucket_seq > 0:
        wallet.notice(
            EventType.AUTO_TOPUP_TRIGGERED, f"Auto top-up turned off after {failures} failed payments",
            wallet.account.last_bucket_seq, now, {"topup_seq": topup.seq, "disabled": True, "last_failure": code},
        )
    return gives_up


def record_success(wallet: "Wallet", seq: int) -> None:
    """The attempt's payment was credited: no longer pending, failures forgotten."""
    topup = wallet.account.auto_topup
    if seq != topup.seq:
        return  # an older attempt's late credit: the pending one is another
    wallet.change_auto_topup(dataclasses.replace(topup, pending_since=None, failures=0, retry_at=None, last_failure=None))
