"""Credit expiry notices: `credit.expiring` three days before a bucket expires, `credit.expired`
when it has, once per bucket, for what would be lost (its free seconds).

Only buckets whose expiry loses credit are announced: packages (top-ups included) and rollover
buckets (whose `rollover_discard_pending` notice, a week ahead, already is their expiring notice).
Daily bonus buckets expire every midnight by design, and an ended subscription period's seconds
are rolled over or discarded by the period's close, which announces what it discards.

The account row keeps when the next notice is due (`credit_notice_at`): a change or read after that
instant loads the buckets that expired since then and runs this (it is upkeep), and `billing tick`
finds idle accounts by it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from billing.domain.buckets import Bucket, Source
from billing.domain.events import CreditExpired, CreditExpiring
from billing.domain.wallet import Wallet

EXPIRING_LEAD = timedelta(days=3)
NONE, EXPIRING, EXPIRED = 0, 1, 2
_ANNOUNCED = frozenset({Source.PACKAGE, Source.ROLLOVER})


def announce_expiring_credit(wallet: Wallet, now: datetime) -> None:
    for bucket in sorted(wallet.buckets, key=lambda b: b.bucket_seq):
        if not _announced(bucket):
            continue
        assert bucket.expires_at is not None
        if bucket.expiry_notice < EXPIRED and now >= bucket.expires_at:
            wallet.mark_expiry_notice(bucket.bucket_seq, EXPIRED)
            if bucket.free_seconds:
                wallet.record(CreditExpired(wallet.account.account_id, bucket.bucket_seq, str(bucket.source),
                                            bucket.free_seconds, bucket.expires_at))
        elif bucket.expiry_notice < EXPIRING and now >= bucket.expires_at - EXPIRING_LEAD:
            wallet.mark_expiry_notice(bucket.bucket_seq, EXPIRING)
            if bucket.source != Source.ROLLOVER:  # announced a week ahead by its discard notice
                wallet.record(CreditExpiring(wallet.account.account_id, bucket.bucket_seq, str(bucket.source),
                                             bucket.free_seconds, bucket.expires_at))
    wallet.set_credit_notice_at(next_notice_at(wallet.buckets))


def next_notice_at(buckets: list[Bucket]) -> datetime | None:
    due = []
    for bucket in buckets:
        if not _announced(bucket) or bucket.expiry_notice >= EXPIRED:
            continue
        assert bucket.expires_at is not None
        due.append(bucket.expires_at if bucket.expiry_notice == EXPIRING else bucket.expires_at - EXPIRING_LEAD)
    return min(due) if due else None


def notice_due(wallet: Wallet, now: datetime) -> bool:
    due_at = wallet.account.credit_notice_at
    return due_at is not None and now >= due_at


def _announced(bucket: Bucket) -> bool:
    return bucket.source in _ANNOUNCED and bucket.expires_at is not None and bucket.remaining_seconds > 0
