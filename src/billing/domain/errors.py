"""Errors the engine and the use cases raise; api/errors.py maps each to a transport status once."""

from __future__ import annotations

from dataclasses import dataclass, field


class BillingError(Exception):
    """Base of every expected, user-facing failure."""

    reason = "BILLING_ERROR"

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidArgument(BillingError):
    reason = "INVALID_ARGUMENT"


class AccountNotFound(BillingError):
    reason = "ACCOUNT_NOT_FOUND"


class Unauthenticated(BillingError):
    """No valid signature: the key is unknown, expired or revoked, the timestamp stale, or the
    signature wrong. One message for all, so a caller learns nothing about which."""

    reason = "UNAUTHENTICATED"


class PermissionDenied(BillingError):
    """A valid key whose scope does not cover the call (another user's data, an admin call)."""

    reason = "PERMISSION_DENIED"


class TooManyWatchers(BillingError):
    """The process (or the user) already has as many open balance streams as it allows."""

    reason = "TOO_MANY_WATCHERS"
    retry_after_seconds = 5


class RateLimited(BillingError):
    """The key made more calls than its scope's rate limit allows (api/key_rate_limit.py)."""

    reason = "RATE_LIMITED"

    def __init__(self, message: str, retry_after_seconds: int):
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class IdempotencyKeyReused(BillingError):
    """The key was used before for a request with different parameters."""

    reason = "IDEMPOTENCY_KEY_REUSED"


class BalanceTooLow(BillingError):
    """A negative adjustment would take the balance below zero."""

    reason = "BALANCE_TOO_LOW"


class ResumeTokenInvalid(BillingError):
    """Unknown token, or one bound to another user or operation."""

    reason = "RESUME_TOKEN_INVALID"


class ResumeTokenUsed(BillingError):
    reason = "RESUME_TOKEN_USED"


class SubscriptionConflict(BillingError):
    """The account's subscription does not allow the call: a checkout while one is active, a
    cancel or plan change without one."""

    reason = "SUBSCRIPTION_CONFLICT"


class PaymentNotCredited(BillingError):
    """A refund names a payment not credited yet (its deliveries came out of order): the
    provider retries the refund later."""

    reason = "PAYMENT_NOT_CREDITED"


class PaymentMethodRequired(BillingError):
    """Auto top-up needs a saved card: set one up first (POST /v1/billing/auto-topup/setup)."""

    reason = "PAYMENT_METHOD_REQUIRED"


class PaymentProviderRefused(BillingError):
    """The payment provider refused the request as asked (a card error, a state it will not change)."""

    reason = "PAYMENT_PROVIDER_REFUSED"


class PaymentsNotConfigured(BillingError):
    """This server has no payment provider."""

    reason = "PAYMENTS_NOT_CONFIGURED"


class HoldNotFound(BillingError):
    """No hold with that id for that user (another user's hold is not found either)."""

    reason = "HOLD_NOT_FOUND"


class HoldConflict(BillingError):
    """The hold id was used before with other values (operation, seconds or ttl)."""

    reason = "HOLD_CONFLICT"


class HoldSettled(BillingError):
    """The hold was settled (committed with final, released, or expired): it changes no more."""

    reason = "HOLD_SETTLED"


class HoldExceeded(BillingError):
    """A commit above the seconds held: extend the hold first."""

    reason = "HOLD_EXCEEDED"


class TooManyHolds(BillingError):
    """The account already has as many open holds as it may (domain/holds.py OPEN_HOLDS_MAX)."""

    reason = "TOO_MANY_HOLDS"


@dataclass(frozen=True)
class Suggestion:
    type: str  # "package" or "upgrade"
    key: str | None = None
    plan: str | None = None
    minutes: int | None = None


@dataclass
class InsufficientAiTime(BillingError):
    """The balance does not cover the request; nothing was taken."""

    balance_seconds: int
    bonus_daily_seconds: int
    paid_seconds: int
    deficit_seconds: int
    plan_key: str = ""  # the account's plan: which suggestions fit it
    suggestions: tuple[Suggestion, ...] = ()
    catalog_version: str = ""
    resume_token: str | None = None
    message: str = field(default="", init=False)
    field: str | None = field(default="seconds", init=False)

    reason = "INSUFFICIENT_AI_TIME"

    def __post_init__(self) -> None:
        assert self.deficit_seconds > 0
        assert self.balance_seconds == self.bonus_daily_seconds + self.paid_seconds
        self.message = (
            f"balance of {self.balance_seconds}s is {self.deficit_seconds}s short of the request"
        )
        Exception.__init__(self, self.message)


class WebhookEndpointNotFound(BillingError):
    """No webhook endpoint with that id (a deleted one is not found either)."""

    reason = "WEBHOOK_ENDPOINT_NOT_FOUND"


class WebhookEventNotFound(BillingError):
    """No delivery of an outbound event with that id."""

    reason = "WEBHOOK_EVENT_NOT_FOUND"


class ApiKeyNotFound(BillingError):
    """No stored key has this id (session keys have no row: they cannot be named here)."""

    reason = "API_KEY_NOT_FOUND"


class PaymentNotFound(BillingError):
    """The account has no recorded payment with this id."""

    reason = "PAYMENT_NOT_FOUND"


class StripeEventNotFound(BillingError):
    """No Stripe delivery with this event id was recorded."""

    reason = "STRIPE_EVENT_NOT_FOUND"


class ActionNotPossible(BillingError):
    """An operator action the current state refuses (a key already revoked, a payment refunded in
    full, an event whose payload was not kept); the message says why."""

    reason = "ACTION_NOT_POSSIBLE"


class RequestInProgress(BillingError):
    """Another request with this idempotency key is being carried out (here, or at the payment
    provider): retry with the same key after Retry-After seconds; it answers what that one did."""

    reason = "REQUEST_IN_PROGRESS"

    def __init__(self, message: str, *, field: str | None = "idempotency_key", retry_after_seconds: int = 2):
        super().__init__(message, field=field)
        self.retry_after_seconds = retry_after_seconds
