"""Checks the signature of every call (service/ports.Authenticator), against keys held in memory.

REST requests are signed over the bytes the browser sent, which the transcoder no longer has:
Envoy's Lua filter (envoy/billing_response.lua) copies the method, the path and query as sent and
the raw body (base64) into headers before transcoding, and the route adds the edge token, which
proves those headers were written by Envoy and not by a caller of the gRPC port. Direct gRPC
callers sign the method name and the deterministic serialization of their request instead, or,
with a service or admin key, send it as a bearer token (`authorization: Bearer <key_id>.<secret>`:
internal callers and load generators that cannot sign); Envoy never forwards one as such.

Keys: session keys are parsed from their id; stored keys are copied from api_keys every
KEY_REFRESH_SECONDS (a revocation takes effect within that), so an unknown key id costs no query.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
import time
from datetime import datetime
from typing import Awaitable, Callable, Mapping

import psycopg

from billing.adapters.key_secrets import MasterKey, parse_session_key
from billing.domain.auth import (
    EDGE_TOKEN_HEADER, GRPC_METHOD, KEY_ID_LENGTH_MAX, SIGNATURE_WINDOW_SECONDS, SIGNED_BODY_HEADER,
    SIGNED_METHOD_HEADER, SIGNED_PATH_HEADER, ApiKey, Scope, body_digest, canonical_request, require_valid_signature,
)
from billing.domain.errors import Unauthenticated
from billing.service.ports import Clock, Unavailable, outage_log

log = logging.getLogger(__name__)

KEY_REFRESH_SECONDS = 5.0
KEY_COPY_AGE_SECONDS_MAX = 30.0
KEY_ID_HEADER = "x-hmac-key-id"
TIMESTAMP_HEADER = "x-hmac-timestamp"
SIGNATURE_HEADER = "x-hmac-signature"
AUTHORIZATION_HEADER = "authorization"
BEARER = "Bearer "

LoadKeys = Callable[[datetime], Awaitable[list[ApiKey]]]


class HmacAuthenticator:
    def __init__(
        self, master: MasterKey, clock: Clock, load_keys: LoadKeys, count_failure: Callable[[str], None] | None = None
    ):
        self._count_failure = count_failure or (lambda reason: None)  # Metrics.auth_failed
        self._master = master
        self._edge_token = master.edge_token()
        self._clock = clock
        self._load_keys = load_keys
        self._stored: dict[str, ApiKey] = {}
        self._copied_at: float | None = None  # monotonic time of the last good copy; None before the first

    async def refresh(self) -> None:
        """Replaces the copy of the usable stored keys (the server calls it every KEY_REFRESH_SECONDS)."""
        keys = await self._load_keys(self._clock.now())
        self._stored = {key.key_id: key for key in keys}
        self._copied_at = time.monotonic()

    async def authenticate(self, method: str, metadata: Mapping[str, str], serialized: Callable[[], bytes]) -> ApiKey:
        try:
            return self._authenticate(method, metadata, serialized)
        except Unauthenticated:
            self._count_failure(self._failure_reason(metadata))
            raise

    def _failure_reason(self, metadata: Mapping[str, str]) -> str:
        """For the metrics only: the caller hears the same message whatever the reason."""
        key_id, timestamp = metadata.get(KEY_ID_HEADER, ""), metadata.get(TIMESTAMP_HEADER, "")
        if metadata.get(AUTHORIZATION_HEADER, "").startswith(BEARER) and EDGE_TOKEN_HEADER not in metadata:
            key_id = metadata[AUTHORIZATION_HEADER][len(BEARER):].partition(".")[0]
        elif not (key_id and timestamp and metadata.get(SIGNATURE_HEADER)):
            return "missing_credentials"
        now = self._clock.now()
        session = parse_session_key(key_id) if len(key_id) <= KEY_ID_LENGTH_MAX else None
        if session is not None and not session.usable_at(now):
            return "expired_key"
        if session is None and key_id not in self._stored:
            return "unknown_key"  # or expired, or revoked: the copy holds usable keys only
        if timestamp and not (timestamp.isdigit() and abs(now.timestamp() - int(timestamp)) <= SIGNATURE_WINDOW_SECONDS):
            return "stale_timestamp"
        return "bad_signature"

    def _authenticate(self, method: str, metadata: Mapping[str, str], serialized: Callable[[], bytes]) -> ApiKey:
        now = self._clock.now()
        timestamp = metadata.get(TIMESTAMP_HEADER, "")
        key_id = metadata.get(KEY_ID_HEADER, "")
        edge_token = metadata.get(EDGE_TOKEN_HEADER)
        if edge_token is not None:
            if not hmac.compare_digest(edge_token.encode(), self._edge_token.encode()):
                raise Unauthenticated("request signature missing, expired or invalid")
            canonical = canonical_request(
                metadata.get(SIGNED_METHOD_HEADER, ""), metadata.get(SIGNED_PATH_HEADER, ""), timestamp,
                body_digest(_base64(metadata.get(SIGNED_BODY_HEADER, ""))),
            )
        elif metadata.get(AUTHORIZATION_HEADER, "").startswith(BEARER):
            return self._bearer(metadata[AUTHORIZATION_HEADER][len(BEARER):], now)
        else:
            canonical = canonical_request(GRPC_METHOD, method, timestamp, body_digest(serialized()))
        key = self._known_key(key_id, now)
        secret = self._master.secret(key.key_id) if key is not None else None
        require_valid_signature(secret, canonical, timestamp, metadata.get(SIGNATURE_HEADER, ""), now)
        assert key is not None
        return key

    def _known_key(self, key_id: str, now: datetime) -> ApiKey | None:
        """The usable key with this id, or None. Unavailable where the copy of stored keys cannot be
        trusted to tell: before the first copy (an unknown key may just not be read yet), and once it
        is older than KEY_COPY_AGE_SECONDS_MAX (a revoked key must not live on in a replica that
        cannot refresh). Session keys need no copy. An id over the limit is refused, never cut (a
        cut id would name another key)."""
        if len(key_id) > KEY_ID_LENGTH_MAX:
            return None
        key = parse_session_key(key_id)
        if key is None:
            copied_at = self._copied_at
            if copied_at is None or time.monotonic() - copied_at > KEY_COPY_AGE_SECONDS_MAX:
                raise Unavailable("the copy of the api keys is missing or too old", kind="api_keys")
            key = self._stored.get(key_id)
        return key if key is not None and key.usable_at(now) else None

    def _bearer(self, token: str, now: datetime) -> ApiKey:
        key_id, _, secret = token.partition(".")
        key = self._known_key(key_id, now)
        expected = self._master.secret(key.key_id) if key is not None else ""
        matches = hmac.compare_digest(expected.encode(), secret.encode())
        if key is None or not matches or key.scope is Scope.USER:
            raise Unauthenticated("request signature missing, expired or invalid")
        return key


def _base64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise Unauthenticated("request signature missing, expired or invalid") from None


async def refresh_or_keep(authenticator: HmacAuthenticator) -> None:
    """A failed refresh keeps the last copy (the database may be down)."""
    try:
        await authenticator.refresh()
    except (Unavailable, psycopg.Error, OSError) as outage:  # the database is down: expected, no traceback
        log.warning("could not refresh the api keys (%s); keeping the last copy", str(outage).split("\n", 1)[0],
                    extra=outage_log("database"))
    except Exception:  # noqa: BLE001 - any failure: keep serving with the keys we have
        log.warning("could not refresh the api keys; keeping the last copy", exc_info=True)


async def keep_refreshed(authenticator: HmacAuthenticator, interval_seconds: float = KEY_REFRESH_SECONDS) -> None:
    """Runs until cancelled."""
    while True:
        await asyncio.sleep(interval_seconds)
        await refresh_or_keep(authenticator)
