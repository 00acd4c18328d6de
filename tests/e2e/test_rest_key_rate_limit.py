"""The per-key rate limit through Envoy: a user key past its scope's limit (20/s, burst 40 by
default) gets 429 JSON with Retry-After; other keys, of the same user too, are not slowed.

The session's server shares each key's limit with the live replicas it counts (test_many_servers.py
tests that over two): once a test started the session's second replica, its burst is half."""

from __future__ import annotations

import re

import psycopg

from billing.settings import libpq_url
from tests.e2e.helpers import assert_error, call, create_account, new_user
from testkit.signing import SigningKey
from testkit.waiting import wait_until

SHARE_SETTLED_SECONDS = 40  # the server counts a replica that started meanwhile at its next report (~10 s)


def session_key(http, service_key, user: str) -> SigningKey:
    status, _, issued = call(http, "POST", "/v1/billing/admin/session-keys", {"user_id": user, "ttl_seconds": 600},
                             key=service_key)
    assert status == 200, issued
    return SigningKey(issued["key_id"], issued["secret"])


def _replicas_counted(server_log: str) -> int:
    """The live replicas the server last said it shares the per-key limits with (1 until it says so)."""
    counts = re.findall(r"this replica's share is 1/(\d+)", server_log)
    return int(counts[-1]) if counts else 1


def _settled_share(e2e) -> int:
    """The replicas live now (replica_heartbeats, as the servers count them), once the session's
    server enforces that share: a replica another test started moments ago halves it."""
    with psycopg.connect(libpq_url(e2e.database_url)) as connection:
        row = connection.execute(
            "SELECT count(*) FROM replica_heartbeats WHERE seen_at >= now() - interval '30 seconds'").fetchone()
    live = max(1, row[0] if row else 1)
    return wait_until(
        lambda: live if _replicas_counted(e2e.server.stderr_log.read_text() + e2e.server.stdout_log.read_text()) == live
        else 0, f"the session's server takes its share among {live} replicas", timeout=SHARE_SETTLED_SECONDS,
        interval=0.5)


def test_a_user_key_past_its_limit_is_429_with_retry_after_and_other_keys_go_on(http, e2e, session_keys):
    user = new_user()
    create_account(http, user)
    busy, calm = session_key(http, session_keys.service, user), session_key(http, session_keys.service, user)
    replicas = _settled_share(e2e)
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
