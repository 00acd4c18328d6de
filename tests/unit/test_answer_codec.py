"""Stored answers replay across versions: documents as earlier code stored them keep decoding."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

import pytest

from billing.domain.balance import BalanceTotals
from billing.service.answer_codec import AnswerCodec
from billing.service.consume import CONSUME_ANSWERS
from billing.service.grants import GRANT_ANSWERS
from billing.service.results import ConsumeResult

# As the service stored them before the generic codec (2026-11), key for key.
CONSUME_2026_11 = {
    "user_id": "alice", "operation": "build", "consumed_seconds": 1000,
    "taken": [{"source": "daily", "seconds": 900, "expires_at": "2026-03-15T00:00:00+00:00"},
              {"source": "welcome", "seconds": 100, "expires_at": None}],
    "totals": {"total_seconds": 1700, "paid_seconds": 1700, "bonus_seconds": 0, "next_expiry_at": None},
    "idempotency_key": "op-1",
}
GRANT_2026_11 = {
    "user_id": "alice", "source": "gift", "seconds": 60,
    "totals": {"total_seconds": 2760, "paid_seconds": 1860, "bonus_seconds": 900,
               "next_expiry_at": "2026-03-15T00:00:00+00:00"},
    "idempotency_key": "g-1",
}


@pytest.mark.parametrize("codec, stored", [(CONSUME_ANSWERS, CONSUME_2026_11), (GRANT_ANSWERS, GRANT_2026_11)])
def test_answers_stored_by_earlier_versions_replay_and_encode_back_the_same(codec, stored):
    result = codec.decode(stored, replayed=True)
    assert result.replayed is True
    encoded = codec.encode(result)
    # Fields added since (totals.held_seconds, 2026-12) come back with their defaults; the rest key for key.
    assert encoded["totals"].pop("held_seconds") == 0
    assert encoded == stored


def test_a_field_added_with_a_default_replays_older_answers_with_it():
    @dataclasses.dataclass(frozen=True)
    class ConsumeResultWithReceipt(ConsumeResult):
        receipt_url: str = ""

    result = AnswerCodec(ConsumeResultWithReceipt).decode(CONSUME_2026_11, replayed=True)
    assert result.receipt_url == "" and result.consumed_seconds == 1000
    assert result.totals == BalanceTotals(1700, 1700, 0, None)
    assert result.taken[0].expires_at == datetime(2026, 3, 15, tzinfo=timezone.utc)
