"""The storage ports in memory: use cases run and are tested without PostgreSQL.

Same contract as adapters/db/unit_of_work.py: nothing is visible before commit(); an unlocked
unit of work saves one wallet, checked against the version it was loaded at
(ConcurrentModification), and anything else it is asked to write raises NeedsTransaction.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from datetime import datetime
from types import TracebackType
from typing import Callable

from billing.adapters.webhook_targets import WebhookTargetPolicy
from billing.domain.buckets import Bucket
from billing.domain.catalog import Catalog
from billing.domain.history import DailyOperationUsage, EventRow
from billing.domain.events import WalletChanged, WalletEvent
from billing.domain.idempotency import StoredAnswer
from billing.domain.auto_topup import RESEND_PENDING_AFTER
from billing.domain.hold import Hold
from billing.domain.payments import Payment
from billing.domain.resume_tokens import ResumeTokenRecord
from billing.domain.wallet import Account, LedgerEntry, OutboxRow, Wallet
from billing.domain.webhook_endpoints import Delivery, DeliveryFilter, DeliveryPosition, WebhookEndpoint
from billing.service.dependencies import Dependencies
from billing.service.handlers import message_bus
from billing.service.provider_events import DeliveryLookup, PlanChange
from billing.domain.audit import AuditEntry, AuditFilter, AuditPosition
from billing.domain.auth import ApiKey
from billing.domain.stripe_inbox import InboxFilter, InboxPosition, StripeEventRecord
from billing.service.ports import Clock, ConcurrentModification, NeedsTransaction
from tests.support.defaults import CHECKOUT_PAGES


@dataclasses.dataclass
class FakeDatabase:
    accounts: dict[str, Account] = dataclasses.field(default_factory=dict)
    buckets: dict[str, dict[int, Bucket]] = dataclasses.field(default_factory=lambda: defaultdict(dict))
    ledger: dict[str, list[LedgerEntry]] = dataclasses.field(default_factory=lambda: defaultdict(list))
    answers: dict[tuple[str, str], StoredAnswer] = dataclasses.field(default_factory=dict)
    resume_tokens: dict[tuple[str, str], ResumeTokenRecord] = dataclasses.field(default_factory=dict)
    payments: dict[tuple[str, str], Payment] = dataclasses.field(default_factory=dict)
    holds: dict[tuple[str, str], Hold] = dataclasses.field(default_factory=dict)
    outbox: dict[str, list[OutboxRow]] = dataclasses.field(default_factory=lambda: defaultdict(list))
    customers: dict[str, str] = dataclasses.field(default_factory=dict)  # account -> customer
    payment_owners: dict[str, str] = dataclasses.field(default_factory=dict)  # provider payment -> account
    plan_changes: dict[tuple[str, str], PlanChange] = dataclasses.field(default_factory=dict)
    plan_change_invoices: dict[tuple[str, str], str] = dataclasses.field(default_factory=dict)  # the crediting one
    subscriptions: dict[str, str | None] = dataclasses.field(default_factory=dict)  # account -> subscription
    webhook_events: dict[str, tuple[str, str, str | None, str]] = dataclasses.field(default_factory=dict)
    webhook_endpoints: dict[str, WebhookEndpoint] = dataclasses.field(default_factory=dict)
    # (account_id, endpoint_id, seq) -> the delivery with its attempts (outbound events, issue 22)
    webhook_deliveries: dict[tuple[str, str, int], Delivery] = dataclasses.field(default_factory=dict)
    audit_entries: dict[str, AuditEntry] = dataclasses.field(default_factory=dict)  # by idempotency key
    api_keys: dict[str, ApiKey] = dataclasses.field(default_factory=dict)
    commits: int = 0

    def wallet(self, account_id: str, now: datetime, expired_since: datetime | None = None) -> Wallet | None:
        account = self.accounts.get(account_id)
        if account is None:
            return None
        visible_from = now if expired_since is None else min(now, expired_since)
        live = [
            b for b in self.buckets[account_id].values()
            if b.remaining_seconds > 0 and (b.expires_at is None or b.expires_at > visible_from or b.held_seconds > 0)
        ]
        return Wallet(account, live)

    def ledger_matches_buckets(self, account_id: str) -> bool:
        ledger = sum(e.seconds for e in self.ledger[account_id])
        return ledger == sum(b.remaining_seconds for b in self.buckets[account_id].values())


class FakeStorage:
    def __init__(self, database: FakeDatabase | None = None):
        self.database = database or FakeDatabase()

    def transaction(self) -> FakeUnitOfWork:
        return FakeUnitOfWork(self.database, unlocked=False)

    def unlocked(self) -> FakeUnitOfWork:
        return FakeUnitOfWork(self.database, unlocked=True)

    def reader(self) -> FakeUnitOfWork:
        return FakeUnitOfWork(self.database, unlocked=False, reads_only=True)

    def single_write(self) -> FakeUnitOfWork:
        return FakeUnitOfWork(self.database, unlocked=False, single_write=True)


class FakeUnitOfWork:
    def __init__(self, database: FakeDatabase, *, unlocked: bool, reads_only: bool = False, single_write: bool = False):
        self.database = database
        self.unlocked = unlocked
        self.reads_only = reads_only
        self.single_write = single_write  # one staged write, no wallet (PostgreSQL: one autocommit statement)
        self.staged: list[Callable[[], None]] = []  # applied in order by commit()
        self._new_events: list[WalletEvent] = []
        self.saved_wallets: list[tuple[Wallet, datetime, StoredAnswer | None]] = []
        self.opened_accounts: list[str] = []  # inserted by this unit of work: gone unless committed
        self._wallets = FakeWallets(self)
        self._resume_tokens = FakeResumeTokens(self)
        self._history = FakeHistory(database)

    @property
    def wallets(self) -> FakeWallets:
        return self._wallets

    @property
    def resume_tokens(self) -> FakeResumeTokens:
        if self.unlocked:
            raise NeedsTransaction("resume tokens change only inside a transaction")
        return self._resume_tokens

    @property
    def history(self) -> FakeHistory:
        return self._history

    @property
    def payments(self) -> FakePayments:
        if self.unlocked:
            raise NeedsTransaction("payments change only inside a transaction")
        return FakePayments(self)

    @property
    def holds(self) -> FakeHolds:
        if self.unlocked:
            raise NeedsTransaction("holds change only inside a transaction")
        return FakeHolds(self)

    @property
    def payment_profiles(self) -> FakePaymentProfiles:
        return FakePaymentProfiles(self)

    @property
    def provider_events(self) -> FakeWebhookEvents:
        return FakeWebhookEvents(self)

    @property
    def upkeep_queue(self) -> FakeUpkeepQueue:
        return FakeUpkeepQueue(self.database)

    @property
    def plan_changes(self) -> FakePlanChanges:
        return FakePlanChanges(self)

    @property
    def webhook_endpoints(self) -> FakeWebhookEndpoints:
        if self.unlocked:
            raise NeedsTransaction("webhook endpoints change only inside a transaction")
        return FakeWebhookEndpoints(self)

    @property
    def delivery_log(self) -> FakeDeliveryLog:
        if self.unlocked:
            raise NeedsTransaction("deliveries are replayed only inside a transaction")
        return FakeDeliveryLog(self)

    @property
    def audit_entries(self) -> FakeAuditTrail:
        if self.unlocked:
            raise NeedsTransaction("audit entries are written only inside a transaction")
        return FakeAuditTrail(self)

    @property
    def refund_intents(self) -> FakeRefundIntents:
        return FakeRefundIntents()

    @property
    def stripe_inbox(self) -> FakeStripeInbox:
        return FakeStripeInbox()

    @property
    def stored_keys(self) -> FakeStoredKeys:
        return FakeStoredKeys(self)

    @property
    def console_logins(self) -> FakeConsoleLogins:
        return FakeConsoleLogins()

    def stage(self, write: Callable[[], None]) -> None:
        assert not self.reads_only
        if self.unlocked:
            raise NeedsTransaction("an unlocked unit of work writes one wallet only")
        assert not (self.single_write and self.staged), "a single write is one statement"
        self.staged.append(write)

    async def commit(self) -> None:
        assert not self.reads_only
        if self.unlocked:
            assert len(self.saved_wallets) <= 1
        if self.single_write:
            assert not self.saved_wallets, "a single write is one statement"
        for wallet, _, _ in self.saved_wallets:
            stored = self.database.accounts[wallet.account.account_id]
            if stored.version != wallet.loaded_account.version:
                raise ConcurrentModification(f"account {stored.account_id} changed since it was read")
        for write in self.staged:
            write()
        for wallet, now, answer in self.saved_wallets:
            self._apply(wallet, answer)
        self._new_events += [WalletChanged(w.account.account_id) for w, _, _ in self.saved_wallets if _changed(w)]
        self._new_events += [event for wallet, _, _ in self.saved_wallets for event in wallet.events]
        self.staged, self.saved_wallets, self.opened_accounts = [], [], []
        self.database.commits += 1

    def collect_new_events(self) -> list[WalletEvent]:
        events, self._new_events = self._new_events, []
        return events

    def _apply(self, wallet: Wallet, answer: StoredAnswer | None) -> None:
        wallet.assert_ledger_matches_buckets()
        account_id = wallet.account.account_id
        self.database.accounts[account_id] = dataclasses.replace(wallet.account, version=wallet.loaded_account.version + 1)
        for bucket in wallet.buckets:
            self.database.buckets[account_id][bucket.bucket_seq] = bucket
        self.database.ledger[account_id].extend(wallet.new_entries)
        self.database.outbox[account_id].extend(wallet.outbox)
        if answer is not None:
            self.database.answers[(account_id, answer.idempotency_key)] = answer

    async def __aenter__(self) -> FakeUnitOfWork:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        for account_id in self.opened_accounts:
            del self.database.accounts[account_id]
        self.staged, self.saved_wallets, self.opened_accounts = [], [], []


class FakeWallets:
    def __init__(self, unit: FakeUnitOfWork):
        self._unit = unit
        self._database = unit.database

    async def exists(self, account_id: str) -> bool:
        return account_id in self._database.accounts

    async def add_account(self, account: Account) -> bool:
        if self._unit.unlocked:
            raise NeedsTransaction("opening an account needs a transaction")
        if account.account_id in self._database.accounts:
            return False
        # Visible at once (as the row is to its own transaction), gone unless committed.
        self._database.accounts[account.account_id] = account
        self._unit.opened_accounts.append(account.account_id)
        return True

    async def read(
        self, account_id: str, now: datetime, idempotency_key: str | None = None,
        expired_since: datetime | None = None,
    ) -> tuple[Wallet | None, StoredAnswer | None]:
        wallet = self._database.wallet(account_id, now, expired_since)
        answer = self._database.answers.get((account_id, idempotency_key)) if idempotency_key else None
        return wallet, (answer if wallet is not None else None)

    async def load_for_change(
        self, account_id: str, now: datetime, idempotency_key: str | None = None,
        expired_since: datetime | None = None,
    ) -> tuple[Wallet | None, StoredAnswer | None]:
        return await self.read(account_id, now, idempotency_key, expired_since)

    def save(self, wallet: Wallet, now: datetime, answer: StoredAnswer | None = None) -> None:
        assert not self._unit.reads_only
        if wallet.new_entries or wallet.account_changed or answer is not None or wallet.changed_bucket_seqs:
            self._unit.saved_wallets.append((wallet, now, answer))


class FakeResumeTokens:
    def __init__(self, unit: FakeUnitOfWork):
        self._unit = unit
        self._tokens = unit.database.resume_tokens

    async def add(
        self, account_id: str, token: str, operation: str, seconds: int, now: datetime, expires_at: datetime
    ) -> None:
        record = ResumeTokenRecord(operation=operation, expires_at=expires_at, used_at=None)
        self._unit.stage(lambda: self._tokens.__setitem__((account_id, token), record))

    async def get(self, account_id: str, token: str) -> ResumeTokenRecord | None:
        return self._tokens.get((account_id, token))

    async def mark_used(self, account_id: str, token: str, now: datetime) -> None:
        used = dataclasses.replace(self._tokens[(account_id, token)], used_at=now)
        self._unit.stage(lambda: self._tokens.__setitem__((account_id, token), used))


class FakePayments:
    def __init__(self, unit: FakeUnitOfWork):
        self._unit = unit
        self._payments = unit.database.payments

    async def get(self, account_id: str, payment_id: str) -> Payment | None:
        return self._payments.get((account_id, payment_id))

    async def put(self, payment: Payment) -> None:
        self._unit.stage(lambda: self._payments.__setitem__((payment.account_id, payment.payment_id), payment))


class FakeHolds:
    def __init__(self, unit: FakeUnitOfWork):
        self._unit = unit
        self._holds = unit.database.holds

    async def open_and_one(self, account_id: str, hold_id: str | None) -> list[Hold]:
        return [h for (account, id_), h in self._holds.items()
                if account == account_id and (h.is_open or id_ == hold_id)]

    async def put(self, hold: Hold, now: datetime) -> None:
        self._unit.stage(lambda: self._holds.__setitem__((hold.account_id, hold.hold_id), hold))


class FakePaymentProfiles:
    def __init__(self, unit: FakeUnitOfWork):
        self._unit = unit
        self._database = unit.database

    async def customer_of(self, account_id: str) -> str | None:
        return self._database.customers.get(account_id)

    async def account_of_customer(self, customer_id: str) -> str | None:
        return next((a for a, c in self._database.customers.items() if c == customer_id), None)

    async def add_customer(self, account_id: str, customer_id: str, now: datetime) -> None:
        def add() -> None:
            self._database.customers.setdefault(account_id, customer_id)

        self._unit.stage(add)

    async def subscription_of(self, account_id: str) -> str | None:
        return self._database.subscriptions.get(account_id)

    async def claim_payment(self, payment_id: str, account_id: str, now: datetime) -> str:
        owner = self._database.payment_owners.get(payment_id, account_id)

        def claim() -> None:
            self._database.payment_owners.setdefault(payment_id, account_id)

        self._unit.stage(claim)
        return owner

    async def set_subscription(self, account_id: str, subscription_id: str | None, now: datetime) -> None:
        self._unit.stage(lambda: self._database.subscriptions.__setitem__(account_id, subscription_id))


class FakeWebhookEvents:
    def __init__(self, unit: FakeUnitOfWork):
        self._unit = unit
        self._events = unit.database.webhook_events

    async def outcome_of(self, event_id: str) -> str | None:
        found = self._events.get(event_id)
        return None if found is None else found[1]

    async def lookup(self, event_id: str, customer_id: str | None) -> DeliveryLookup:
        customers = self._unit.database.customers
        account_id = next((a for a, c in customers.items() if c == customer_id), None) if customer_id else None
        return DeliveryLookup(await self.outcome_of(event_id), account_id)

    async def record(
        self, event_id: str, event_type: str, outcome: str, account_id: str | None, detail: str, now: datetime,
        payload: bytes | None = None,
    ) -> None:
        def add() -> None:
            self._events.setdefault(event_id, (event_type, outcome, account_id, detail))

        self._unit.stage(add)


class FakeAuditTrail:
    def __init__(self, unit: FakeUnitOfWork):
        self._unit = unit
        self._entries = unit.database.audit_entries

    async def add(self, entry: AuditEntry) -> bool:
        if entry.idempotency_key in self._entries:
            return False
        self._unit.stage(lambda: self._entries.__setitem__(entry.idempotency_key, entry))
        return True

    async def by_idempotency_key(self, idempotency_key: str) -> AuditEntry | None:
        return self._entries.get(idempotency_key)

    async def page(self, where: AuditFilter, before: AuditPosition | None, limit: int) -> list[AuditEntry]:
        found = [e for e in self._entries.values()
                 if where.account_id in (None, e.account_id) and where.action in (None, e.action)
                 and where.operator_key_id in (None, e.operator_key_id)
                 and (where.from_at is None or e.created_at >= where.from_at)
                 and (where.to_at is None or e.created_at < where.to_at)
                 and (before is None or (e.created_at, e.audit_id) < (before.created_at, before.audit_id))]
        return sorted(found, key=lambda e: (e.created_at, e.audit_id), reverse=True)[:limit]


class FakeStripeInbox:
    """The fake records no payloads (FakeWebhookEvents): nothing to list or reprocess."""

    async def get(self, event_id: str, *, lock: bool = False) -> StripeEventRecord | None:
        return None

    async def page(self, where: InboxFilter, before: InboxPosition | None, limit: int) -> list[StripeEventRecord]:
        return []

    async def set_outcome(self, event_id: str, outcome: str, account_id: str | None, detail: str) -> None:
        raise NotImplementedError("the fake keeps no inbox")


class FakeStoredKeys:
    def __init__(self, unit: FakeUnitOfWork):
        self._unit = unit
        self._keys = unit.database.api_keys

    async def add(self, key: ApiKey, now: datetime) -> None:
        self._unit.stage(lambda: self._keys.__setitem__(key.key_id, key))

    async def get(self, key_id: str, *, lock: bool = False) -> ApiKey | None:
        return self._keys.get(key_id)

    async def revoke(self, key_id: str, now: datetime) -> bool:
        key = self._keys.get(key_id)
        if key is None or key.revoked_at is not None:
            return False
        self._unit.stage(lambda: self._keys.__setitem__(key_id, dataclasses.replace(key, revoked_at=now)))
        return True


class FakeRefundIntents:
    """Operator refunds are tested on PostgreSQL (tests/integration/test_operator_refunds.py)."""

    def __getattr__(self, name: str):
        raise NotImplementedError("refund intents are tested on PostgreSQL")


class FakeConsoleLogins:
    async def add(self, code_digest: bytes, key_id: str, now: datetime, expires_at: datetime) -> None:
        raise NotImplementedError("console sign-in is tested on PostgreSQL")

    async def redeem(self, code_digest: bytes, now: datetime) -> ApiKey | None:
        raise NotImplementedError("console sign-in is tested on PostgreSQL")


class FakePlanChanges:
    def __init__(self, unit: FakeUnitOfWork):
        self._unit = unit
        self._changes = unit.database.plan_changes

    async def add(self, change: PlanChange) -> None:
        def add() -> None:
            self._changes.setdefault((change.account_id, change.price_id), change)

        self._unit.stage(add)

    async def get(self, account_id: str, price_id: str) -> PlanChange | None:
        return self._changes.get((account_id, price_id))

    async def claim(self, account_id: str, price_id: str, invoice_id: str) -> bool:
        claimed = self._unit.database.plan_change_invoices
        owner = claimed.get((account_id, price_id), invoice_id)
        if (account_id, price_id) not in self._changes or owner != invoice_id:
            return False

        def claim() -> None:
            claimed.setdefault((account_id, price_id), invoice_id)

        self._unit.stage(claim)
        return True


class FakeWebhookEndpoints:
    def __init__(self, unit: FakeUnitOfWork):
        self._unit = unit
        self._database = unit.database

    async def add(self, endpoint: WebhookEndpoint) -> None:
        self._unit.stage(lambda: self._database.webhook_endpoints.__setitem__(endpoint.endpoint_id, endpoint))

    async def get(self, endpoint_id: str, *, lock: bool = False) -> WebhookEndpoint | None:
        return self._database.webhook_endpoints.get(endpoint_id)

    async def listed(self) -> list[WebhookEndpoint]:
        alive = [e for e in self._database.webhook_endpoints.values() if e.deleted_at is None]
        return sorted(alive, key=lambda e: (e.created_at, e.endpoint_id))

    async def put(self, endpoint: WebhookEndpoint) -> None:
        self._unit.stage(lambda: self._database.webhook_endpoints.__setitem__(endpoint.endpoint_id, endpoint))

    async def fail_pending_deliveries(self, endpoint_id: str, reason: str, now: datetime) -> int:
        deliveries = self._database.webhook_deliveries
        keys = [k for k, d in deliveries.items() if d.endpoint_id == endpoint_id and d.status == "pending"]

        def fail() -> None:
            for key in keys:
                deliveries[key] = dataclasses.replace(
                    deliveries[key], status="failed", last_error=reason, finished_at=now, next_attempt_at=None)

        self._unit.stage(fail)
        return len(keys)


class FakeDeliveryLog:
    def __init__(self, unit: FakeUnitOfWork):
        self._unit = unit
        self._database = unit.database

    async def page(self, where: DeliveryFilter, before: DeliveryPosition | None, limit: int) -> list[Delivery]:
        found = [d for d in self._database.webhook_deliveries.values()
                 if where.matches(d) and (before is None or d.position < before)]
        return sorted(found, key=lambda d: d.position, reverse=True)[:limit]

    async def replay_event(self, event_id: str, now: datetime) -> int | None:
        of_event = [k for k, d in self._database.webhook_deliveries.items() if d.event_id == event_id]
        if not of_event:
            return None
        return self._replay([k for k in of_event if self._replayable(k)], now)

    async def replay_failed(self, since: datetime, endpoint_id: str | None, now: datetime, limit: int) -> int:
        deliveries = self._database.webhook_deliveries
        keys = sorted((k for k, d in deliveries.items()
                       if d.status == "failed" and d.created_at >= since and self._replayable(k)
                       and (endpoint_id is None or d.endpoint_id == endpoint_id)),
                      key=lambda k: (deliveries[k].created_at, k))
        return self._replay(keys[:limit], now)

    def _replayable(self, key: tuple[str, str, int]) -> bool:
        delivery = self._database.webhook_deliveries[key]
        endpoint = self._database.webhook_endpoints.get(delivery.endpoint_id)
        return delivery.status != "pending" and endpoint is not None and endpoint.deleted_at is None

    def _replay(self, keys: list[tuple[str, str, int]], now: datetime) -> int:
        deliveries = self._database.webhook_deliveries

        def replay() -> None:
            for key in keys:
                deliveries[key] = dataclasses.replace(deliveries[key], status="pending", next_attempt_at=now,
                                                      finished_at=None)

        self._unit.stage(replay)
        return len(keys)


class FakeUpkeepQueue:
    def __init__(self, database: FakeDatabase):
        self._database = database

    async def accounts_due(self, now: datetime, warn_before: datetime, after_account_id: str, limit: int) -> list[str]:
        due = set()
        for account_id, account in self._database.accounts.items():
            closes_at = account.subscription.closes_at
            notice_due = account.credit_notice_at is not None and account.credit_notice_at <= now
            if (closes_at is not None and closes_at <= now) or account.holds.expiry_due(now) or notice_due:
                due.add(account_id)
            topup = account.auto_topup
            if topup.enabled and (topup.pending or topup.retry_at is not None):
                if (topup.retry_at or topup.pending_since + RESEND_PENDING_AFTER) <= now:  # type: ignore[operator]
                    due.add(account_id)
            for b in self._database.buckets[account_id].values():
                if (b.source == "rollover" and b.remaining_seconds > 0 and b.expires_at is not None
                        and now < b.expires_at <= warn_before
                        and b.bucket_seq > account.subscription.rollover_warned_through_seq):
                    due.add(account_id)
        return sorted(a for a in due if a > after_account_id)[:limit]


class FakeHistory:
    def __init__(self, database: FakeDatabase):
        self._database = database

    async def events_page(self, account_id: str, before_event_seq: int | None, limit: int) -> list[EventRow]:
        entries = [
            e for e in reversed(self._database.ledger[account_id])
            if (before_event_seq is None or e.event_seq < before_event_seq)
            and not (e.type == "rollover_created" and e.seconds < 0)
        ]
        return [
            EventRow(e.event_seq, e.type, e.seconds, e.reason, e.occurred_at, dict(e.metadata)) for e in entries[:limit]
        ]

    async def rollover_bucket_of(self, account_id: str, period_bucket_seq: int) -> int | None:
        found = [e.bucket_seq for e in self._database.ledger[account_id]
                 if e.type == "rollover_created" and e.seconds > 0 and e.metadata.get("from_bucket_seq") == period_bucket_seq]
        return found[-1] if found else None

    async def consumption_by_day(self, account_id: str, since: datetime, until: datetime) -> list[DailyOperationUsage]:
        sums: dict[tuple, int] = defaultdict(int)
        for e in self._database.ledger[account_id]:
            if e.type == "consumption" and since <= e.occurred_at < until and e.operation is not None:
                sums[(e.occurred_at.date(), e.operation)] += -e.seconds
        return [DailyOperationUsage(day, operation, seconds) for (day, operation), seconds in sums.items()]


def _changed(wallet: Wallet) -> bool:
    return (bool(wallet.new_entries) or wallet.account != wallet.loaded_account or bool(wallet.changed_payment_ids)
            or bool(wallet.changed_bucket_seqs))


# What names resolve to in the use-case tests (no DNS): webhook endpoints' hosts.
TEST_NAMES = {"hooks.example.com": ["93.184.216.34"], "localhost": ["127.0.0.1", "::1"],
              "internal.example.com": ["93.184.216.34", "10.0.0.7"]}


def resolve_test_names(host: str) -> list[str]:
    return TEST_NAMES.get(host, [])


def fake_dependencies(
    catalog: Catalog, clock: Clock, database: FakeDatabase | None = None, *, allow_private_webhooks: bool = False,
) -> Dependencies:
    """Use cases wired to memory; mypy checks here that FakeStorage is a Storage."""
    return Dependencies(storage=FakeStorage(database), catalog=catalog, clock=clock, bus=message_bus(),
                        checkout_pages=CHECKOUT_PAGES,
                        webhook_targets=WebhookTargetPolicy(allow_private_webhooks, resolve_test_names))
