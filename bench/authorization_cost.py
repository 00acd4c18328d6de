"""The server's CPU per signature check, measured in this process: what signing costs the
service for each REST request on top of Envoy's Lua copying the request as sent (which the
REST scenarios' server+Envoy CPU already includes)."""

from __future__ import annotations

import asyncio
import base64
import time
from datetime import datetime, timedelta, timezone

from billing.adapters.clock import SystemClock
from billing.adapters.hmac_auth import HmacAuthenticator
from billing.adapters.key_secrets import MasterKey
from billing.domain.auth import ApiKey, Scope, body_digest, canonical_request, sign

CHECKS = 20_000


def microseconds_per_check(checks: int = CHECKS) -> float:
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

    async def run() -> float:
        await authenticator.refresh()
        started = time.process_time()
        for _ in range(checks):
            await authenticator.authenticate("/billing.v1.BillingService/Consume", metadata, lambda: b"")
        return (time.process_time() - started) / checks * 1e6

    return asyncio.run(run())
