"""CreateSessionKey: an app backend mints a short-lived user key for its logged-in user's browser."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from billing.domain.auth import ApiKey
from billing.domain.limits import require_account_id, require_seconds
from billing.service.dependencies import Dependencies

SESSION_KEY_TTL_DEFAULT_SECONDS = 3600
SESSION_KEY_TTL_MIN_SECONDS = 60
SESSION_KEY_TTL_SECONDS_MAX = 86_400  # it cannot be revoked: it must not live long


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    secret: str


def create_session_key(deps: Dependencies, account_id: str, ttl_seconds: int) -> IssuedKey:
    require_account_id(account_id)
    ttl_seconds = ttl_seconds or SESSION_KEY_TTL_DEFAULT_SECONDS
    require_seconds(
        ttl_seconds, field="ttl_seconds", minimum=SESSION_KEY_TTL_MIN_SECONDS, maximum=SESSION_KEY_TTL_SECONDS_MAX
    )
    assert deps.key_issuer is not None, "the server composes a key issuer"
    # The authenticator checks expiry on the wall clock: a key timed by a clock run ahead would live longer.
    key, secret = deps.key_issuer.session_key(account_id, deps.key_clock().now() + timedelta(seconds=ttl_seconds))
    return IssuedKey(key, secret)
