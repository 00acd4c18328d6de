"""Hostile REST requests to the operator console's API (OperatorService, issue 23), for test_fuzz.py.

Every case carries a poison that makes it a 4xx whatever its signing: a user that does not exist
(404), a key, payment or Stripe event that does not exist, a missing or hostile reason or
idempotency key, a number out of range, an unknown filter value or query parameter, an over-long or
undecodable id. So no case may change anything (the fuzz test checks the ledger after), and an
admin-signed case still reaches the use case's own validation.
"""

from __future__ import annotations

import json

from hypothesis import strategies as st

from tests.e2e.fuzz_values import JSON, NASTY_STRINGS, NOBODY, NUMBERS, UNDECODABLE, WRONG_TYPES, HttpCase, segment

ADMIN = b"/v1/billing/admin"
# Numbers no operator field takes: zero, negative, past int32, fractions. (Not poisons: a page size,
# limit, days or hours of 0, which mean the default, and a query name without a value, which is no
# parameter to the transcoder.)
OUT_OF_RANGE = st.sampled_from([0, -1, -(2**31), 2**31, 10**12, 1.5, "abc", ""])
BAD_REASONS = st.one_of(st.sampled_from(["", " ", "\t\n", "r" * 501, "\u202e", "a\u0000b"]), WRONG_TYPES)
BAD_INSTANTS = st.sampled_from(["yesterday", "2026-13-01T00:00:00Z", "10000-01-01T00:00:00Z", "2026-01-01", ""])
BAD_PAGE_QUERIES = st.sampled_from([
    b"page_size=201", b"page_size=-5", b"page_size=abc", b"page_token=zz", b"page_token=" + b"a" * 700,
    b"x=1", b"%FF=1", b"pageSize=%00",
])


def _nobody_segment(draw) -> bytes:
    return draw(st.one_of(NOBODY.map(segment), UNDECODABLE, st.just(b"u" * 300)))


def _post(family: str, path: bytes, body: object) -> HttpCase:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return HttpCase(family, "POST", path, JSON, raw)


@st.composite
def hostile_operator_reads(draw) -> HttpCase:
    """Search, the account page's reads, usage and the CSV export: nobody, or a bad parameter."""
    kind = draw(st.sampled_from(["search", "overview", "ledger", "csv", "usage"]))
    if kind == "search":
        query = draw(st.sampled_from([b"", b"query=", b"query=" + b"q" * 201, b"query=a&limit=-1", b"query=a&limit=51",
                                      b"query=a&limit=abc", b"query=%00", b"query=a&x=1", b"query=%FF"]))
        return HttpCase("operator_reads", "GET", ADMIN + b"/accounts?" + query)
    user = _nobody_segment(draw)
    suffix = {"overview": b"", "ledger": b"/ledger", "csv": b"/ledger.csv", "usage": b"/usage"}[kind]
    target = ADMIN + b"/accounts/" + user + suffix
    if kind in ("ledger", "csv") and draw(st.booleans()):
        target += b"?" + draw(st.one_of(BAD_PAGE_QUERIES, st.sampled_from([
            b"types=bogus", b"types=consumption&types=" + b"t" * 300, b"order=sideways", b"from_at=yesterday",
            b"to_at=2026-13-01T00:00:00Z", b"from_at=%00"])))
    elif kind == "usage" and draw(st.booleans()):
        target += b"?" + draw(st.sampled_from([b"days=91", b"days=-1", b"days=abc", b"period=month"]))
    return HttpCase("operator_reads", "GET", target)


def _action_body(draw, fields: dict) -> dict:
    """A valid-looking action body for a user that does not exist, often with one more poison."""
    body = {"reason": "fuzz", "idempotency_key": "fz-key", **fields}
    poison = draw(st.sampled_from(["none", "reason", "no_reason", "key", "no_key", "extra"]))
    if poison == "reason":
        body["reason"] = draw(BAD_REASONS)
    elif poison == "no_reason":
        del body["reason"]
    elif poison == "key":
        body["idempotency_key"] = draw(st.one_of(NASTY_STRINGS, WRONG_TYPES))
    elif poison == "no_key":
        del body["idempotency_key"]
    elif poison == "extra":
        body[draw(st.sampled_from(["user_id", "userId", "payment_id"]))] = draw(NOBODY)
    return body


@st.composite
def hostile_operator_actions(draw) -> HttpCase:
    """Grants, claw-backs, refunds and the subscription and auto top-up actions, on users that do not
    exist (404) or with a poisoned body (400): never a change."""
    kind = draw(st.sampled_from(["grant", "claw_back", "refund", "cancel", "change", "topup_off"]))
    user = _nobody_segment(draw)
    account = ADMIN + b"/accounts/" + user
    if kind == "grant":
        fields = {"source": draw(st.sampled_from(["gift", "adjustment", "welcome", "package", "", "GIFT"])),
                  "seconds": draw(st.one_of(st.just(60), OUT_OF_RANGE, NUMBERS))}
        if draw(st.booleans()):
            fields["expires_at"] = draw(st.one_of(BAD_INSTANTS, st.just("2001-01-01T00:00:00Z")))
        return _post("operator_actions", account + b"/grants", _action_body(draw, fields))
    if kind == "claw_back":
        return _post("operator_actions", account + b"/claw-backs",
                     _action_body(draw, {"seconds": draw(st.one_of(st.just(60), OUT_OF_RANGE, NUMBERS))}))
    if kind == "refund":
        payment = draw(st.one_of(NOBODY.map(lambda s: segment("pi_" + s)), UNDECODABLE, st.just(b"p" * 300)))
        fields = {"amount_cents": draw(st.one_of(st.just(0), OUT_OF_RANGE))}
        return _post("operator_actions", account + b"/payments/" + payment + b"/refund", _action_body(draw, fields))
    if kind == "cancel":
        return _post("operator_actions", account + b"/subscription/cancel", _action_body(draw, {}))
    if kind == "change":
        fields = {"plan_key": draw(st.one_of(st.sampled_from(["starter", "pro", "", "free"]), NASTY_STRINGS))}
        return _post("operator_actions", account + b"/subscription/change", _action_body(draw, fields))
    raw = draw(st.one_of(st.just(_action_body(draw, {})), st.sampled_from([b"{", b"[]", b"null", b"\xff"])))
    return _post("operator_actions", account + b"/auto-topup/disable", raw)


@st.composite
def hostile_operator_records(draw) -> HttpCase:
    """Revoking keys that do not exist, the audit trail and the Stripe inbox with bad filters,
    reprocessing events that were never received, and the operations panels with bad parameters."""
    kind = draw(st.sampled_from(["revoke", "audit", "inbox", "reprocess", "runs", "health", "activity"]))
    ident = draw(st.one_of(NOBODY.map(segment), UNDECODABLE, st.just(b"k" * 300)))
    if kind == "revoke":
        return _post("operator_records", ADMIN + b"/keys/" + ident + b"/revoke", _action_body(draw, {}))
    if kind == "reprocess":
        return _post("operator_records", ADMIN + b"/stripe-events/" + ident + b"/reprocess", _action_body(draw, {}))
    if kind == "audit":
        query = draw(st.one_of(BAD_PAGE_QUERIES, st.sampled_from([
            b"from_at=yesterday", b"to_at=%00", b"user_id=" + b"u" * 300, b"action=" + b"a" * 300, b"page_size=1000"])))
        return HttpCase("operator_records", "GET", ADMIN + b"/audit?" + query)
    if kind == "inbox":
        query = draw(st.one_of(BAD_PAGE_QUERIES, st.sampled_from([b"outcome=" + b"o" * 300, b"user_id=%FF"])))
        return HttpCase("operator_records", "GET", ADMIN + b"/stripe-events?" + query)
    if kind == "runs":
        return HttpCase("operator_records", "GET", ADMIN + b"/migration-runs?" + draw(BAD_PAGE_QUERIES))
    if kind == "health":
        return HttpCase("operator_records", "GET", ADMIN + b"/health?" + draw(st.sampled_from([b"x=1", b"%FF=1", b"verbose=1"])))
    hours = draw(st.sampled_from([b"hours=169", b"hours=-1", b"hours=abc", b"days=1"]))
    return HttpCase("operator_records", "GET", ADMIN + b"/activity?" + hours)


@st.composite
def hostile_console_logins(draw) -> HttpCase:
    """Redeeming codes that were never issued (or are not codes at all): 401, or 429 past the limit;
    unsigned, as the console sends it."""
    code = draw(st.one_of(NASTY_STRINGS, NOBODY, WRONG_TYPES, st.just("c" * 5000)))
    raw = draw(st.one_of(st.just(json.dumps({"code": code}).encode()), st.sampled_from([b"{", b"[]", b"\xff", b""])))
    return HttpCase("console_logins", "POST", ADMIN + b"/console-logins/redeem", JSON, raw, signing="none")
