"""Records real server answers for the TypeScript client's unit tests (clients/typescript/test/fixtures/).

Runs the e2e stack of tests/e2e/conftest.py once (fresh database, the real gRPC server, Envoy,
the local Stripe stand-in), acts as a browser with a session key (CreateSessionKey, called as an
app backend would with a service key), and writes each exchange as
{"request": {method, path, body}, "response": {status, headers, body}} to
test/fixtures/<name>.json, and signing vectors computed by the server's own functions
(test/fixtures/signing_vectors.json). The compiled client itself runs against the stack in
tests/e2e/test_typescript_client_live.py (test/live/smoke.ts).

    make venv && .venv/bin/python clients/typescript/scripts/capture_fixtures.py   # ~15 s

Answers vary (ids, times, tokens), so the unit tests check shapes and behaviour, never exact ids.
Not part of `make test`: re-run it when the API changes, and review the diff of the fixtures.
"""

from __future__ import annotations

import json
import sys
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
PACKAGE = HERE.parent
REPO = PACKAGE.parent.parent
FIXTURES = PACKAGE / "test" / "fixtures"
KEPT_HEADERS = ("content-type", "etag", "cache-control", "retry-after")


class Recorder:
    def __init__(self, e2e: Any, key: Any) -> None:
        self.e2e = e2e
        self.key = key
        self.written: list[str] = []

    def call(self, name: str | None, method: str, path: str, payload: Any = None, headers: dict[str, str] | None = None,
             key: Any = "session") -> tuple[int, dict[str, str], Any]:
        signing = self.key if key == "session" else key
        status, reply_headers, raw = self.e2e.http(method, path, json=payload, headers=headers, key=signing)
        body = json.loads(raw) if raw else None
        if name:
            exchange = {
                "request": {"method": method, "path": path, "body": payload, "headers": headers or {}},
                "response": {
                    "status": status,
                    "headers": {k: v for k, v in reply_headers.items() if k in KEPT_HEADERS},
                    "body": body,
                },
            }
            (FIXTURES / f"{name}.json").write_text(json.dumps(exchange, indent=2, sort_keys=False) + "\n")
            self.written.append(name)
        return status, reply_headers, body


def test_capture(e2e, session_keys, stripe_standin, tmp_path):
    from tests.e2e.helpers import grant

    FIXTURES.mkdir(parents=True, exist_ok=True)
    user = f"ts-{uuid.uuid4().hex[:10]}"
    # The browser's key: minted by the app backend (service key) on the internal listener.
    status, _, raw = e2e.http("POST", "/v1/billing/admin/session-keys", json={"user_id": user, "ttl_seconds": 3600},
                              key=session_keys.service)
    assert status == 200, raw
    session = json.loads(raw)
    from testkit.signing import SigningKey

    key = SigningKey(session["key_id"], session["secret"])
    rec = Recorder(e2e, key)
    redacted = dict(session, secret="<redacted>")
    (FIXTURES / "session_key.json").write_text(json.dumps(
        {"request": {"method": "POST", "path": "/v1/billing/admin/session-keys", "body": {"user_id": user, "ttl_seconds": 3600}},
         "response": {"status": 200, "headers": {"content-type": "application/json"}, "body": redacted}}, indent=2) + "\n")

    # Catalog: public, per currency, ETag -> 304.
    status, headers, _ = rec.call("catalog_usd", "GET", "/v1/billing/catalog?currency=USD", key=None)
    assert status == 200 and headers.get("etag")
    rec.call("catalog_usd_not_modified", "GET", "/v1/billing/catalog?currency=USD", headers={"If-None-Match": headers["etag"]}, key=None)
    rec.call("catalog_eur", "GET", "/v1/billing/catalog?currency=EUR", key=None)
    rec.call("catalog_jpy_fallback", "GET", "/v1/billing/catalog?currency=JPY", key=None)

    rec.call("create_account", "POST", "/v1/billing/accounts", {"user_id": user})
    rec.call("balance_new", "GET", f"/v1/billing/balance/{user}")
    consume = {"user_id": user, "operation": "build", "seconds": 120, "idempotency_key": "op-1"}
    rec.call("consume", "POST", "/v1/billing/consume", consume)
    rec.call("consume_replayed", "POST", "/v1/billing/consume", consume)
    rec.call("batch_check", "POST", "/v1/billing/check-sufficient-batch", {"userId": user, "operations": [
        {"operation": "build", "estimate_seconds": 600}, {"operation": "plan", "estimate_seconds": 30},
        {"operation": "export", "estimate_seconds": 7200}]})
    big = {"user_id": user, "operation": "export", "seconds": 7200, "idempotency_key": "op-big"}
    status, _, refusal = rec.call("consume_insufficient", "POST", "/v1/billing/consume", big)
    assert status == 402, refusal

    # Buy the suggested package; Stripe (the stand-in) delivers the credit.
    package = next(s for s in refusal["suggestions"] if s["type"] == "package")
    status, _, bought = rec.call("purchase_package", "POST", "/v1/billing/packages/purchase", {
        "user_id": user, "package_key": package["key"], "currency": "EUR", "idempotency_key": "buy-1"})
    assert status == 200, bought
    stripe_standin.pay(bought["session_id"])
    status, _, resumed = rec.call("consume_resumed", "POST", "/v1/billing/consume", big | {"resume_token": refusal["resume_token"]})
    assert status == 200, resumed
    rec.call("consume_resume_token_used", "POST", "/v1/billing/consume",
             big | {"idempotency_key": "op-big-2", "resume_token": refusal["resume_token"]})
    rec.call("balance_with_package", "GET", f"/v1/billing/balance/{user}")
    rec.call("usage_month", "GET", f"/v1/billing/usage/{user}?period=month")
    rec.call("usage_day", "GET", f"/v1/billing/usage/{user}?period=day")
    status, _, page = rec.call("events_page1", "GET", f"/v1/billing/events/{user}?limit=3")
    assert page["next_page_token"], page
    rec.call("events_page2", "GET", f"/v1/billing/events/{user}?limit=3&page_token={page['next_page_token']}")

    # Holds: create (and its replay), extend, commit, a final commit, list, release, and their refusals.
    create = {"user_id": user, "hold_id": "hold-1", "operation": "build", "seconds": 600, "ttl_seconds": 600}
    rec.call("hold_create", "POST", "/v1/billing/holds", create)
    rec.call("hold_create_replayed", "POST", "/v1/billing/holds", create)
    rec.call("hold_extend", "POST", "/v1/billing/holds/hold-1/extend",
             {"user_id": user, "seconds": 300, "idempotency_key": "ext-1"})
    rec.call("hold_commit", "POST", "/v1/billing/holds/hold-1/commit", {"user_id": user, "used_seconds": 200})
    rec.call("hold_create_second", "POST", "/v1/billing/holds",
             {"user_id": user, "hold_id": "hold-2", "operation": "plan", "seconds": 60})
    rec.call("hold_list", "GET", f"/v1/billing/holds?user_id={user}")
    rec.call("hold_commit_final", "POST", "/v1/billing/holds/hold-1/commit",
             {"user_id": user, "used_seconds": 450, "final": True})
    rec.call("hold_release", "POST", "/v1/billing/holds/hold-2/release", {"user_id": user})
    short = rec.call(None, "GET", f"/v1/billing/balance/{user}")[2]["totals"]["total_seconds"] + 600
    status, _, refusal = rec.call("hold_insufficient", "POST", "/v1/billing/holds",
                                  {"user_id": user, "hold_id": "hold-big", "operation": "export", "seconds": short})
    assert status == 402, refusal
    rec.call("hold_conflict", "POST", "/v1/billing/holds", create | {"seconds": 601})
    rec.call("hold_settled", "POST", "/v1/billing/holds/hold-1/commit", {"user_id": user, "used_seconds": 500})
    rec.call(None, "POST", "/v1/billing/holds", {"user_id": user, "hold_id": "hold-3", "operation": "plan", "seconds": 10})
    rec.call("hold_exceeded", "POST", "/v1/billing/holds/hold-3/commit", {"user_id": user, "used_seconds": 11})
    rec.call("hold_not_found", "POST", "/v1/billing/holds/no-such-hold/release", {"user_id": user})

    # Errors.
    rec.call("error_invalid_argument", "POST", "/v1/billing/consume",
             {"user_id": user, "operation": "build", "seconds": 0, "idempotency_key": "op-zero"})
    rec.call("error_unauthenticated", "GET", f"/v1/billing/balance/{user}", key=None)
    rec.call("error_permission_denied", "GET", "/v1/billing/balance/someone-else")
    rec.call("error_idempotency_key_reused", "POST", "/v1/billing/consume", consume | {"seconds": 60})

    # Auto top-up: read, enable without a card (409), save a card, enable.
    rec.call("auto_topup_get", "GET", f"/v1/billing/auto-topup/{user}")
    settings = {"enabled": True, "threshold_seconds": 1200, "package_key": "mini", "currency": "USD"}
    rec.call("auto_topup_no_card", "PUT", f"/v1/billing/auto-topup/{user}", settings)
    status, _, setup = rec.call("auto_topup_setup", "POST", "/v1/billing/auto-topup/setup", {"user_id": user})
    assert status == 200, setup
    stripe_standin.pay(setup["session_id"])
    rec.call("auto_topup_put", "PUT", f"/v1/billing/auto-topup/{user}", settings)

    # A paid plan: checkout, pay, upgrade, cancel.
    status, _, checkout = rec.call("subscription_checkout", "POST", "/v1/billing/subscriptions/checkout",
                                   {"user_id": user, "plan_key": "pro", "currency": "USD", "idempotency_key": "sub-1"})
    assert status == 200, checkout
    stripe_standin.pay(checkout["session_id"])
    rec.call("balance_subscribed", "GET", f"/v1/billing/balance/{user}")
    rec.call("subscription_change", "POST", "/v1/billing/subscriptions/change",
             {"user_id": user, "plan_key": "business", "idempotency_key": "up-1"})
    rec.call("subscription_cancel", "POST", "/v1/billing/subscriptions/cancel", {"user_id": user, "idempotency_key": "cancel-1"})

    # Signing vectors: computed by the server's own functions (billing.domain.auth).
    write_signing_vectors()
    print(f"\nwrote {len(rec.written) + 2} fixtures to {FIXTURES}")


def write_signing_vectors() -> None:
    from billing.domain.auth import body_digest, canonical_request, sign

    cases = [
        ("GET", "/v1/billing/balance/alice", "", 1764556800, "bk_test_1", "secret-1"),
        ("GET", "/v1/billing/events/alice?limit=20&page_token=ZXY6MTI%3D", "", 1764556801, "bk_test_1", "secret-1"),
        ("POST", "/v1/billing/consume",
         '{"user_id":"alice","operation":"build","seconds":120,"idempotency_key":"op-1"}', 1764556802, "bk_test_2",
         "bsk_" + "ab" * 32),
        ("PUT", "/v1/billing/auto-topup/user:42@example.com", '{"enabled":false,"note":"caf\u00e9 \u2615"}', 1700000000,
         "sk_x", "s\u00e9cret \u2603"),
    ]
    vectors = []
    for method, path, body, stamp, key_id, secret in cases:
        digest = body_digest(body.encode())
        canonical = canonical_request(method, path, str(stamp), digest)
        vectors.append({"method": method, "path_and_query": path, "body": body, "timestamp": stamp, "key_id": key_id,
                        "secret": secret, "body_sha256": digest, "canonical": canonical.decode(),
                        "signature": sign(secret, canonical)})
    (FIXTURES / "signing_vectors.json").write_text(json.dumps(vectors, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    # The e2e fixtures as a plugin; this file as the one test to run.
    sys.exit(pytest.main(["-q", "-s", "-p", "tests.conftest", "-p", "tests.e2e.conftest", "--rootdir", str(REPO),
                          "-o", "python_files=*.py", str(Path(__file__).resolve())]))
