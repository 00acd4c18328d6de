"""The ports: what the use cases need from the world outside the domain, as Protocols.

Adapters implement them (adapters/db for PostgreSQL; tests/support/fake_storage.py in
memory; payments and authentication keys join them with the issues that bring them) and `make lint` (mypy) holds them to it where the server and the tests compose
Dependencies. Use cases name no storage mode: they ask for a transaction, a reader or the
one wallet-change path (service/wallet_change.py); how a unit of work reaches the database
(a statement shared with other requests, statements of its own, under the account's lock or
not) is the adapter's business.
"""

from __future__ import annotations

from datetime import datetime
from types import TracebackType
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Protocol, Self

from billing.domain.auth import ApiKey
from billing.domain.events import WalletEvent
from billing.domain.history import DailyOperationUsage, EventRow
from billing.domain.hold import Hold
from billing.domain.idempotency import StoredAnswer
from billing.domain.payments import Payment
from billing.domain.resume_tokens import ResumeTokenRecord
from billing.domain.webhook_endpoints import Delivery, DeliveryFilter, DeliveryPosition, WebhookEndpoint
from billing.domain.wallet import Account, Wallet
from billing.service.operator_ports import AuditTrail, ConsoleLogins, StoredKeys, StripeInbox
from billing.service.refund_intents import RefundIntents
from billing.service.provider_events import (
    CheckoutItem, CheckoutRequest, CheckoutSession, DeliveryLookup, PlanChange, ProviderEvent, RefundCreated, SubscriptionSnapshot,
    TopupCharge, TopupOutcome,
)


class Unavailable(Exception):
    """Storage (or another dependency) is unreachable, saturated or timed out. Safe to retry
    with the same idempotency key: nothing was written, or the write committed whole and
    its stored answer replays. Adapters raise it in place of their drivers' errors.

    kind names what is out ("database", "payment_provider"): the log writes one line per kind
    per interval during an outage (api/logs.py)."""

    def __init__(self, message: str = "", kind: str | None = None):
        super().__init__(message)
        self.kind = kind


def outage_log(kind: str, burst: int = 1) -> dict[str, str | int]:
    """`extra=` for a log call about an expected outage (the database or the payment provider
    unreachable): `log.warning("...", extra=outage_log("database"))`. The server's handler
    (api/logs.py OutageLogThrottle) writes such records without a traceback, the first `burst` of a
    kind per interval as they come, the rest as one line with a count."""
    return {"outage": kind, "log_burst": burst}


class ConcurrentModification(Exception):
    """An unlocked write found the account changed since it was read; the change path retries."""


class AuditKeyTaken(Exception):
    """An audit entry with this idempotency key exists (a concurrent request with the same key
    committed first): the change that carried this one is rolled back; its caller answers from it."""


class NeedsTransaction(Exception):
    """This unit of work cannot carry the change (it writes more than one wallet statement can
    hold, or adds no ledger entry for a version check to see); the change path retries it in a
    transaction."""


class Clock(Protocol):
    """Where use cases get "now" (adapters/clock.py: the system clock, or a fixed one in tests)."""

    def now(self) -> datetime: ...


# The label values a metric may carry: fixed sets, so no request can mint new time series.
# The authenticator names why it refused a caller (signed requests, issue 10):
AUTH_FAILURE_REASONS = (
    "missing_credentials", "malformed", "stale_timestamp", "unknown_key", "expired_key", "revoked_key",
    "bad_signature", "forbidden_scope",
)
# What became of a payment provider's webhook delivery (the Stripe work):
WEBHOOK_OUTCOMES = ("processed", "duplicate", "ignored", "bad_signature", "invalid", "mismatch", "failed")
# What became of an auto top-up's payment as the provider answered it (a success credits with its webhook):
TOPUP_OUTCOMES = ("succeeded", "failed")


class WalletChangeNotifier(Protocol):
    """Hears which accounts' wallets changed (adapters/db/change_notifier.py tells every replica)."""

    def committed(self, account_ids: Iterable[str]) -> None:
        """On the request path: cheap, never raises, never waits."""
        ...


class NobodyListening:
    def committed(self, account_ids: Iterable[str]) -> None:
        pass


class Metrics(Protocol):
    """What the use cases count (adapters/metrics.py: Prometheus; NoMetrics: nothing). Called on
    the request path, so an implementation must be cheap and must never raise."""

    def consumed(self, operation: str, seconds: int) -> None:
        """A Consume took `seconds` of AI time for `operation` (a replay takes nothing and is not counted)."""
        ...

    def refused(self, operation: str) -> None:
        """A Consume was refused for insufficient AI time (the 402)."""
        ...

    def auth_failed(self, reason: str) -> None:
        """A caller was refused by the authenticator; `reason` is one of AUTH_FAILURE_REASONS."""
        ...

    def webhook(self, outcome: str) -> None:
        """A webhook delivery was handled; `outcome` is one of WEBHOOK_OUTCOMES."""
        ...

    def topup(self, outcome: str) -> None:
        """An auto top-up payment was sent: `outcome` is one of TOPUP_OUTCOMES."""
        ...


class NoMetrics:
    """Counts nothing: the default of Dependencies (tests, tools)."""

    def consumed(self, operation: str, seconds: int) -> None:
        pass

    def refused(self, operation: str) -> None:
        pass

    def auth_failed(self, reason: str) -> None:
        pass

    def webhook(self, outcome: str) -> None:
        pass

    def topup(self, outcome: str) -> None:
        pass


class Authenticator(Protocol):
    """Who signed a call (the gRPC server's interceptor chain asks before every call that needs a key)."""

    async def authenticate(self, method: str, metadata: Mapping[str, str], serialized: Callable[[], bytes]) -> ApiKey:
        """The key that signed the call `method` (a full gRPC method name), or Unauthenticated.
        serialized(): the request message's deterministic serialization (direct gRPC callers sign it)."""
        ...


class InvalidWebhook(Exception):
    """A delivery whose signature does not verify (or has none): answered 400, nothing written."""


class MalformedWebhook(Exception):
    """A verified delivery the service cannot read: recorded for an operator and answered 400
    (the provider's dashboard shows it failing; a redelivery is answered the same, from the record)."""

    def __init__(self, message: str, event_id: str = "", event_type: str = ""):
        super().__init__(message)
        self.event_id = event_id
        self.event_type = event_type


class PaymentProvider(Protocol):
    """The payment provider (adapters/stripe_payments.py: Stripe through its SDK). Every call
    that creates something carries an idempotency key derived by the use case, so a retry
    never creates a second customer, session or invoice. Outages raise Unavailable."""

    async def create_customer(self, account_id: str) -> str:
        """A new customer for the account (idempotent per account); its id."""
        ...

    async def create_checkout(self, request: CheckoutRequest, success_url: str, cancel_url: str) -> CheckoutSession: ...

    async def subscription(self, subscription_id: str) -> SubscriptionSnapshot: ...

    async def cancel_at_period_end(self, subscription_id: str, idempotency_key: str) -> SubscriptionSnapshot: ...

    async def resume_subscription(self, subscription_id: str, idempotency_key: str) -> SubscriptionSnapshot:
        """Takes back a cancellation at the period's end."""
        ...

    async def create_plan_price(self, snapshot: SubscriptionSnapshot, item: CheckoutItem, idempotency_key: str) -> str:
        """A monthly price of the plan `item` on the subscription's product; its id (the same one
        for a retry with the same key)."""
        ...

    async def change_plan(
        self, snapshot: SubscriptionSnapshot, price_id: str, item: CheckoutItem, previous_plan_key: str,
        immediately: bool, idempotency_key: str,
    ) -> SubscriptionSnapshot:
        """Moves the subscription to `price_id`. immediately: the difference is invoiced now (an
        upgrade); else from the next period."""
        ...

    def verify_webhook(self, payload: bytes, signature: str) -> ProviderEvent:
        """Raises InvalidWebhook (signature, or a timestamp outside the tolerance of the wall clock
        either way) or MalformedWebhook (content, read only after the signature verified)."""
        ...

    async def create_setup_checkout(
        self, account_id: str, customer_id: str, success_url: str, cancel_url: str
    ) -> CheckoutSession:
        """A checkout that saves a card for later off-session payments (auto top-up)."""
        ...

    async def has_payment_method(self, customer_id: str) -> bool: ...

    async def has_live_subscription(self, customer_id: str) -> bool:
        """Asked before a subscription checkout: the provider knows of a subscription before its
        webhook reaches this service."""
        ...

    async def invoice_of_payment(self, payment_id: str) -> str | None:
        """The invoice a payment paid, if any (a refund names the payment; a period's credit was
        recorded under its invoice when the webhook did not name the payment)."""
        ...

    async def refunds_of_charge(self, charge_id: str) -> tuple[tuple[str, int], ...]:
        """A charge's refunds as (id, amount in minor units), oldest first, failed and canceled ones left out."""
        ...

    async def charge_off_session(self, charge: TopupCharge) -> TopupOutcome:
        """Idempotent per (account, seq): sending one attempt twice is one payment."""
        ...

    async def create_refund(
        self, payment_id: str, amount_cents: int, idempotency_key: str, metadata: Mapping[str, str],
    ) -> RefundCreated:
        """Refunds `amount_cents` of the payment (a PaymentIntent or a charge); the same key is the
        same refund. PaymentProviderRefused when the provider refuses (more than is left, ...)."""
        ...

    async def find_refund(self, payment_id: str, metadata_key: str, metadata_value: str) -> RefundCreated | None:
        """The payment's refund whose metadata has metadata_key = metadata_value, or None: how a
        retry learns whether an earlier attempt's refund exists, whenever that attempt was."""
        ...

    def read_verified_event(self, payload: bytes) -> ProviderEvent:
        """A payload that verified when it was received (recorded since), read again as an event;
        MalformedWebhook when it still cannot be read. Never for a body that did not verify."""
        ...


class KeyIssuer(Protocol):
    def session_key(self, user_id: str, expires_at: datetime) -> tuple[ApiKey, str]:
        """A new user key for user_id, and its secret (shown once, stored nowhere)."""
        ...

    def secret(self, key_id: str) -> str:
        """The secret of a stored key (derived, never stored): handed out once by a console sign-in."""
        ...


class Wallets(Protocol):
    async def exists(self, account_id: str) -> bool: ...

    async def add_account(self, account: Account) -> bool:
        """Inserts the account unless it exists; True when this call created it."""
        ...

    async def read(
        self, account_id: str, now: datetime, idempotency_key: str | None = None,
        expired_since: datetime | None = None,
    ) -> tuple[Wallet | None, StoredAnswer | None]:
        """The wallet as of now (None: no such account) and the stored answer for the key; no lock.
        With expired_since, buckets that expired after it (and still hold seconds) are loaded
        too (a renewal reads the period that just ended); they count for nothing at `now`."""
        ...

    async def load_for_change(
        self, account_id: str, now: datetime, idempotency_key: str | None = None,
        expired_since: datetime | None = None,
    ) -> tuple[Wallet | None, StoredAnswer | None]:
        """As read(), for a change this unit of work will save: locked in a transaction."""
        ...

    def save(self, wallet: Wallet, now: datetime, answer: StoredAnswer | None = None) -> None:
        """Queues the wallet's changes (and the answer to store) for commit()."""
        ...


class ResumeTokens(Protocol):
    async def add(
        self, account_id: str, token: str, operation: str, seconds: int, now: datetime, expires_at: datetime
    ) -> None: ...

    async def get(self, account_id: str, token: str) -> ResumeTokenRecord | None: ...

    async def mark_used(self, account_id: str, token: str, now: datetime) -> None: ...


class LedgerHistory(Protocol):
    async def events_page(self, account_id: str, before_event_seq: int | None, limit: int) -> list[EventRow]:
        """Newest first; at most `limit` events with event_seq < before_event_seq."""
        ...

    async def consumption_by_day(
        self, account_id: str, since: datetime, until: datetime
    ) -> list[DailyOperationUsage]: ...

    async def rollover_bucket_of(self, account_id: str, period_bucket_seq: int) -> int | None:
        """The rollover bucket an ended period's bucket moved its unused seconds into, if any."""
        ...


class Payments(Protocol):
    """Payments that credited buckets (per account): what a refund takes back."""

    async def get(self, account_id: str, payment_id: str) -> Payment | None: ...

    async def put(self, payment: Payment) -> None: ...


class Holds(Protocol):
    """Holds (per account): loaded with the change that uses them, written with it."""

    async def open_and_one(self, account_id: str, hold_id: str | None) -> list[Hold]:
        """Every open hold of the account, and the one named `hold_id` whatever its state."""
        ...

    async def put(self, hold: Hold, now: datetime) -> None: ...


class PaymentProfiles(Protocol):
    """The provider's customer (and subscription) of an account, and the way back."""

    async def customer_of(self, account_id: str) -> str | None: ...

    async def account_of_customer(self, customer_id: str) -> str | None: ...

    async def add_customer(self, account_id: str, customer_id: str, now: datetime) -> None:
        """Both directions; a second customer for one account is refused (the first stays)."""
        ...

    async def subscription_of(self, account_id: str) -> str | None: ...

    async def claim_payment(self, payment_id: str, account_id: str, now: datetime) -> str:
        """The account the provider's payment (or invoice) `payment_id` credits: `account_id` if
        it had none (it has from now on), else the one it had. Across accounts, not per account."""
        ...

    async def set_subscription(self, account_id: str, subscription_id: str | None, now: datetime) -> None: ...


class ProviderEventInbox(Protocol):
    """Deliveries already handled (not per account: keyed by the provider's event id)."""

    async def outcome_of(self, event_id: str) -> str | None: ...

    async def lookup(self, event_id: str, customer_id: str | None) -> DeliveryLookup:
        """The event's recorded outcome and the account of the customer it names, in one read
        (a delivery's first question, before anything is written)."""
        ...

    async def record(
        self, event_id: str, event_type: str, outcome: str, account_id: str | None, detail: str, now: datetime,
        payload: bytes | None = None,
    ) -> None:
        """Once per event id (a second record of the same id changes nothing). `payload`: kept
        for an operator when the event could not be applied."""
        ...


class PlanChanges(Protocol):
    """Upgrades this service asked for (per account, keyed by the price it created)."""

    async def add(self, change: PlanChange) -> None:
        """Once per price (a retry of the same request adds nothing)."""
        ...

    async def get(self, account_id: str, price_id: str) -> PlanChange | None: ...

    async def claim(self, account_id: str, price_id: str, invoice_id: str) -> bool:
        """The upgrade is credited by this invoice (True), or it already was by another one (False):
        one recorded upgrade, one credit."""
        ...


class UpkeepQueue(Protocol):
    """Accounts that owe an upkeep nobody has triggered (`billing tick`): a period that ended, a
    rollover entering its last week, a hold past its expiry. A batch job's scan, never on a request path."""

    async def accounts_due(self, now: datetime, warn_before: datetime, after_account_id: str, limit: int) -> list[str]:
        """Account ids > after_account_id in order, at most `limit`: closing due at `now`, or a
        rollover bucket not yet warned about expiring before `warn_before`."""
        ...


class WebhookEndpoints(Protocol):
    """Where outbound events go (issue 22; not per account). Changed in transactions only."""

    async def add(self, endpoint: WebhookEndpoint) -> None: ...

    async def get(self, endpoint_id: str, *, lock: bool = False) -> WebhookEndpoint | None:
        """The endpoint, deleted ones too; lock: for a change in this transaction (the sender's
        updates of the same row wait for it)."""
        ...

    async def listed(self) -> list[WebhookEndpoint]:
        """The endpoints not deleted, oldest first."""
        ...

    async def put(self, endpoint: WebhookEndpoint) -> None:
        """Writes what the admin surface changes: enabled, disabled_reason, failing_since, the
        secrets, deleted_at, updated_at."""
        ...

    async def fail_pending_deliveries(self, endpoint_id: str, reason: str, now: datetime) -> int:
        """The endpoint's pending deliveries become failed (last_error: reason); how many."""
        ...


class DeliveryLog(Protocol):
    """Webhook deliveries and their attempts, as an operator reads and replays them."""

    async def page(self, where: DeliveryFilter, before: DeliveryPosition | None, limit: int) -> list[Delivery]:
        """Newest first (DeliveryPosition descending), at most `limit`, those before `before`,
        each with its attempts (oldest first)."""
        ...

    async def replay_event(self, event_id: str, now: datetime) -> int | None:
        """Every finished (delivered or failed) delivery of the event whose endpoint is not deleted
        back to pending, due now, its attempts kept; how many. None: no delivery has that event id."""
        ...

    async def replay_failed(self, since: datetime, endpoint_id: str | None, now: datetime, limit: int) -> int:
        """At most `limit` failed deliveries created at or after `since` (of that endpoint, of any
        endpoint not deleted), oldest first, back to pending as replay_event does; how many."""
        ...


class WebhookTargets(Protocol):
    """May a webhook be sent to this URL (adapters/webhook_targets.py: the scheme, the host, no
    credentials, no private address unless the setting allows it)?"""

    async def refused_reason(self, url: str) -> str | None:
        """None when allowed, else why not (a sentence naming `url`)."""
        ...


class UnitOfWork(Protocol):
    """Rolled back unless commit() is called."""

    @property
    def wallets(self) -> Wallets: ...

    @property
    def resume_tokens(self) -> ResumeTokens: ...

    @property
    def history(self) -> LedgerHistory: ...

    @property
    def payments(self) -> Payments: ...

    @property
    def holds(self) -> Holds:
        """Transactions only (NeedsTransaction otherwise): a hold changes with its buckets."""
        ...

    @property
    def payment_profiles(self) -> PaymentProfiles: ...

    @property
    def provider_events(self) -> ProviderEventInbox: ...

    @property
    def upkeep_queue(self) -> UpkeepQueue: ...

    @property
    def plan_changes(self) -> PlanChanges: ...

    @property
    def webhook_endpoints(self) -> WebhookEndpoints:
        """Writes in transactions only (NeedsTransaction otherwise)."""
        ...

    @property
    def delivery_log(self) -> DeliveryLog:
        """Replays in transactions only (NeedsTransaction otherwise)."""
        ...

    @property
    def audit_entries(self) -> AuditTrail:
        """Writes in transactions only (NeedsTransaction otherwise): an entry commits with its change."""
        ...

    @property
    def refund_intents(self) -> RefundIntents:
        """Operator refunds asked of the provider (service/refund_intents.py); transactions only."""
        ...

    @property
    def stripe_inbox(self) -> StripeInbox: ...

    @property
    def stored_keys(self) -> StoredKeys: ...

    @property
    def console_logins(self) -> ConsoleLogins: ...

    async def commit(self) -> None:
        """Writes what was saved; raises ConcurrentModification or NeedsTransaction (unlocked
        units of work only). A storage outage leaves the unit of work (`async with`) as Unavailable."""
        ...

    def collect_new_events(self) -> list[WalletEvent]:
        """After commit: WalletChanged for each wallet it wrote, then the events those wallets
        recorded; each once (a second call returns what came since)."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None: ...


class Storage(Protocol):
    """Opens units of work."""

    def transaction(self) -> UnitOfWork:
        """All or nothing; wallets loaded for change are locked until commit or rollback."""
        ...

    def unlocked(self) -> UnitOfWork:
        """One wallet loaded for change and saved with a check of the version it was loaded at
        (ConcurrentModification when it moved). Anything else raises NeedsTransaction."""
        ...

    def reader(self) -> UnitOfWork:
        """Reads only; each read sees its own consistent snapshot."""
        ...

    def single_write(self) -> UnitOfWork:
        """One write that stands alone (a record that goes with no other change), atomic by
        itself: no transaction is opened around it (no BEGIN and COMMIT round trips). commit() is
        still called, as for a transaction; a second statement or a wallet is a programming error."""
        ...


# --- The operator console: reads and service records (issue 23) ------------------------------
