"""A hold, as stored: seconds reserved on an account's buckets for work whose length is not known
yet, used by commits and given back when it settles (domain/holds.py changes them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class HoldState(StrEnum):
    OPEN = "open"
    SETTLED = "settled"  # by a final commit or a release
    EXPIRED = "expired"  # settled by itself at its expiry, at what was committed


@dataclass(frozen=True)
class HeldPart:
    """Seconds a hold still reserves on one bucket."""

    bucket_seq: int
    seconds: int

    def __post_init__(self) -> None:
        assert self.bucket_seq > 0 and self.seconds > 0


@dataclass(frozen=True)
class Hold:
    account_id: str
    hold_id: str
    operation: str
    held_seconds: int  # reserved in all, the committed seconds included
    committed_seconds: int  # used: recorded in the ledger as consumption
    state: HoldState
    created_at: datetime
    expires_at: datetime
    # The first request's seconds and ttl: the same hold_id asked again with other values is a conflict.
    requested_seconds: int
    requested_ttl_seconds: int
    # While open, where the seconds not committed are reserved, in the order commits use them
    # (the consumption order when they were held); empty once settled.
    parts: tuple[HeldPart, ...] = ()
    settled_at: datetime | None = None
    # Given back to buckets that had expired meanwhile (at settling, or dropped by an extension):
    # they expired with them. No longer counted in held_seconds.
    expired_seconds: int = 0

    def __post_init__(self) -> None:
        assert 0 <= self.committed_seconds <= self.held_seconds
        reserved = sum(part.seconds for part in self.parts)
        if self.state is HoldState.OPEN:
            assert reserved == self.held_seconds - self.committed_seconds and self.settled_at is None
        else:
            assert reserved == 0 and self.settled_at is not None

    @property
    def is_open(self) -> bool:
        return self.state is HoldState.OPEN

    @property
    def reserved_seconds(self) -> int:
        """Held and not committed: what the buckets still keep for this hold."""
        return self.held_seconds - self.committed_seconds if self.is_open else 0


@dataclass(frozen=True)
class HoldSummary:
    """What the account row keeps of its open holds: enough to refuse one too many and to know,
    from a read that loads no hold, when the first falls due."""

    open_count: int = 0
    next_expiry_at: datetime | None = None  # the earliest expires_at of the open holds

    def __post_init__(self) -> None:
        assert self.open_count >= 0 and (self.open_count == 0) == (self.next_expiry_at is None)

    def expiry_due(self, now: datetime) -> bool:
        return self.next_expiry_at is not None and self.next_expiry_at <= now


def summary_of(holds) -> HoldSummary:
    open_holds = [h for h in holds if h.is_open]
    return HoldSummary(len(open_holds), min((h.expires_at for h in open_holds), default=None))
