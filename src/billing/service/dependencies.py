"""What every use case needs, built once by the server (or a test) and passed in."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Callable

from billing.domain.catalog import Catalog
from billing.service.account_gate import AccountGate
from billing.service.background_tasks import BackgroundTasks
from billing.domain.errors import PaymentsNotConfigured
from billing.service.messagebus import MessageBus
from billing.service.operator_ports import OperatorReads, ServiceRecords
from billing.service.ports import (
    Clock, KeyIssuer, Metrics, NobodyListening, NoMetrics, PaymentProvider, Storage, WalletChangeNotifier, WebhookTargets,
)

RESUME_TOKEN_TTL = timedelta(hours=1)


def new_resume_token() -> str:
    return "rt_" + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class CheckoutPages:
    """Where the payment page sends the browser back (the app's pages, not this service's).
    The success URL carries ?purchased=true: the contract's cue to retry with the resume token.
    BILLING_CHECKOUT_SUCCESS_URL / _CANCEL_URL: their defaults are the settings' (billing.settings)."""

    success_url: str
    cancel_url: str


@dataclass(frozen=True)
class Dependencies:
    storage: Storage
    catalog: Catalog
    clock: Clock
    # Signatures and session keys' expiry: the wall clock, which callers sign with and the authenticator
    # checks against. None: `clock` is the wall clock (no BILLING_CLOCK_OFFSET_*; tests).
    wall_clock: Clock | None = None
    new_resume_token: Callable[[], str] = field(default=new_resume_token)
    resume_token_ttl: timedelta = RESUME_TOKEN_TTL
    account_gate: AccountGate = field(default_factory=AccountGate)
    key_issuer: KeyIssuer | None = None  # None: this server mints no session keys (no master key)
    metrics: Metrics = field(default_factory=NoMetrics)
    payments: PaymentProvider | None = None  # None: purchases answer PAYMENTS_NOT_CONFIGURED
    checkout_pages: CheckoutPages | None = None  # None: no checkout (the server always has them with payments)
    background: BackgroundTasks = field(default_factory=BackgroundTasks)
    # What runs after a change commits (service/handlers.py wires the service's handlers).
    bus: MessageBus = field(default_factory=MessageBus)
    wallet_changes: WalletChangeNotifier = field(default_factory=NobodyListening)
    # Where webhook endpoints may point (None: this process manages no endpoints).
    webhook_targets: WebhookTargets | None = None
    # The operator console's reads, and what processes record about themselves (issue 23; None: not
    # built, as in tests on the fake storage: the console answers that it is not available here).
    operator_reads: OperatorReads | None = None
    service_records: ServiceRecords | None = None

    def key_clock(self) -> Clock:
        """The clock session keys expire by: never the service's clock run ahead for local use."""
        return self.wall_clock or self.clock

    def checkout(self) -> CheckoutPages:
        if self.checkout_pages is None:
            raise PaymentsNotConfigured("this server takes no payments (no checkout pages are configured)")
        return self.checkout_pages

    def webhook_target_check(self) -> WebhookTargets:
        if self.webhook_targets is None:
            raise RuntimeError("this process was built without a webhook target policy (bootstrap.build_service)")
        return self.webhook_targets

    def console_reads(self) -> OperatorReads:
        if self.operator_reads is None:
            raise RuntimeError("this process was built without the console's reads (bootstrap.build_service)")
        return self.operator_reads

    def payment_provider(self) -> PaymentProvider:
        if self.payments is None:
            raise PaymentsNotConfigured("this server takes no payments (no payment provider is configured)")
        return self.payments
