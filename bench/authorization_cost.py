"""The server's CPU per signed REST request's authorization, measured in this process: the
signature check alone, and the whole layer a signed REST Consume passes (signature, the signed
request rebuilt and compared with the call, scope, per-key rate limit). Envoy's Lua copying the
request as sent (~17 us, measured apart) is in the REST scenarios' server+Envoy CPU."""

from __future__ import annotations

import asyncio
import base64
import time
from datetime import datetime, timedelta, timezone

from billing.adapters.clock import SystemClock
from billing.api.interceptors import AuthenticationInterceptor
from billing.api.key_rate_limit import KeyRateLimiter
from billing.domain.rate_limit import RateLimit
from billing.v1 import consumption_pb2
from billing.adapters.hmac_auth import HmacAuthenticator
from billing.adapters.key_secrets import MasterKey
from billing.domain.auth import ApiKey, Scope, body_digest, canonical_request, sign

CHECKS = 20_000


def microseconds_per_check(checks: int = CHECKS) -> float:
    return _microseconds(checks, whole_layer=False)


def microseconds_per_authorization(checks: int = CHECKS) -> float:
    return _microseconds(checks, whole_layer=True)


def _microseconds(checks: int, whole_layer: bool) -> float:
    master = MasterKey(bytes(32))
    key = ApiKey("bk_bench", Scope.SERVICE, None, datetime.now(timezone.utc) + timedelta(hours=1))

    async def load(now):
        return [key]

    authenticator = HmacAuthenticator(master, SystemClock(), load)
    body = b'{"user_id":"123456","operation":"build","seconds":1,"idempotency_key":"wrk1-1-123456"}'
    stamp = str(int(time.time()))
    metadata = {
        "x-hmac-key-id": key.key_id, "x-hmac-timestamp": stamp,
        "x-hmac-signature": sign(master.secret(key.key_id), canonical_request("POST", "/v1/billing/consume", stamp, body_digest(body))),
        "x-billing-edge-token": master.edge_token(), "x-billing-signed-method": "POST",
        "x-billing-signed-path": "/v1/billing/consume", "x-billing-signed-body": base64.b64encode(body).decode(),
    }

    method = "/billing.v1.BillingService/Consume"
    request = consumption_pb2.ConsumeRequest(
        user_id="123456", operation="build", seconds=1, idempotency_key="wrk1-1-123456"
    )
    unlimited = RateLimit(per_second=1e9, burst=1e9)  # the check's cost, never a refusal
    layer = AuthenticationInterceptor(authenticator, key_limiter=KeyRateLimiter({Scope.SERVICE: unlimited}))

    async def run() -> float:
        await authenticator.refresh()
        started = time.process_time()
        for _ in range(checks):
            if whole_layer:
                await layer._require_allowed(method, metadata, request)
            else:
                await authenticator.authenticate(method, metadata, lambda: b"")
        return (time.process_time() - started) / checks * 1e6

    return asyncio.run(run())
