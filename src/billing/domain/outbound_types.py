"""The catalogue of outbound event types (issue 22), in one place.

Endpoints subscribe to these (an empty list: all of them), the outbox writes only these, and the
protos (protos/billing/v1/webhooks.proto) and docs list them as documentation of this tuple.
"""

from __future__ import annotations

EVENT_TYPES: tuple[str, ...] = (
    "balance.low",
    "balance.depleted",
    "balance.recovered",
    "credit.granted",
    "credit.expiring",
    "credit.expired",
    "topup.succeeded",
    "topup.failed",
    "topup.disabled",
    "subscription.activated",
    "subscription.renewed",
    "subscription.changed",
    "subscription.canceled",
    "subscription.past_due",
    "refund.applied",
    "hold.expired",
)
