"""`billing keys create|revoke` and `billing sign`: the keys that sign requests, from a shell.

The keys table is reached through the composition root (bootstrap.build_service) like every other
command's database: one connection, no change notifier (a key is no wallet change)."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
from contextlib import AsyncExitStack
from datetime import datetime, timedelta, timezone
from typing import Awaitable, Callable, TypeVar

from billing.adapters.db.api_keys import PostgresApiKeys
from billing.adapters.key_secrets import MasterKey, new_key_id
from billing.bootstrap import build_service
from billing.domain.auth import ApiKey, Scope, body_digest, canonical_request, sign
from billing.domain.errors import InvalidArgument
from billing.domain.limits import require_account_id
from billing.settings import Settings
from billing.settings import value as settings_value

DEFAULT_KEY_TTL = "90d"
KEYS_POOL_SIZE = 1
T = TypeVar("T")
_TTL = re.compile(r"([0-9]{1,6})([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_ttl(text: str) -> timedelta:
    match = _TTL.fullmatch(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"--ttl must look like 90s, 30m, 12h or 90d, not {text!r}")
    if int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError(f"--ttl must be longer than zero (the key would expire at once), not {text!r}")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def keys_main(argv: list[str], settings: Settings) -> int:
    parser = argparse.ArgumentParser(prog="billing keys")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="prints the new key as JSON; the secret is shown only here")
    create.add_argument("--scope", choices=[str(s) for s in Scope], required=True)
    create.add_argument("--user-id", help="the one user a user key acts for")
    create.add_argument("--ttl", type=parse_ttl, default=parse_ttl(DEFAULT_KEY_TTL))
    revoke = commands.add_parser("revoke", help="the key stops working within seconds on every replica")
    revoke.add_argument("key_id")
    args = parser.parse_args(argv)
    master = MasterKey.load(settings.keys.master_key_path, settings.keys.master_key_hex)
    if args.command == "create":
        scope = Scope(args.scope)
        if (scope is Scope.USER) != (args.user_id is not None):
            parser.error("--user-id is required for user keys and only for them")
        if args.user_id is not None:
            try:
                require_account_id(args.user_id)
            except InvalidArgument as refused:
                parser.error(f"--user-id: {refused}")
        key = create_stored_key(settings, scope, args.user_id, args.ttl)
        print(json.dumps({
            "key_id": key.key_id, "secret": master.secret(key.key_id), "scope": str(key.scope),
            "user_id": key.user_id, "expires_at": key.expires_at.isoformat().replace("+00:00", "Z"),
        }))
        return 0
    revoked = revoke_stored_key(settings, args.key_id)
    print("revoked" if revoked else "no such key, or already revoked")
    return 0 if revoked else 1


def create_stored_key(settings: Settings, scope: Scope, user_id: str | None, ttl: timedelta) -> ApiKey:
    """A new key row (its secret is the master key's HMAC of its id); servers use it within 5 s."""
    now = datetime.now(timezone.utc)
    key = ApiKey(key_id=new_key_id(), scope=scope, user_id=user_id, expires_at=now + ttl)
    asyncio.run(_with_keys(settings, lambda keys: keys.add(key, now)))
    return key


def revoke_stored_key(settings: Settings, key_id: str) -> bool:
    """True when the key existed and was not revoked yet; servers stop accepting it within 5 s."""
    return asyncio.run(_with_keys(settings, lambda keys: keys.revoke(key_id, datetime.now(timezone.utc))))


async def _with_keys(settings: Settings, work: Callable[[PostgresApiKeys], Awaitable[T]]) -> T:
    """`work` on the keys table, in one transaction committed when it returns (the pool's connection)."""
    async with AsyncExitStack() as stack:
        service = await build_service(settings, stack, pool_size=KEYS_POOL_SIZE, announce_changes=False)
        async with service.pool.connection() as connection:
            return await work(PostgresApiKeys(connection))


def sign_main(argv: list[str]) -> int:
    """Prints curl header options that sign one request: curl ... $(billing sign ...)."""
    parser = argparse.ArgumentParser(prog="billing sign", description=sign_main.__doc__)
    parser.add_argument("--key-id", required=True)
    parser.add_argument("--secret", default=settings_value("BILLING_KEY_SECRET"),
                        help="default: $BILLING_KEY_SECRET (an argument shows in ps and shell history)")
    parser.add_argument("method")
    parser.add_argument("path_and_query", help="exactly as sent, e.g. '/v1/billing/events/alice?limit=20'")
    parser.add_argument("body", nargs="?", default="", help="the exact body bytes that will be sent")
    args = parser.parse_args(argv)
    if not args.secret:
        parser.error("--secret or BILLING_KEY_SECRET is required")
    timestamp = str(int(time.time()))
    canonical = canonical_request(args.method.upper(), args.path_and_query, timestamp, body_digest(args.body.encode()))
    signature = sign(args.secret, canonical)
    print(f"-H X-HMAC-Key-Id:{args.key_id} -H X-HMAC-Timestamp:{timestamp} -H X-HMAC-Signature:{signature}")
    return 0
