"""Small helpers shared by the REST tests."""

from __future__ import annotations

import json
import re
import uuid
from http import client as httpclient
from pathlib import Path

OUTAGE_LINES_AT_MOST = 100  # issue 19 item 6: under 100 lines for a PostgreSQL stop at 1,000 requests/s
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


def new_user() -> str:
    return f"e2e-{uuid.uuid4().hex[:12]}"


def body_json(body: bytes):
    return json.loads(body.decode())


def call(http, method: str, path: str, payload=None, headers=None, key=True, browser_listener=False):
    """key: True signs with the session's admin key, None sends no signature, or a SigningKey."""
    status, reply_headers, body = http(
        method, path, json=payload, headers=headers, key=key, browser_listener=browser_listener
    )
    return status, reply_headers, (body_json(body) if body else None)


def create_account(http, user_id: str, plan_key: str = "") -> dict:
    payload = {"user_id": user_id} | ({"plan_key": plan_key} if plan_key else {})
    status, _, body = call(http, "POST", "/v1/billing/accounts", payload)
    assert status == 200, body
    return body


def grant(http, user_id: str, seconds: int, source: str = "gift") -> dict:
    payload = {"user_id": user_id, "source": source, "seconds": seconds, "reason": "e2e", "idempotency_key": uuid.uuid4().hex}
    status, _, body = call(http, "POST", "/v1/billing/admin/grants", payload)
    assert status == 200, body
    return body


def assert_error(status: int, body: dict, http_status: int, error: str, field: str | None = None) -> None:
    assert status == http_status, body
    assert body["error"] == error, body
    assert body["http_status"] == http_status
    assert isinstance(body.get("message"), str) and body["message"]
    if field is not None:
        assert body.get("field") == field, body


def assert_few_outage_lines_and_no_traceback(stderr_log: Path) -> None:
    """A database stop under load, as a server (BILLING_LOG_FORMAT=json, level WARNING) wrote it: a few
    lines per kind per interval, none with a traceback, every one a JSON object (thousands of failed
    calls, one line each, is what this replaced)."""
    text = stderr_log.read_text(errors="replace")
    assert "Traceback" not in text, text[-5000:]
    entries = [json.loads(line) for line in text.splitlines() if line.strip()]
    outage_lines = [entry for entry in entries if "outage" in entry]
    assert outage_lines, "the database stop was logged"
    assert len(entries) <= OUTAGE_LINES_AT_MOST, f"{len(entries)} lines:\n" + "\n".join(text.splitlines()[:50])


def catalog_status(port: int, timeout: float = 5) -> int:
    """One unsigned GET of the catalog on a fresh connection, as a new client sends it: its status."""
    conn = httpclient.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/v1/billing/catalog")
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()
