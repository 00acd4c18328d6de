"""What the fuzz tests share (test_fuzz.py, test_fuzz_grpc.py): drawing cases in batches, and the
ledger snapshot the `untouched_ledger` fixture (conftest.py) compares before and after."""

from __future__ import annotations

import os

import psycopg
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from billing.settings import libpq_url

CONNECTIONS = 8  # HTTP/1.1 connections, or gRPC calls in flight
DERANDOMIZE = os.environ.get("BILLING_FUZZ_RANDOM", "") != "1"


def generate(strategy, batches: int, batch_size: int) -> list:
    """Hypothesis draws the cases (derandomized unless BILLING_FUZZ_RANDOM=1); they are sent
    afterwards, all at once over the pool: drawing is the slow part, small batches keep it cheap
    (large ones overrun Hypothesis' buffer and are redrawn)."""
    drawn: list = []

    @settings(max_examples=batches, deadline=None, derandomize=DERANDOMIZE, database=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(st.lists(strategy, min_size=batch_size, max_size=batch_size))
    def draw(batch: list) -> None:
        drawn.extend(batch)

    draw()
    return drawn


# ---------------------------------------------------------------- the ledger before and after


def ledger_snapshot(database_url: str) -> tuple:
    with psycopg.connect(libpq_url(database_url)) as connection:
        return connection.execute(
            "SELECT (SELECT count(*) FROM accounts), (SELECT count(*) FROM buckets),"
            " (SELECT count(*) FROM ledger_events), (SELECT coalesce(sum(seconds), 0) FROM ledger_events),"
            " (SELECT count(*) FROM idempotency_records), (SELECT count(*) FROM resume_tokens),"
            " (SELECT count(*) FROM webhook_events), (SELECT count(*) FROM payments),"
            " (SELECT count(*) FROM payment_profiles), (SELECT count(*) FROM payment_customers),"
            " (SELECT count(*) FROM api_keys),"
            " (SELECT md5(coalesce(string_agg(concat_ws('|', account_id, topup_enabled, topup_threshold_seconds,"
            "  topup_package_key, topup_currency), ',' ORDER BY account_id), '')) FROM accounts)"
        ).fetchone()
