"""The pure rules of operator actions (issue 23): reasons, page sizes and tokens, inbox filters,
console codes, and the request fingerprint that tells a retry from another request."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from billing.domain.audit import AuditPosition, audit_page_size, detail_json, require_action, require_operator_reason
from billing.domain.console_login import code_digest, plausible_code
from billing.domain.errors import InvalidArgument
from billing.domain.stripe_inbox import KEPT_OUTCOMES, InboxPosition, inbox_filter, inbox_page_size
from billing.service import audit, stripe_inbox
from billing.service.audit import action_request


def test_a_reason_is_trimmed_and_bounded():
    assert require_operator_reason("  refund agreed \t") == "refund agreed"
    assert require_operator_reason("x" * 500) == "x" * 500
    for bad in ("", "   ", "\t\n", "x" * 501, "a\x00b", "two\nlines"):
        with pytest.raises(InvalidArgument) as refused:
            require_operator_reason(bad)
        assert refused.value.field == "reason"


def test_page_sizes_and_actions():
    assert audit_page_size(0) == 50 and audit_page_size(200) == 200 and inbox_page_size(0) == 50
    for bad in (-1, 201):
        with pytest.raises(InvalidArgument):
            audit_page_size(bad)
        with pytest.raises(InvalidArgument):
            inbox_page_size(bad)
    assert require_action("claw_back") == "claw_back"
    with pytest.raises(InvalidArgument):
        require_action("delete_everything")


def test_page_tokens_round_trip_and_refuse_forgeries():
    at = datetime(2026, 3, 14, 9, 30, 1, 5, tzinfo=timezone.utc)
    assert audit.decode_page_token(audit.encode_page_token(AuditPosition(at, "aud_1"))) == AuditPosition(at, "aud_1")
    position = InboxPosition(at, "evt_1")
    assert stripe_inbox.decode_page_token(stripe_inbox.encode_page_token(position)) == position
    for forged in ("x", "W10", "a" * 600, stripe_inbox.encode_page_token(position)):
        with pytest.raises(InvalidArgument) as refused:
            audit.decode_page_token(forged)
        assert refused.value.field == "page_token"


def test_kept_means_what_waits_for_an_operator():
    assert inbox_filter("kept", None).outcomes == KEPT_OUTCOMES and "processed" not in KEPT_OUTCOMES
    assert inbox_filter("", "u").outcomes is None and inbox_filter("processed", None).outcomes == ("processed",)
    with pytest.raises(InvalidArgument) as refused:
        inbox_filter("lost", None)
    assert refused.value.field == "outcome"


def test_console_codes():
    assert plausible_code("A" * 43) and not plausible_code("") and not plausible_code("a b")
    assert not plausible_code("x" * 65)
    assert len(code_digest("abc")) == 32 and code_digest("abc") != code_digest("abd")


def test_a_retry_asks_the_same_and_anything_else_differs():
    first = action_request("grant", "bk_1", " why ", "k1", user_id="u", seconds=60)
    assert first.reason == "why"
    assert action_request("grant", "bk_2", "why", "k1", seconds=60, user_id="u").fingerprint == first.fingerprint
    assert action_request("grant", "bk_1", "why", "k1", user_id="u", seconds=61).fingerprint != first.fingerprint
    assert action_request("grant", "bk_1", "why not", "k1", user_id="u", seconds=60).fingerprint != first.fingerprint
    assert action_request("claw_back", "bk_1", "why", "k1", user_id="u", seconds=60).fingerprint != first.fingerprint
    with pytest.raises(InvalidArgument) as refused:
        action_request("grant", "bk_1", "why", "", user_id="u")
    assert refused.value.field == "idempotency_key"
    assert action_request("grant", "", "why", "k", user_id="u").operator_key_id == audit.UNAUTHENTICATED_OPERATOR


def test_detail_is_canonical_json():
    assert detail_json({"b": 1, "a": None}) == '{"a":null,"b":1}'
