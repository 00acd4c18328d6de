"""Signing in to the operator console (issue 23): `billing console-login` mints a one-time code tied
to a new short-lived admin key; the console redeems the code once for that key's id and secret.

The key is an ordinary stored admin key (api_keys, revocable, expiring): its secret is derived from
the master key like every stored key's and stored nowhere; the code is stored as a digest only.
Redeeming is one statement (adapters/db/console_logins.py): of two redeems of one code one wins.
A second redeem, an expired, unknown or malformed code: the same refusal, UNAUTHENTICATED.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from billing.domain.auth import ApiKey, Scope
from billing.domain.console_login import CODE_BYTES, CODE_TTL, CONSOLE_KEY_TTL_MAX, code_digest, plausible_code
from billing.domain.errors import InvalidArgument, Unauthenticated
from billing.service.dependencies import Dependencies

REFUSED = "this sign-in code is unknown, used or expired: run `billing console-login` again"


@dataclass(frozen=True)
class ConsoleLogin:
    code: str  # shown once, in the URL
    key: ApiKey
    code_expires_at: datetime


@dataclass(frozen=True)
class ConsoleCredentials:
    key_id: str
    secret: str
    expires_at: datetime


async def mint_console_login(deps: Dependencies, key_id: str, key_ttl: timedelta) -> ConsoleLogin:
    """A new admin key (key_id: a fresh stored key id) and the one-time code that hands it out."""
    if not timedelta(0) < key_ttl <= CONSOLE_KEY_TTL_MAX:
        raise InvalidArgument(f"the console key lives at most {CONSOLE_KEY_TTL_MAX}", field="ttl")
    now = deps.key_clock().now()
    key = ApiKey(key_id=key_id, scope=Scope.ADMIN, user_id=None, expires_at=now + key_ttl)
    code = secrets.token_urlsafe(CODE_BYTES)
    async with deps.storage.transaction() as uow:
        await uow.stored_keys.add(key, now)
        await uow.console_logins.add(code_digest(code), key.key_id, now, now + CODE_TTL)
        await uow.commit()
    return ConsoleLogin(code, key, now + CODE_TTL)


async def redeem_console_login(deps: Dependencies, code: str) -> ConsoleCredentials:
    if deps.key_issuer is None:
        raise Unauthenticated(REFUSED)  # no master key here: no secret to hand out
    if not plausible_code(code):
        raise Unauthenticated(REFUSED)
    async with deps.storage.transaction() as uow:
        key = await uow.console_logins.redeem(code_digest(code), deps.key_clock().now())
        await uow.commit()
    if key is None:
        raise Unauthenticated(REFUSED)
    return ConsoleCredentials(key.key_id, deps.key_issuer.secret(key.key_id), key.expires_at)
