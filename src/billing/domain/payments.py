"""Payments that bought AI time, and what a refund of one takes back.

A payment (a package purchase, or a paid subscription invoice) credited one bucket. A refund
removes the refunded share of what that payment granted, from what is left of its bucket:
never below zero; what was already spent (or expired) is recorded on the payment as
unrecoverable, not clawed back from other buckets.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime


class PaymentKind:
    PACKAGE = "package"
    SUBSCRIPTION = "subscription"


@dataclass(frozen=True)
class Payment:
    account_id: str
    payment_id: str  # the provider's id of the money movement (a Stripe PaymentIntent)
    kind: str
    item_key: str  # package or plan key
    bucket_seq: int  # the bucket it credited
    amount_cents: int
    currency: str
    granted_seconds: int
    paid_at: datetime
    refunded_cents: int = 0  # cumulative, as the provider reports it
    refund_target_seconds: int = 0  # the refunded share of granted_seconds, rounded up
    refund_removed_seconds: int = 0  # what could be taken back from the bucket
    refund_unrecoverable_seconds: int = 0  # already spent or expired when refunded

    def __post_init__(self) -> None:
        assert self.amount_cents >= 0 and self.granted_seconds > 0
        assert 0 <= self.refunded_cents
        assert self.refund_removed_seconds + self.refund_unrecoverable_seconds == self.refund_target_seconds
        assert self.refund_target_seconds <= self.granted_seconds


@dataclass(frozen=True)
class RefundStep:
    payment: Payment  # after the refund
    seconds_to_remove: int  # from the payment's bucket, at most what it holds
    unrecoverable_seconds: int


def refund_share_seconds(granted_seconds: int, amount_cents: int, refunded_cents: int) -> int:
    """The seconds a cumulative refund of `refunded_cents` takes back: its share, rounded up (a
    full refund takes everything; a free payment refunded takes everything too)."""
    if amount_cents <= 0 or refunded_cents >= amount_cents:
        return granted_seconds
    return -(-granted_seconds * refunded_cents // amount_cents)


def apply_refund(payment: Payment, cumulative_refunded_cents: int, bucket_remaining_seconds: int) -> RefundStep | None:
    """None when this cumulative amount was already applied (a repeated or older delivery):
    cumulative amounts only grow, so applying each level once, in any order, is exactly once."""
    if cumulative_refunded_cents <= payment.refunded_cents:
        return None
    target = refund_share_seconds(payment.granted_seconds, payment.amount_cents, cumulative_refunded_cents)
    owed = target - payment.refund_target_seconds
    removed = min(owed, max(0, bucket_remaining_seconds))
    unrecoverable = owed - removed
    after = dataclasses.replace(
        payment,
        refunded_cents=cumulative_refunded_cents,
        refund_target_seconds=target,
        refund_removed_seconds=payment.refund_removed_seconds + removed,
        refund_unrecoverable_seconds=payment.refund_unrecoverable_seconds + unrecoverable,
    )
    return RefundStep(payment=after, seconds_to_remove=removed, unrecoverable_seconds=unrecoverable)
