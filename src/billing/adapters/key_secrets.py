"""Key secrets, derived from one master key: nothing secret is stored in the database.

secret(key_id) = "bsk_" + hex(HMAC-SHA256(master, "key:" + key_id)). A key created with
`billing keys create` has a random id and a row in api_keys (scope, user, expiry, revocation).
A session key (CreateSessionKey) has no row: its id carries its user and expiry, signed by its
derived secret's existence alone, so minting one for every login costs no write; it cannot be
revoked and lives at most SESSION_KEY_TTL_MAX.

The master key comes from BILLING_MASTER_KEY, or from a file (.data/master.key, created with
mode 0600 on first use). Every replica needs the same one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from datetime import datetime, timedelta, timezone
from pathlib import Path

from billing.domain.auth import ApiKey, Scope
from billing.domain.errors import InvalidArgument
from billing.domain.limits import require_account_id

MASTER_KEY_BYTES = 32
SESSION_KEY_PREFIX = "sk_"
STORED_KEY_PREFIX = "bk_"
SESSION_KEY_TTL_MAX = timedelta(hours=24)
_SESSION_SEPARATOR = "~"  # not allowed in a user_id
SESSION_EXPIRY_UNIX_MAX = 253_402_300_799  # 9999-12-31T23:59:59Z


class MasterKey:
    def __init__(self, key: bytes):
        if len(key) < MASTER_KEY_BYTES:
            raise ValueError(f"the master key must be at least {MASTER_KEY_BYTES} bytes")
        self._key = key

    @classmethod
    def load(cls, path: Path, from_environment: str | None = None) -> MasterKey:
        """BILLING_MASTER_KEY (hex) when set; else the file, created (0600) when missing."""
        if from_environment:
            return cls(bytes.fromhex(from_environment))
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as file:
                file.write(secrets.token_hex(MASTER_KEY_BYTES))
        return cls(bytes.fromhex(path.read_text().strip()))

    def secret(self, key_id: str) -> str:
        return "bsk_" + hmac.new(self._key, f"key:{key_id}".encode(), hashlib.sha256).hexdigest()

    def edge_token(self) -> str:
        """What Envoy adds to every REST request it forwards: the server trusts the edge's view of
        the request as sent (path, method, body) only on requests that carry it."""
        return hmac.new(self._key, b"edge", hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return "MasterKey(<hidden>)"


class SessionKeyIssuer:
    """service/ports.KeyIssuer on the master key."""

    def __init__(self, master: MasterKey):
        self._master = master

    def session_key(self, user_id: str, expires_at: datetime) -> tuple[ApiKey, str]:
        key = session_key(user_id, expires_at)
        return key, self._master.secret(key.key_id)

    def secret(self, key_id: str) -> str:
        return self._master.secret(key_id)


def new_key_id() -> str:
    return STORED_KEY_PREFIX + secrets.token_urlsafe(18)


def session_key(user_id: str, expires_at: datetime) -> ApiKey:
    nonce = secrets.token_urlsafe(9)
    payload = _SESSION_SEPARATOR.join((user_id, str(int(expires_at.timestamp())), nonce))
    key_id = SESSION_KEY_PREFIX + base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
    return ApiKey(key_id=key_id, scope=Scope.USER, user_id=user_id, expires_at=_whole_seconds(expires_at))


def parse_session_key(key_id: str) -> ApiKey | None:
    """The session key a key id describes, or None when it is not one."""
    if not key_id.startswith(SESSION_KEY_PREFIX):
        return None
    encoded = key_id[len(SESSION_KEY_PREFIX):]
    try:
        payload = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    parts = payload.split(_SESSION_SEPARATOR)
    if len(parts) != 3 or not (parts[1].isascii() and parts[1].isdigit()):
        return None
    expires_unix = int(parts[1])
    if expires_unix > SESSION_EXPIRY_UNIX_MAX:  # also what datetime can hold: never a 500 on a made-up id
        return None
    try:
        require_account_id(parts[0])
    except InvalidArgument:
        return None
    expires_at = datetime.fromtimestamp(expires_unix, tz=timezone.utc)
    return ApiKey(key_id=key_id, scope=Scope.USER, user_id=parts[0], expires_at=expires_at)


def _whole_seconds(instant: datetime) -> datetime:
    return instant.replace(microsecond=0)
