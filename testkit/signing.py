"""Keys and signatures for tests: one master key per test session (every server a test starts
inherits BILLING_MASTER_KEY), admin keys created in a test database, and signed headers."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import grpc
import psycopg

from billing.adapters.db.api_keys import PostgresApiKeys
from billing.adapters.key_secrets import MasterKey, new_key_id
from billing.domain.auth import GRPC_METHOD, ApiKey, Scope, body_digest, canonical_request, sign
from billing.settings import libpq_url

MASTER_KEY_HEX = os.environ.setdefault("BILLING_MASTER_KEY", secrets.token_hex(32))
MASTER = MasterKey(bytes.fromhex(MASTER_KEY_HEX))


@dataclass(frozen=True)
class SigningKey:
    key_id: str
    secret: str

    def rest_headers(self, method: str, path_and_query: str, body: bytes = b"", timestamp: int | None = None) -> dict[str, str]:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        canonical = canonical_request(method.upper(), path_and_query, stamp, body_digest(body))
        return {"X-HMAC-Key-Id": self.key_id, "X-HMAC-Timestamp": stamp, "X-HMAC-Signature": sign(self.secret, canonical)}

    def grpc_metadata(
        self, method: str, serialized: bytes, timestamp: int | None = None
    ) -> tuple[tuple[str, str], ...]:
        """gRPC metadata for a direct call signed over the full method name ("/billing.v1.BillingService/
        Consume") and the request's deterministic serialization, as hmac_auth checks it."""
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        canonical = canonical_request(GRPC_METHOD, method, stamp, body_digest(serialized))
        return (("x-hmac-key-id", self.key_id), ("x-hmac-timestamp", stamp),
                ("x-hmac-signature", sign(self.secret, canonical)))

    def bearer(self) -> tuple[tuple[str, str], ...]:
        """gRPC metadata for a direct call with a service or admin key."""
        return (("authorization", f"Bearer {self.key_id}.{self.secret}"),)


def create_key(database_url: str, scope: Scope, user_id: str | None = None, ttl: timedelta = timedelta(days=1)) -> SigningKey:
    now = datetime.now(timezone.utc)
    key = ApiKey(key_id=new_key_id(), scope=scope, user_id=user_id, expires_at=now + ttl)

    async def add() -> None:
        async with await psycopg.AsyncConnection.connect(libpq_url(database_url), autocommit=True) as connection:
            await PostgresApiKeys(connection).add(key, now)

    asyncio.run(add())
    return SigningKey(key.key_id, MASTER.secret(key.key_id))


_default_key: list[SigningKey] = []


def set_default_key(key: SigningKey) -> None:
    """The key signed_channel() calls with (the e2e session's admin key)."""
    _default_key[:] = [key]


def has_default_key() -> bool:
    return bool(_default_key)


def default_key() -> SigningKey:
    assert _default_key, "no default key: the e2e admin_key fixture sets it"
    return _default_key[0]


class _Bearer(grpc.UnaryUnaryClientInterceptor):
    def __init__(self, key: SigningKey):
        self._metadata = key.bearer()

    def intercept_unary_unary(self, continuation, client_call_details, request):
        details = client_call_details._replace(metadata=tuple(client_call_details.metadata or ()) + self._metadata)
        return continuation(details, request)


def signed_channel(target: str, key: SigningKey | None = None) -> grpc.Channel:
    """A channel whose calls carry a bearer key (direct gRPC callers authenticate too)."""
    return grpc.intercept_channel(grpc.insecure_channel(target), _Bearer(key or default_key()))


def revoke(database_url: str, key_id: str) -> None:
    async def run() -> None:
        async with await psycopg.AsyncConnection.connect(libpq_url(database_url), autocommit=True) as connection:
            await PostgresApiKeys(connection).revoke(key_id, datetime.now(timezone.utc))

    asyncio.run(run())
