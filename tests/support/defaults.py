"""The service objects that take their values from settings, built with the settings' defaults (billing.settings
declares each default once; the server passes the configured values in)."""

from __future__ import annotations

import dataclasses
from typing import Any

from billing import settings
from billing.service.balance_hub import WatchLimits
from billing.service.dependencies import CheckoutPages

WATCH_LIMITS = WatchLimits(
    max_watchers=settings.default_int("BILLING_MAX_WATCHERS"),
    max_watchers_per_account=settings.default_int("BILLING_MAX_WATCHERS_PER_USER"),
    heartbeat_seconds=float(settings.DECLARED["BILLING_WATCH_HEARTBEAT_SECONDS"].default or "nan"),
)
CHECKOUT_PAGES = CheckoutPages(
    settings.checkout_success_url(settings.DEFAULT_CORS_ORIGIN), settings.checkout_cancel_url(settings.DEFAULT_CORS_ORIGIN)
)


def watch_limits(**overrides: Any) -> WatchLimits:
    return dataclasses.replace(WATCH_LIMITS, **overrides)
