"""The per-key rate limit through Envoy: a user key past its scope's limit (20/s, burst 40 by
default) gets 429 JSON with Retry-After; other keys, of the same user too, are not slowed.

The session's server shares each key's limit with the live replicas it counts (test_many_servers.py
tests that over two): once a test started the session's second replica, its burst is half."""

from __future__ import annotations

import re

from tests.e2e.helpers import assert_error, call, create_account, new_user
from testkit.signing import SigningKey


def session_key(http, service_key, user: str) -> SigningKey:
    status, _, issued = call(http, "POST", "/v1/billing/admin/session-keys", {"user_id": user, "ttl_seconds": 600},
                             key=service_key)
    assert status == 200, issued
    return SigningKey(issued["key_id"], issued["secret"])


def _replicas_counted(server_log: str) -> int:
    """The live replicas the server last said it shares the per-key limits with (1 until it says so)."""
    counts = re.findall(r"this replica's share is 1/(\d+)", server_log)
    return int(counts[-1]) if counts else 1


def test_a_user_key_past_its_limit_is_429_with_retry_after_and_other_keys_go_on(http, e2e, session_keys):
    user = new_user()
    create_account(http, user)
    busy, calm = session_key(http, session_keys.service, user), session_key(http, session_keys.service, user)
    replicas = _replicas_counted(e2e.server.stderr_log.read_text() + e2e.server.stdout_log.read_text())
    answers = [call(http, "GET", f"/v1/billing/balance/{user}", key=busy) for _ in range(80)]
    statuses = [status for status, _, _ in answers]
    burst = 40 // replicas
    assert statuses[:burst] == [200] * burst  # the burst (this replica's share of it)
    refused = [(headers, body) for status, headers, body in answers if status == 429]
    assert refused, statuses
    headers, body = refused[0]
    assert_error(429, body, 429, "RATE_LIMITED")
    assert int(headers["retry-after"]) >= 1
    assert call(http, "GET", f"/v1/billing/balance/{user}", key=calm)[0] == 200
