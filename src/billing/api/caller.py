"""The key that signed the call being served, for a servicer that must name it (an operator action's
audit entry). Set by the authentication interceptor around the servicer; None when the call needed
no key (public methods) or the server runs without authentication."""

from __future__ import annotations

from contextvars import ContextVar

from billing.domain.auth import ApiKey

CALLER_KEY: ContextVar[ApiKey | None] = ContextVar("caller_key", default=None)


def caller_key_id() -> str:
    """The signing key's id; "" when there is none (the use case names that case itself)."""
    key = CALLER_KEY.get()
    return key.key_id if key is not None else ""
