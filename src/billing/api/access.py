"""Which key each BillingService and OperatorService call needs (domain/auth.py says what each scope may do)."""

from __future__ import annotations

from typing import Any

from billing.domain.auth import Access

SERVICE_PREFIX = "/billing.v1.BillingService/"
OPERATOR_PREFIX = "/billing.v1.OperatorService/"
FREE_PLAN_KEYS = ("", "free")

_ACCESS = {
    "GetCatalog": Access.PUBLIC,
    "GetBalance": Access.ACCOUNT,
    "WatchBalance": Access.ACCOUNT,
    "GetUsage": Access.ACCOUNT,
    "ListEvents": Access.ACCOUNT,
    "CheckSufficientBatch": Access.ACCOUNT,
    "Consume": Access.ACCOUNT,
    # Holds are signed writes like Consume: a user key acts for its own user_id only.
    "CreateHold": Access.ACCOUNT,
    "ExtendHold": Access.ACCOUNT,
    "CommitHold": Access.ACCOUNT,
    "ReleaseHold": Access.ACCOUNT,
    "ListHolds": Access.ACCOUNT,
    "GetAlertThresholds": Access.ACCOUNT,  # a service key, or the user's own
    "SetAlertThresholds": Access.ACCOUNT,
    "MeterSession": Access.SERVICE,  # internal services only: the stream outlives any one user request
    "ConsumeStream": Access.SERVICE,  # internal services only: pipelined consumes for many users
    "CreateAccount": Access.ACCOUNT,  # a paid plan needs an admin key (below)
    "CreateGrant": Access.ADMIN,
    "CreateSessionKey": Access.SERVICE,
    "PurchasePackage": Access.ACCOUNT,
    "CreateSubscriptionCheckout": Access.ACCOUNT,
    "CancelSubscription": Access.ACCOUNT,
    "ChangeSubscriptionPlan": Access.ACCOUNT,
    "GetAutoTopup": Access.ACCOUNT,
    "UpdateAutoTopup": Access.ACCOUNT,
    "CreateAutoTopupSetup": Access.ACCOUNT,
    # Stripe signs it with the webhook secret (checked by the use case), not with a key.
    "HandleStripeWebhook": Access.PUBLIC,
    # Outbound webhooks' endpoints and delivery log (CreateWebhookEndpoint, ListWebhookDeliveries,
    # ReplayWebhookEvent ...) are not listed: admin keys only.
}


# The operator console's API: admin keys, but for the one-time code that mints a console key.
_OPERATOR_ACCESS = {
    "RedeemConsoleLogin": Access.PUBLIC,
}


def access_for(method: str, request: Any) -> Access | None:
    """None: not one of our services' calls (health, reflection stay open). A method missing from
    its table needs an admin key: a new RPC is closed until someone decides who may call it."""
    if method.startswith(OPERATOR_PREFIX):
        return _OPERATOR_ACCESS.get(method[len(OPERATOR_PREFIX):], Access.ADMIN)
    if not method.startswith(SERVICE_PREFIX):
        return None
    name = method[len(SERVICE_PREFIX):]
    access = _ACCESS.get(name, Access.ADMIN)
    if name == "CreateAccount" and request is not None and request.plan_key not in FREE_PLAN_KEYS:
        return Access.ADMIN
    return access


def acts_for(request: Any) -> str:
    """The user a request acts for; "" when it names none."""
    user_id = getattr(request, "user_id", "")
    return user_id if isinstance(user_id, str) else ""
