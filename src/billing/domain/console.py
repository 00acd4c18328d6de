"""Read models of the operator console (issue 23): what its account page, ledger, health and
operations panels show. Plain values; the queries that fill them live in adapters/db/operator_reads.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from billing.domain.expiry_timeline import ExpiredSeconds
from billing.domain.hold import Hold


@dataclass(frozen=True)
class IssuedKeyRow:
    key_id: str
    scope: str
    user_id: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class PaymentRow:
    payment_id: str
    kind: str
    item_key: str
    amount_cents: int
    currency: str
    granted_seconds: int
    refunded_cents: int
    paid_at: datetime


@dataclass(frozen=True)
class AccountExtras:
    """What the account page shows beside the balance, read in one statement."""

    customer_id: str | None
    subscription_id: str | None
    holds: tuple[Hold, ...]  # open, soonest expiry first
    keys: tuple[IssuedKeyRow, ...]  # newest first
    payments: tuple[PaymentRow, ...]  # newest first
    ledger_sum_seconds: int


@dataclass(frozen=True)
class LedgerFilter:
    types: tuple[str, ...] = ()  # empty: every type
    from_at: datetime | None = None  # inclusive
    to_at: datetime | None = None  # exclusive
    oldest_first: bool = False


@dataclass(frozen=True)
class LedgerLine:
    """A ledger row and the ledger's running sum right after it (over every row of the account),
    with what had expired by then (domain/expiry_timeline.py)."""

    event_seq: int
    type: str
    seconds: int
    reason: str
    occurred_at: datetime
    operation: str | None
    bucket_seq: int
    metadata: dict[str, Any]
    balance_after_seconds: int
    available_after_seconds: int  # balance_after_seconds less the seconds expired by occurred_at
    expired_before_seconds: int  # expired since the account's previous row (by event_seq)


@dataclass(frozen=True)
class LedgerSlice:
    """Ledger rows as read, with the account's expiries and its newest row's instant (None: no row),
    so a reader can say what expired after the newest row."""

    lines: list[LedgerLine]
    newest_row_at: datetime | None
    expired: ExpiredSeconds


@dataclass(frozen=True)
class RunningAnchor:
    """The ledger's sum over the rows up to event_seq (inclusive): where an export's next chunk starts."""

    event_seq: int
    balance_seconds: int


@dataclass(frozen=True)
class ReplicaRecord:
    replica_id: str
    host: str
    pid: int
    started_at: datetime
    seen_at: datetime


@dataclass(frozen=True)
class PoolState:
    size: int
    available: int
    waiting: int
    max_size: int


@dataclass(frozen=True)
class HealthCounts:
    replicas: tuple[ReplicaRecord, ...]
    last_tick_at: datetime | None
    webhook_undispatched_events: int
    webhook_pending_deliveries: int
    webhook_failed_last_24h: int
    stripe_events_kept: int


@dataclass(frozen=True)
class BadLine:
    line: int
    error: str


@dataclass(frozen=True)
class MigrationRunRecord:
    run_id: str
    source_file: str
    started_at: datetime
    finished_at: datetime | None
    rows_read: int
    accounts_migrated: int
    accounts_skipped: int
    bad_lines: int
    bad_line_samples: tuple[BadLine, ...] = field(default=())
