"""Buckets of AI time and the order they are consumed in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from enum import StrEnum


class Source(StrEnum):
    DAILY = "daily"
    SUBSCRIPTION = "subscription"
    ROLLOVER = "rollover"
    PACKAGE = "package"
    WELCOME = "welcome"
    GIFT = "gift"


# The contract's breakdown has two parts: the daily bonus, and everything else ("paid",
# which includes the welcome and gift grants, as the guide's legacy migration shows).
BONUS_SOURCES = frozenset({Source.DAILY})


@dataclass(frozen=True)
class Bucket:
    account_id: str
    bucket_seq: int  # per account, 1, 2, 3 ...
    source: Source
    granted_seconds: int
    remaining_seconds: int
    granted_at: datetime
    expires_at: datetime | None  # None: never expires
    # Of remaining_seconds, those reserved by open holds (domain/holds.py): still the bucket's
    # (the ledger has not debited them), but no longer anyone else's to take.
    held_seconds: int = 0
    # Which credit expiry notice it has had (domain/credit_expiry.py): 0 none, 1 expiring, 2 expired.
    expiry_notice: int = 0

    def __post_init__(self) -> None:
        assert self.bucket_seq > 0
        assert 0 <= self.remaining_seconds <= self.granted_seconds
        assert 0 <= self.held_seconds <= self.remaining_seconds
        assert self.expires_at is None or self.expires_at > self.granted_at

    @property
    def free_seconds(self) -> int:
        """What a consume, a new hold, a rollover or a refund may take: the remainder not held."""
        return self.remaining_seconds - self.held_seconds

    def is_expired(self, now: datetime) -> bool:
        """A bucket expiring at T is no longer usable at T."""
        return self.expires_at is not None and now >= self.expires_at

    def is_usable(self, now: datetime) -> bool:
        return self.free_seconds > 0 and not self.is_expired(now)

    @property
    def is_bonus(self) -> bool:
        return self.source in BONUS_SOURCES


_NEVER = datetime.max.replace(tzinfo=timezone.utc)


def consumption_key(bucket: Bucket) -> tuple:
    """Daily first; then earliest expiry, never-expiring last; ties go to the smallest remainder."""
    never = bucket.expires_at is None
    return (
        0 if bucket.source == Source.DAILY else 1,
        never,
        bucket.expires_at or _NEVER,  # compared as datetimes: a float would lose microseconds
        bucket.free_seconds,
        bucket.bucket_seq,
    )


def in_consumption_order(buckets, now: datetime) -> list[Bucket]:
    return sorted((b for b in buckets if b.is_usable(now)), key=consumption_key)


@dataclass(frozen=True)
class Debit:
    bucket: Bucket  # as it was before the debit
    seconds: int

    def __post_init__(self) -> None:
        assert 0 < self.seconds <= self.bucket.free_seconds


def plan_debits(buckets, seconds: int, now: datetime) -> tuple[Debit, ...] | None:
    """Which buckets pay for `seconds`, in order; None when they cannot (all-or-nothing)."""
    assert seconds > 0
    debits: list[Debit] = []
    still_owed = seconds
    for bucket in in_consumption_order(buckets, now):
        if still_owed == 0:
            break
        taken = min(bucket.free_seconds, still_owed)
        debits.append(Debit(bucket=bucket, seconds=taken))
        still_owed -= taken
    if still_owed > 0:
        return None
    assert sum(debit.seconds for debit in debits) == seconds
    return tuple(debits)
