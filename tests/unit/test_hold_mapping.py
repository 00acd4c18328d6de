"""Holds' results -> protobuf, as the transcoder prints them (proto names, primitives always, int32 as numbers)."""

from __future__ import annotations

from datetime import datetime, timezone

from google.protobuf import json_format

from billing.api import mapping
from billing.domain.balance import BalanceTotals
from billing.service.results import HoldResult, HoldView, OpenHolds

EXPIRES = datetime(2026, 12, 7, 15, 30, tzinfo=timezone.utc)
TOTALS = BalanceTotals(total_seconds=2400, paid_seconds=1800, bonus_seconds=600, next_expiry_at=None, held_seconds=300)
VIEW = HoldView(hold_id="h1", user_id="alice", operation="build", held_seconds=300, committed_seconds=0,
                state="open", expires_at=EXPIRES)


def as_json(message) -> dict:
    return json_format.MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


def test_a_hold_answer_prints_integers_and_the_totals_with_held_seconds():
    printed = as_json(mapping.hold_response(HoldResult(VIEW, TOTALS, replayed=True)))
    assert printed == {
        "hold": {"hold_id": "h1", "user_id": "alice", "operation": "build", "held_seconds": 300,
                 "committed_seconds": 0, "state": "open", "expires_at": "2026-12-07T15:30:00Z"},
        "totals": {"total_seconds": 2400, "paid_seconds": 1800, "bonus_seconds": 600, "next_expiry_at": None,
                   "held_seconds": 300},
    }


def test_the_open_holds_keep_their_order_and_an_empty_list_prints_as_one():
    second = HoldView("h2", "alice", "plan", 60, 10, "open", EXPIRES)
    printed = as_json(mapping.open_holds(OpenHolds("alice", (VIEW, second), TOTALS)))
    assert [h["hold_id"] for h in printed["holds"]] == ["h1", "h2"]
    assert printed["holds"][1]["committed_seconds"] == 10
    empty = as_json(mapping.open_holds(OpenHolds("alice", (), BalanceTotals(0, 0, 0, None))))
    assert empty["holds"] == [] and empty["totals"]["held_seconds"] == 0
