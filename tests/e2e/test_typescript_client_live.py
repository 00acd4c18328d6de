"""The TypeScript client (clients/typescript) against the real stack: its compiled live smoke test
(test/live/smoke.ts) runs under node with a session key minted as an app backend mints one.
`make test` builds it first (`make test-ts`); without node or the build the test is skipped."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid

import pytest

from testkit.processes import REPO_ROOT

SMOKE = REPO_ROOT / "clients" / "typescript" / "build" / "test" / "live" / "smoke.js"


def test_typescript_client_against_the_stack(e2e, session_keys):
    node = shutil.which("node")
    if node is None or not SMOKE.exists():
        pytest.skip("TypeScript client not built (make test-ts)")
    # ':' and '@' in the user id: the client leaves them unencoded in paths, and signs what it sends.
    user = f"ts:{uuid.uuid4().hex[:8]}@example"
    status, _, raw = e2e.http("POST", "/v1/billing/admin/session-keys", json={"user_id": user, "ttl_seconds": 600},
                              key=session_keys.service)
    assert status == 200, raw
    env = {"PATH": os.environ.get("PATH", ""), "BILLING_BASE_URL": e2e.rest_base_url,
           "BILLING_SESSION_KEY": raw.decode()}
    assert json.loads(raw)["user_id"] == user
    result = subprocess.run([node, str(SMOKE)], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "live smoke: all passed" in result.stdout


def test_a_browser_may_read_etag_retry_after_and_the_request_id(http):
    """CORS hides response headers that are not safelisted: the client needs ETag (catalog cache),
    Retry-After (its backoff on 503 / 429) and x-request-id (BillingApiError.requestId)."""
    status, headers, _ = http("GET", "/v1/billing/catalog", headers={"Origin": "http://localhost:3000"}, key=None)
    assert status == 200
    exposed = {h.strip() for h in headers["access-control-expose-headers"].lower().split(",")}
    assert {"etag", "retry-after", "x-request-id"} <= exposed


BACKEND = REPO_ROOT / "clients" / "typescript" / "build" / "test" / "live" / "backend.js"


def test_a_node_backend_holds_with_a_service_key(e2e, session_keys):
    """Issue 21: "the TypeScript client gains the hold calls (a Node backend uses them with a service key)"."""
    node = shutil.which("node")
    if node is None or not BACKEND.exists():
        pytest.skip("TypeScript client not built (make test-ts)")
    key = session_keys.service
    env = {"PATH": os.environ.get("PATH", ""), "BILLING_BASE_URL": e2e.rest_base_url,
           "BILLING_SERVICE_KEY": json.dumps({"key_id": key.key_id, "secret": key.secret}),
           "BILLING_USER": f"ts-backend-{uuid.uuid4().hex[:8]}"}
    result = subprocess.run([node, str(BACKEND)], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "backend holds: all passed" in result.stdout
