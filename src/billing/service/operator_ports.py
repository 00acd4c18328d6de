"""The operator console's ports (issue 23): what its use cases need beyond the billing engine's
(service/ports.py): the recorded Stripe deliveries, the audit trail, stored keys and console sign-in
codes (reached through a unit of work), and the console's reads and the service's own records
(ports on Dependencies)."""

from __future__ import annotations

from datetime import datetime
from typing import Mapping, Protocol

from billing.domain.activity import HourCounts
from billing.domain.audit import AuditEntry, AuditFilter, AuditPosition
from billing.domain.auth import ApiKey
from billing.domain.console import (
    AccountExtras, HealthCounts, LedgerFilter, LedgerSlice, MigrationRunRecord, PoolState, ReplicaRecord, RunningAnchor,
)
from billing.domain.stripe_inbox import InboxFilter, InboxPosition, StripeEventRecord


class StripeInbox(Protocol):
    """The recorded deliveries as an operator reads and reprocesses them (webhook_events)."""

    async def get(self, event_id: str, *, lock: bool = False) -> StripeEventRecord | None: ...

    async def page(self, where: InboxFilter, before: InboxPosition | None, limit: int) -> list[StripeEventRecord]:
        """Newest first (received_at, event_id descending), at most `limit`, those before `before`."""
        ...

    async def set_outcome(self, event_id: str, outcome: str, account_id: str | None, detail: str) -> None:
        """After a reprocess: what became of it (the payload stays)."""
        ...


class AuditTrail(Protocol):
    """Operator actions (audit_entries): written in the transaction of their change."""

    async def add(self, entry: AuditEntry) -> bool:
        """False, writing nothing, when an entry with its idempotency key exists."""
        ...

    async def by_idempotency_key(self, idempotency_key: str) -> AuditEntry | None: ...

    async def page(self, where: AuditFilter, before: AuditPosition | None, limit: int) -> list[AuditEntry]:
        """Newest first (created_at, audit_id descending), at most `limit`, those before `before`."""
        ...


class StoredKeys(Protocol):
    """api_keys: keys with a row (session keys have none)."""

    async def add(self, key: ApiKey, now: datetime) -> None: ...

    async def get(self, key_id: str, *, lock: bool = False) -> ApiKey | None: ...

    async def revoke(self, key_id: str, now: datetime) -> bool:
        """True when the key existed and was not revoked yet."""
        ...


class ConsoleLogins(Protocol):
    """One-time console sign-in codes, by the digest of the code (the code itself is never stored)."""

    async def add(self, code_digest: bytes, key_id: str, now: datetime, expires_at: datetime) -> None: ...

    async def redeem(self, code_digest: bytes, now: datetime) -> ApiKey | None:
        """The key of an unused, unexpired code, marking it used (one caller wins); else None."""
        ...


class OperatorReads(Protocol):
    """The console's reads (adapters/db/operator_reads.py). Each is one statement (two for a
    ledger page), filtered by account_id where it reads an account."""

    async def accounts_by_prefix(self, prefix: str, limit: int) -> list[str]:
        """Account ids starting with `prefix`, in order, at most `limit` (a range of the primary key)."""
        ...

    async def account_of_stripe_id(self, kind: str, stripe_id: str) -> str | None:
        """kind: stripe_customer, stripe_payment or stripe_subscription; the account it belongs to."""
        ...

    async def account_extras(self, account_id: str) -> AccountExtras:
        """Payment profile, open holds, issued keys, payments, the ledger's sum."""
        ...

    async def ledger_page(
        self, account_id: str, where: LedgerFilter, after_event_seq: int | None, limit: int,
        anchor: RunningAnchor | None = None,
    ) -> LedgerSlice | None:
        """At most `limit` rows past `after_event_seq` in the filter's order, each with the ledger's
        running sum after it and what had expired by it, and the account's expiries; None: no such
        account. anchor (oldest first only): the running sum at after_event_seq, already known (an
        export's previous chunk)."""
        ...

    async def service_health(self, now: datetime, seen_since: datetime) -> HealthCounts: ...

    async def activity(self, since: datetime) -> list[tuple[datetime, HourCounts]]:
        """Hours at or after `since` that counted anything, summed over replicas, oldest first."""
        ...

    async def migration_runs(self, before: tuple[datetime, str] | None, limit: int) -> list[MigrationRunRecord]:
        """Newest first (started_at, run_id), those before `before`."""
        ...

    async def round_trip(self) -> None:
        """One trivial statement (the health panel times it)."""
        ...

    def pool_state(self) -> PoolState: ...


class ServiceRecords(Protocol):
    """What server processes and `billing tick` write about themselves (service-wide, not per account)."""

    async def heartbeat(self, replica: ReplicaRecord, live_since: datetime) -> int:
        """Records that the replica is live now; returns how many replicas (it included) were seen
        since `live_since` (what each replica's share of a per-key limit is divided by)."""
        ...

    async def set_activity(self, replica_id: str, hours: Mapping[datetime, HourCounts]) -> None:
        """Sets the replica's rows of those hours to these counts (one statement; writing it again changes nothing)."""
        ...

    async def prune(self, heartbeats_before: datetime, activity_before: datetime) -> None:
        """Deletes heartbeats last seen before `heartbeats_before` and hours before `activity_before`."""
        ...

    async def job_ran(self, job: str, started_at: datetime, finished_at: datetime, accounts_touched: int) -> None: ...
