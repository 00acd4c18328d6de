"""Signed requests and scoped keys: the canonical string, the signature, and who may act for whom.

The scheme every client implements (README, "Signing requests"):
  X-HMAC-Key-Id, X-HMAC-Timestamp (unix seconds), X-HMAC-Signature =
  lowercase hex HMAC-SHA256(secret, METHOD \\n PATH_AND_QUERY \\n TIMESTAMP \\n hex(SHA256(body)))
with the path and query exactly as sent. Direct gRPC callers sign "GRPC", the full method name
and the deterministic serialization of the request message in the same places.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime

from billing.domain.errors import PermissionDenied, Unauthenticated

SIGNATURE_WINDOW_SECONDS = 300
# What Envoy adds to a REST request before transcoding: the request as sent, and the token that
# says these headers come from Envoy (envoy/billing_response.lua, envoy.yaml).
EDGE_TOKEN_HEADER = "x-billing-edge-token"
SIGNED_METHOD_HEADER = "x-billing-signed-method"
SIGNED_PATH_HEADER = "x-billing-signed-path"
SIGNED_BODY_HEADER = "x-billing-signed-body"  # base64 of the raw request body
GRPC_METHOD = "GRPC"  # stands for the HTTP method in a direct gRPC call's canonical string
KEY_ID_LENGTH_MAX = 256  # a session key's id for a 128-character user_id is ~206
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")


class Scope(enum.StrEnum):
    SERVICE = "service"  # an app backend: acts for any user
    USER = "user"  # a browser: acts for its own user only
    ADMIN = "admin"  # grants, paid-plan accounts, key management


class Access(enum.Enum):
    """What a method needs of the caller's key."""

    PUBLIC = "public"  # no key (the catalog)
    ACCOUNT = "account"  # acts for the request's user_id
    SERVICE = "service"  # a backend: service or admin keys
    ADMIN = "admin"


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    scope: Scope
    user_id: str | None  # a user key's one user; None for the other scopes
    expires_at: datetime
    revoked_at: datetime | None = None

    def __post_init__(self) -> None:
        assert (self.scope is Scope.USER) == (self.user_id is not None), "user keys, and only they, name a user"

    def usable_at(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def canonical_request(method: str, path_and_query: str, timestamp: str, body_sha256: str) -> bytes:
    return f"{method}\n{path_and_query}\n{timestamp}\n{body_sha256}".encode()


def sign(secret: str, canonical: bytes) -> str:
    return hmac.new(secret.encode(), canonical, hashlib.sha256).hexdigest()


_REFUSED = "request signature missing, expired or invalid"  # one message: no hint which part failed


def require_valid_signature(
    secret: str | None, canonical: bytes, timestamp: str, signature: str, now: datetime
) -> None:
    """secret None: the key is unknown, expired or revoked. Compares in constant time."""
    fresh = bool(_TIMESTAMP.fullmatch(timestamp)) and abs(now.timestamp() - int(timestamp)) <= SIGNATURE_WINDOW_SECONDS
    well_formed = bool(_SIGNATURE.fullmatch(signature))
    expected = sign(secret or "", canonical)
    matches = hmac.compare_digest(expected, signature if well_formed else "0" * 64)
    if not (secret is not None and fresh and well_formed and matches):
        raise Unauthenticated(_REFUSED)


def require_access(key: ApiKey | None, access: Access, user_id: str) -> None:
    """user_id: the user the request acts for ("" when it names none)."""
    if access is Access.PUBLIC:
        return
    if key is None:
        raise Unauthenticated(_REFUSED)
    if key.scope is Scope.ADMIN:
        return
    if access is Access.ADMIN:
        raise PermissionDenied("this call needs an admin key")
    if key.scope is Scope.SERVICE:
        return
    if access is Access.SERVICE:
        raise PermissionDenied("this call needs a service key")
    if key.user_id != user_id:
        raise PermissionDenied("a user key acts for its own user_id only", field="user_id")
