"""The catalogue of outbound event types (issue 22): what an endpoint may subscribe to."""

EVENT_TYPES = (
    "balance.low", "balance.depleted", "balance.recovered",
    "credit.granted", "credit.expiring", "credit.expired",
    "topup.succeeded", "topup.failed", "topup.disabled",
    "subscription.activated", "subscription.renewed", "subscription.changed", "subscription.canceled",
    "subscription.past_due",
    "refund.applied", "hold.expired",
)
