"""Signatures and scopes: the canonical string, the checks, and who may act for whom."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone

import pytest

from billing.adapters.clock import FixedClock
from billing.adapters.hmac_auth import HmacAuthenticator
from billing.adapters.key_secrets import MasterKey, parse_session_key, session_key
from billing.domain.auth import (
    Access, ApiKey, Scope, body_digest, canonical_request, require_access, require_valid_signature, sign,
)
from billing.domain.errors import PermissionDenied, Unauthenticated

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
STAMP = str(int(NOW.timestamp()))
MASTER = MasterKey(bytes(range(32)))
SERVICE = ApiKey("bk_service", Scope.SERVICE, None, NOW + timedelta(days=1))
ALICE = ApiKey("bk_alice", Scope.USER, "alice", NOW + timedelta(days=1))
ADMIN = ApiKey("bk_admin", Scope.ADMIN, None, NOW + timedelta(days=1))
REVOKED = ApiKey("bk_revoked", Scope.ADMIN, None, NOW + timedelta(days=1), revoked_at=NOW - timedelta(hours=1))
EXPIRED = ApiKey("bk_expired", Scope.ADMIN, None, NOW - timedelta(seconds=1))


def test_the_canonical_string_is_the_documented_one():
    canonical = canonical_request("POST", "/v1/billing/consume?x=1", "1700000000", body_digest(b"{}"))
    assert canonical == (
        b"POST\n/v1/billing/consume?x=1\n1700000000\n"
        b"44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    )
    assert sign("secret", canonical) == sign("secret", canonical) != sign("other", canonical)


@pytest.mark.parametrize("timestamp, signature_of, secret", [
    (STAMP, "right", None),  # unknown, expired or revoked key
    (str(int(NOW.timestamp()) - 301), "right", "s"),  # stale
    (str(int(NOW.timestamp()) + 301), "right", "s"),  # from the future
    ("", "right", "s"),
    ("17e8", "right", "s"),
    (STAMP, "wrong", "s"),
    (STAMP, "UPPER", "s"),
])
def test_a_bad_signature_is_refused_with_one_message(timestamp, signature_of, secret):
    canonical = canonical_request("GET", "/v1/billing/balance/alice", timestamp, body_digest(b""))
    signature = {"right": sign("s", canonical), "wrong": sign("t", canonical), "UPPER": sign("s", canonical).upper()}
    with pytest.raises(Unauthenticated) as refused:
        require_valid_signature(secret, canonical, timestamp, signature[signature_of], NOW)
    assert refused.value.message == "request signature missing, expired or invalid"


def test_a_signature_inside_the_window_is_accepted():
    def accepted(drift: int) -> bool:
        stamp = str(int(NOW.timestamp()) + drift)
        canonical = canonical_request("GET", "/p", stamp, body_digest(b""))
        try:
            require_valid_signature("s", canonical, stamp, sign("s", canonical), NOW)
        except Unauthenticated:
            return False
        return True

    assert [accepted(drift) for drift in (-301, -300, 0, 300, 301)] == [False, True, True, True, False]


@pytest.mark.parametrize("key, access, user_id, allowed", [
    (None, Access.PUBLIC, "", True),
    (None, Access.ACCOUNT, "alice", False),
    (ALICE, Access.ACCOUNT, "alice", True),
    (ALICE, Access.ACCOUNT, "bob", False),
    (ALICE, Access.ADMIN, "alice", False),
    (ALICE, Access.SERVICE, "alice", False),
    (SERVICE, Access.ACCOUNT, "bob", True),
    (SERVICE, Access.SERVICE, "", True),
    (SERVICE, Access.ADMIN, "bob", False),
    (ADMIN, Access.ADMIN, "bob", True),
    (ADMIN, Access.ACCOUNT, "bob", True),
])
def test_scopes(key, access, user_id, allowed):
    if allowed:
        require_access(key, access, user_id)
    else:
        with pytest.raises((PermissionDenied, Unauthenticated)):
            require_access(key, access, user_id)


def test_a_session_key_carries_its_user_and_expiry_and_cannot_be_edited():
    key = session_key("alice", NOW + timedelta(hours=1))
    assert parse_session_key(key.key_id) == key
    tampered = base64.urlsafe_b64encode(b"bob~" + str(int(NOW.timestamp()) + 3600).encode() + b"~x").decode()
    forged = parse_session_key("sk_" + tampered)
    assert forged is not None and MASTER.secret(forged.key_id) != MASTER.secret(key.key_id)
    for garbage in ("sk_", "sk_%%%", "sk_" + base64.urlsafe_b64encode(b"a~99999999999999~n").decode(), "bk_x"):
        assert parse_session_key(garbage) is None


def authenticator(*keys: ApiKey) -> HmacAuthenticator:
    async def load(now):
        return [k for k in keys if k.usable_at(now)]

    return HmacAuthenticator(MASTER, FixedClock(NOW), load)


def rest_metadata(key_id: str, method: str, path: str, body: bytes, secret: str | None = None, edge: str | None = None):
    canonical = canonical_request(method, path, STAMP, body_digest(body))
    return {
        "x-hmac-key-id": key_id, "x-hmac-timestamp": STAMP,
        "x-hmac-signature": sign(secret or MASTER.secret(key_id), canonical),
        "x-billing-edge-token": edge or MASTER.edge_token(), "x-billing-signed-method": method,
        "x-billing-signed-path": path, "x-billing-signed-body": base64.b64encode(body).decode(),
    }


async def test_a_rest_call_is_checked_against_the_request_as_envoy_saw_it():
    auth = authenticator(ALICE)
    await auth.refresh()
    body = b'{"user_id":"alice","operation":"build","seconds":60,"idempotency_key":"k"}'
    metadata = rest_metadata("bk_alice", "POST", "/v1/billing/consume", body)
    assert await auth.authenticate("/billing.v1.BillingService/Consume", metadata, lambda: b"") == ALICE

    for tampered in (
        {"x-billing-signed-body": base64.b64encode(body.replace(b"60", b"61")).decode()},
        {"x-billing-signed-path": "/v1/billing/consume?extra=1"},
        {"x-billing-signed-method": "PUT"},
        {"x-billing-edge-token": "0" * 64},
        {"x-billing-signed-body": "not base64!"},
        {"x-hmac-key-id": "bk_nobody"},
    ):
        with pytest.raises(Unauthenticated):
            await auth.authenticate("/billing.v1.BillingService/Consume", metadata | tampered, lambda: b"")


async def test_revoked_and_expired_keys_sign_nothing():
    auth = authenticator(REVOKED, EXPIRED)
    await auth.refresh()
    for key in (REVOKED, EXPIRED):
        with pytest.raises(Unauthenticated):
            await auth.authenticate("/m", rest_metadata(key.key_id, "GET", "/p", b""), lambda: b"")


async def test_a_direct_grpc_call_signs_its_serialized_request_or_sends_a_backend_bearer_key():
    auth = authenticator(SERVICE, ALICE)
    await auth.refresh()
    method, message = "/billing.v1.BillingService/GetBalance", b"\n\x05alice"
    canonical = canonical_request("GRPC", method, STAMP, body_digest(message))
    signed = {"x-hmac-key-id": "bk_alice", "x-hmac-timestamp": STAMP,
              "x-hmac-signature": sign(MASTER.secret("bk_alice"), canonical)}
    assert await auth.authenticate(method, signed, lambda: message) == ALICE
    with pytest.raises(Unauthenticated):
        await auth.authenticate(method, signed, lambda: b"\n\x03bob")

    bearer = {"authorization": f"Bearer bk_service.{MASTER.secret('bk_service')}"}
    assert await auth.authenticate(method, bearer, lambda: message) == SERVICE
    for refused in (f"Bearer bk_alice.{MASTER.secret('bk_alice')}", "Bearer bk_service.wrong", "Bearer "):
        with pytest.raises(Unauthenticated):
            await auth.authenticate(method, {"authorization": refused}, lambda: message)


async def test_each_refusal_is_counted_with_its_reason_and_the_caller_hears_one_message():
    counted = []
    session = session_key("alice", NOW - timedelta(minutes=1))
    auth = HmacAuthenticator(MASTER, FixedClock(NOW), authenticator(ALICE)._load_keys, counted.append)
    await auth.refresh()
    good = rest_metadata("bk_alice", "GET", "/p", b"")
    cases = {
        "missing_credentials": {},
        "unknown_key": rest_metadata("bk_nobody", "GET", "/p", b""),
        "expired_key": rest_metadata(session.key_id, "GET", "/p", b""),
        "stale_timestamp": good | {"x-hmac-timestamp": str(int(NOW.timestamp()) - 999)},
        "bad_signature": good | {"x-hmac-signature": "0" * 64},
    }
    for metadata in cases.values():
        with pytest.raises(Unauthenticated, match="request signature missing, expired or invalid"):
            await auth.authenticate("/m", metadata, lambda: b"")
    assert counted == list(cases)


@pytest.mark.parametrize("expiry", ["999999999999", "253402300800", "9" * 40])
async def test_a_made_up_session_key_with_an_absurd_expiry_is_unknown_not_a_crash(expiry):
    key_id = "sk_" + base64.urlsafe_b64encode(f"alice~{expiry}~x".encode()).decode().rstrip("=")
    assert parse_session_key(key_id) is None
    auth = authenticator()
    await auth.refresh()
    with pytest.raises(Unauthenticated):
        await auth.authenticate("/m", rest_metadata(key_id, "GET", "/p", b""), lambda: b"")


async def test_a_session_key_for_the_longest_user_id_signs():
    user = "u" * 128
    key = session_key(user, NOW + timedelta(hours=1))
    auth = authenticator()
    await auth.refresh()
    assert (await auth.authenticate("/m", rest_metadata(key.key_id, "GET", "/p", b""), lambda: b"")).user_id == user
    for bad_user in ("a~b", "", "é"):
        forged = "sk_" + base64.urlsafe_b64encode(f"{bad_user}~{int(NOW.timestamp()) + 60}~x".encode()).decode()
        assert parse_session_key(forged) is None


async def test_a_replica_that_cannot_refresh_its_keys_stops_trusting_its_old_copy():
    import time

    from billing.service.ports import Unavailable

    auth = authenticator(ALICE)
    with pytest.raises(Unavailable):  # no copy yet: cannot tell a new key from a wrong one
        await auth.authenticate("/m", rest_metadata("bk_alice", "GET", "/p", b""), lambda: b"")
    await auth.refresh()
    assert await auth.authenticate("/m", rest_metadata("bk_alice", "GET", "/p", b""), lambda: b"") == ALICE
    auth._copied_at = time.monotonic() - 31  # the database has been unreachable for half a minute
    with pytest.raises(Unavailable):  # a key revoked meanwhile must not live on here
        await auth.authenticate("/m", rest_metadata("bk_alice", "GET", "/p", b""), lambda: b"")
    session = session_key("alice", NOW + timedelta(hours=1))  # needs no copy
    assert await auth.authenticate("/m", rest_metadata(session.key_id, "GET", "/p", b""), lambda: b"") == session
