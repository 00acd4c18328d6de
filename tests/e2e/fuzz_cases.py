"""Hostile requests for the fuzz test (test_fuzz.py): Hypothesis strategies, one family per kind of
hostility, every case invalid by construction so that no reply may be 2xx and the ledger cannot move.

How a case stays invalid: reads name a user that cannot exist (`fz-` ids, never created: the
only creating call, CreateAccount, always carries an invalid user_id) or an invalid one; writes
carry at least one *poison* (a field value the transcoder or the service must refuse); the
catalog always gets an invalid currency, parameter or encoding.

Every path bound in protos/billing/v1/*.proto (google.api.http) needs cases with its own method:
test_fuzz checks it (uncovered_routes).

The case and the hostile values are in fuzz_values.py; the families about signatures (Stripe
webhooks, replays) in fuzz_signed_cases.py; the gRPC fuzz draws its own (test_fuzz_grpc.py).

Adding cases:
- a family is `(name, strategy of HttpCase)` in REST_FAMILIES;
  `HttpCase.expect` narrows the acceptable statuses for that family (e.g. {401} for bad
  signatures, {403} for wrong scopes);
- `prepare` (test_fuzz.py) is applied to every case before it is sent: that is where a valid
  signature goes, so that the existing families still reach the handlers behind the check.
"""

from __future__ import annotations

import json

from hypothesis import strategies as st

from billing.domain.catalog import CURRENCY_PATTERN

from tests.e2e.fuzz_signed_cases import hostile_webhooks, replayed_signatures
from tests.e2e.fuzz_operator_cases import (
    hostile_console_logins, hostile_operator_actions, hostile_operator_reads, hostile_operator_records,
)
from tests.e2e.fuzz_values import (
    ANY_JSON, BAD_BYTES, BROKEN_ESCAPES, INVALID_IDS, JSON, NASTY_STRINGS, NOBODY, NUMBERS, UNDECODABLE, UNICODE, VALID,
    WRONG_TYPES, HttpCase, pct, segment,
)

# ---------------------------------------------------------------- reads: paths and queries

READ_PATHS = ["balance", "usage", "events"]
ANY_ID_SEGMENT = st.one_of(NOBODY.map(segment), INVALID_IDS.map(segment), BAD_BYTES.map(segment))


@st.composite
def hostile_reads(draw) -> HttpCase:
    kind = draw(st.sampled_from(READ_PATHS))
    ident = draw(ANY_ID_SEGMENT)
    query: list[tuple[bytes, bytes]] = []
    if kind == "usage":
        query.append((b"period", draw(st.one_of(st.sampled_from([b"week", b"DAY", b"", b"month "]),
                                                BAD_BYTES.map(segment), NASTY_STRINGS.map(segment)))))
    if kind == "events":
        query.append((b"limit", draw(st.one_of(NUMBERS.map(lambda n: str(n).encode()), BAD_BYTES.map(segment)))))
        query.append((b"page_token", draw(st.one_of(BAD_BYTES.map(segment), NASTY_STRINGS.map(segment),
                                                    st.binary(max_size=80).map(lambda b: pct(b.hex().encode()))))))
    if draw(st.booleans()):
        query.append((draw(st.one_of(st.just(b"unknown"), UNICODE.map(segment))), b"1"))
    if draw(st.booleans()):
        query = draw(st.permutations(query))
    target = f"/v1/billing/{kind}/".encode() + ident
    if query:
        target += b"?" + b"&".join(k + b"=" + v for k, v in query)
    # Every read here is refused or names nobody: an id that parses is a fz- one.
    return HttpCase("reads", "GET", target)


def _not_a_currency_code(value: bytes) -> bool:
    """A poison must be one: random bytes can spell a code the catalog accepts (`hlO`: stripped and
    upper-cased, three letters, served in the default currency)."""
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return not CURRENCY_PATTERN.match(text.strip().upper())


@st.composite
def hostile_catalog(draw) -> HttpCase:
    currency = draw(st.one_of(
        BAD_BYTES.filter(_not_a_currency_code).map(segment),
        NASTY_STRINGS.filter(bool).map(segment),  # an empty currency is the default (USD): valid
        st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=4, max_size=8).map(segment),
        st.text(alphabet="0123456789!*.-", min_size=1, max_size=3).map(segment),
    ))
    # A repeated parameter: the transcoder keeps the last value, so the hostile one goes last.
    extra = draw(st.sampled_from([b"", b"&foo=bar", b"&%FF=1"]))
    if draw(st.integers(0, 9)) == 0:
        return HttpCase("catalog", "GET", b"/v1/billing/catalog?currency=EUR&currency=" + currency + extra)
    return HttpCase("catalog", "GET", b"/v1/billing/catalog?currency=" + currency + extra)


# ---------------------------------------------------------------- writes: JSON bodies with a poison

POISONS = {
    "user_id": st.one_of(INVALID_IDS, WRONG_TYPES.filter(lambda v: v not in ([], {}))),
    "operation": st.one_of(st.sampled_from(["BUILD", "delete", "", "build ", "*"]), NASTY_STRINGS, WRONG_TYPES),
    "seconds": st.one_of(st.sampled_from([0, -1, 86401, 2**31, 10**20, 1.5, "abc", "", True, [], {}]), st.integers(max_value=0)),
    "idempotency_key": st.one_of(st.sampled_from(["", " ", "a b", "k" * 129, "é", "\u0000"]), WRONG_TYPES),
    "source": st.one_of(st.sampled_from(["subscription", "GIFT", "", "daily_bonus", "package"]), WRONG_TYPES),
    "reason": st.one_of(st.sampled_from(["r" * 501, "a\nb", "\u0000", "\t"]), st.lists(st.integers(), min_size=1)),
    "plan_key": st.one_of(st.sampled_from(["platinum", "FREE", "x" * 1000, " "]), WRONG_TYPES),
    "package_key": st.one_of(st.sampled_from(["MINI", "", "x" * 1000, "mini\u0000"]), NASTY_STRINGS, WRONG_TYPES),
    "currency": st.one_of(st.sampled_from(["", "US", "usdollar", "\u00ff\u00fe\u00fd", "1234"]), WRONG_TYPES),
    "operations": st.one_of(
        st.just([]), st.integers(101, 120).map(lambda n: [{"operation": "build", "estimate_seconds": 1}] * n),
        st.lists(st.fixed_dictionaries({"operation": st.one_of(NASTY_STRINGS, WRONG_TYPES),
                                        "estimate_seconds": NUMBERS}), min_size=1, max_size=5),
        WRONG_TYPES.filter(lambda v: v != []),
    ),
}
POISONABLE = {
    "consume": ["user_id", "operation", "seconds", "idempotency_key"],
    "admin/grants": ["user_id", "source", "seconds", "idempotency_key", "reason"],
    "accounts": ["user_id"],  # the only creating call: always an invalid user_id (plan poisoned too, sometimes)
    "check-sufficient-batch": ["user_id", "operations"],
    "packages/purchase": ["user_id", "package_key", "currency", "idempotency_key"],
    "subscriptions/checkout": ["user_id", "plan_key", "currency"],
    "subscriptions/cancel": ["user_id", "idempotency_key"],
    "subscriptions/change": ["user_id", "plan_key", "idempotency_key"],
}


@st.composite
def poisoned_json_writes(draw) -> HttpCase:
    path = draw(st.sampled_from(sorted(VALID)))
    body = dict(VALID[path])
    body["user_id" if "user_id" in body else "userId"] = draw(NOBODY)
    poisoned = draw(st.lists(st.sampled_from(POISONABLE[path]), min_size=1, max_size=3, unique=True))
    if path == "accounts" and draw(st.booleans()):
        poisoned.append("plan_key")
    for name in poisoned:
        key = "userId" if name == "user_id" and "userId" in body else name
        body[key] = draw(POISONS[name])
    if draw(st.booleans()):  # noise: unknown fields, which the transcoder drops
        body.update(draw(st.dictionaries(UNICODE.filter(lambda k: k not in body and k not in VALID_KEYS), ANY_JSON, max_size=3)))
    text = json.dumps(body, ensure_ascii=draw(st.booleans()))
    if draw(st.integers(0, 9)) == 0:  # a duplicate of a poisoned key, poisoned again (the last one wins)
        name = poisoned[-1]
        key = "userId" if name == "user_id" and "userId" in body else name
        text = text[:-1] + f', "{key}": ' + json.dumps(draw(POISONS[name])) + "}"
    content_type = draw(st.sampled_from([b"application/json", b"application/json; charset=utf-8", b"APPLICATION/JSON"]))
    return HttpCase("json_writes", "POST", f"/v1/billing/{path}".encode(), ((b"Content-Type", content_type),),
                    text.encode("utf-8", "surrogatepass"))


VALID_KEYS = {"user_id", "userId", "user-id", "operation", "seconds", "idempotency_key", "idempotencyKey", "source",
              "reason", "plan_key", "planKey", "operations", "resume_token", "resumeToken", "package_key", "packageKey",
              "currency"}


def _write_path() -> st.SearchStrategy[bytes]:
    return st.sampled_from(sorted(VALID)).map(lambda p: f"/v1/billing/{p}".encode())


@st.composite
def malformed_json(draw) -> HttpCase:
    body = draw(st.one_of(
        st.binary(max_size=200),
        UNICODE.map(str.encode),
        st.sampled_from([b"{", b"}", b"[]", b"null", b"1", b'"x"', b"{'a':1}", b'{"user_id":}', b'{"a":1}}',
                         b"\xef\xbb\xbf{}", b"[" * 5000 + b"]" * 5000, b'{"a":' * 2000 + b"1" + b"}" * 2000,
                         b'{"user_id":"\xff\xfe"}', b'{"user_id":"\\ud800"}', b'{"seconds":1e999}',
                         b'{"seconds":-}', b'{"seconds":0x10}', b'{"seconds":NaN}', b'{"operations":[{,}]}']),
        ANY_JSON.filter(lambda v: not isinstance(v, dict)).map(lambda v: json.dumps(v).encode()),
    ))
    return HttpCase("malformed_json", "POST", draw(_write_path()), JSON, body)


@st.composite
def wrong_content_types(draw) -> HttpCase:
    content_type = draw(st.one_of(
        st.sampled_from([b"text/plain", b"text/plain;charset=UTF-8", b"application/x-www-form-urlencoded",
                         b"multipart/form-data; boundary=x", b"application/jsonp", b"text/json", b"application/xml",
                         b"application/json-seq", b"json", b"*/*", b""]),
        st.binary(max_size=30).filter(lambda b: b"\r" not in b and b"\n" not in b and b"\x00" not in b
                                      and not b.strip().lower().startswith(b"application/json")),
    ))
    headers = () if draw(st.integers(0, 5)) == 0 else ((b"Content-Type", content_type),)
    body = json.dumps(VALID[draw(st.sampled_from(sorted(VALID)))] | {"user_id": "fz-x"}).encode()
    # A header value with control or non-ASCII bytes is refused by Envoy's HTTP/1 codec first (400).
    printable = all(0x20 <= b < 0x7F for b in content_type)
    return HttpCase("content_types", "POST", draw(_write_path()), headers, body,
                    frozenset({415}) if printable else frozenset({400, 415}))


ALL_PATHS = [b"/v1/billing/catalog", b"/v1/billing/balance/fz-a", b"/v1/billing/usage/fz-a", b"/v1/billing/events/fz-a",
             b"/v1/billing/consume", b"/v1/billing/accounts", b"/v1/billing/admin/grants",
             b"/v1/billing/check-sufficient-batch", b"/v1/billing/packages/purchase", b"/v1/billing/subscriptions/checkout",
             b"/v1/billing/subscriptions/cancel", b"/v1/billing/subscriptions/change", b"/v1/billing/webhooks/stripe",
             b"/v1/billing/auto-topup/fz-a", b"/v1/billing/auto-topup/setup", b"/v1/billing/admin/session-keys",
             b"/v1/billing/balance/fz-a/stream", b"/v1/billing/holds", b"/v1/billing/holds/fz-h/extend",
             b"/v1/billing/holds/fz-h/commit", b"/v1/billing/holds/fz-h/release"]


@st.composite
def odd_methods_and_paths(draw) -> HttpCase:
    method = draw(st.sampled_from(["PUT", "PATCH", "DELETE", "TRACE", "PROPFIND", "FOO", "OPTIONS", "GET", "POST"]))
    path = draw(st.one_of(
        st.sampled_from(ALL_PATHS),
        st.sampled_from([b"/v1/billing/../../etc/passwd", b"/v1/billing/%2e%2e/%2e%2e/etc/passwd", b"//v1/billing/catalog",
                         b"/v1/billing/admin/../consume", b"/v1/billing/balance/", b"/v1/billing/balance/a/b",
                         b"/v1/billing/", b"/", b"/v2/billing/catalog", b"/v1/billing/admin/grants/x",
                         b"/v1/billing/balance/..%2F..%2Fadmin", b"/v1/billing/balance/%2e%2e",
                         b"/v1/billing/ADMIN/grants", b"/v1/billing/catalog;x=1", b"*", b"/v1/billing/balance/%",
                         b"/v1/billing/Catalog"]),
        st.lists(ANY_ID_SEGMENT, min_size=1, max_size=4).map(lambda parts: b"/v1/billing/" + b"/".join(parts)),
    ))
    if method == "GET" and path in (b"/v1/billing/catalog",):
        path = b"/v1/billing/catalog/x"
    if method in ("GET", "POST") and path in ALL_PATHS:
        method = "DELETE"  # a known path with its own method would be a valid request
    body = draw(st.sampled_from([b"", b"{}", b'{"user_id":"fz-x"}']))
    headers = JSON if body else ()
    return HttpCase("odd_methods", method, path, headers, body)


@st.composite
def huge_and_broken_headers(draw) -> HttpCase:
    kind = draw(st.sampled_from(["big_header", "big_url", "many_headers", "bad_header"]))
    path = draw(st.sampled_from([b"/v1/billing/catalog?currency=XXXX", b"/v1/billing/balance/fz-h"]))
    if kind == "big_header":
        size = draw(st.integers(9 * 1024, 70 * 1024))
        return HttpCase("headers", "GET", path, ((b"X-Big", b"a" * size),), expect=frozenset({431}))
    if kind == "big_url":
        size = draw(st.integers(9 * 1024, 70 * 1024))
        return HttpCase("headers", "GET", b"/v1/billing/balance/fz-h?period=" + b"a" * size, expect=frozenset({431}))
    if kind == "many_headers":
        count = draw(st.integers(200, 1200))
        return HttpCase("headers", "GET", path, tuple((f"X-H{i}".encode(), b"v" * 40) for i in range(count)))
    name = draw(st.sampled_from([b"X-Nul", b"Bad Name", b"X-Ctl", b"", b"X:Colon", b"Content-Length"]))
    value = draw(st.sampled_from([b"a\x00b", b"\x7f", b"v", b"-1", b"abc", b"1, 2"]))
    return HttpCase("headers", draw(st.sampled_from(["GET", "POST"])), path, ((name, value),))


@st.composite
def hostile_typed_headers(draw) -> HttpCase:
    """Headers the service reads: resume token, idempotency key, If-None-Match, request id."""
    name = draw(st.sampled_from([b"X-Resume-Token", b"Idempotency-Key", b"If-None-Match", b"X-Request-Id"]))
    value = draw(st.one_of(st.binary(max_size=300), UNICODE.map(lambda s: s.encode())))
    value = value.replace(b"\r", b"").replace(b"\n", b"").replace(b"\x00", b"").strip()
    body = dict(VALID["consume"]) | {"user_id": draw(NOBODY), "seconds": draw(POISONS["seconds"])}
    body.pop("idempotency_key")
    return HttpCase("typed_headers", "POST", b"/v1/billing/consume", JSON + ((name, value),), json.dumps(body).encode())


# ---------------------------------------------------------------- auto top-up, session keys, stream


TOPUP_FIELDS = {
    "enabled": st.one_of(st.booleans(), st.sampled_from(["yes", "", 2, None]), WRONG_TYPES),
    "threshold_seconds": st.one_of(st.sampled_from([-1, 0, 2**31, 10**20, 1.5, "abc", "", 2_678_401]),
                                   st.integers(-(10**6), 3_000_000), WRONG_TYPES),
    "package_key": st.one_of(st.sampled_from(["mini", "MINI", "", "x" * 1000, "mini\u0000"]), NASTY_STRINGS, WRONG_TYPES),
    "currency": st.one_of(st.sampled_from(["USD", "", "US", "usdollar", "1234"]), WRONG_TYPES),
    "user_id": st.one_of(NOBODY, INVALID_IDS, WRONG_TYPES),
}


@st.composite
def hostile_auto_topup(draw) -> HttpCase:
    """GET/PUT /auto-topup/{user_id} name nobody or an invalid id; POST /auto-topup/setup a nobody
    or invalid user_id in the body."""
    kind = draw(st.sampled_from(["get", "put", "setup"]))
    if kind == "setup":
        body: dict = {"user_id": draw(st.one_of(NOBODY, INVALID_IDS, WRONG_TYPES.filter(lambda v: v not in ([], {}))))}
        if draw(st.booleans()):
            body.update(draw(st.dictionaries(UNICODE.filter(lambda k: k not in VALID_KEYS), ANY_JSON, max_size=3)))
        return HttpCase("auto_topup", "POST", b"/v1/billing/auto-topup/setup", JSON, json.dumps(body).encode())
    target = b"/v1/billing/auto-topup/" + draw(ANY_ID_SEGMENT)
    if kind == "get":
        if draw(st.integers(0, 4)) == 0:
            target += b"?" + draw(st.sampled_from([b"user_id=fz-q", b"%FF=1", b"enabled=true", b"x=%00"]))
        return HttpCase("auto_topup", "GET", target)
    names = draw(st.lists(st.sampled_from(sorted(TOPUP_FIELDS)), max_size=5, unique=True))
    body = {name: draw(TOPUP_FIELDS[name]) for name in names}
    raw = draw(st.one_of(st.just(json.dumps(body).encode()), st.sampled_from([b"{", b"[]", b"null", b"\xff"])))
    return HttpCase("auto_topup", "PUT", target, JSON, raw)


HOLD_FIELDS = {
    "hold_id": st.one_of(st.sampled_from(["", " ", "a b", "h" * 129, "é", "\u0000"]), NOBODY, WRONG_TYPES),
    "operation": st.one_of(st.sampled_from(["build", "BUILD", "", "*"]), NASTY_STRINGS, WRONG_TYPES),
    "seconds": st.one_of(st.sampled_from([0, 1, 60, -1, 86401, 2**31, 10**20, 1.5, "abc", "", True]), st.integers()),
    "ttl_seconds": st.one_of(st.sampled_from([0, 4, 5, 86_400, 86_401, -1, 2**31, "abc", 1.5]), st.integers()),
    "used_seconds": st.one_of(st.sampled_from([0, 1, -1, 2**31, 10**20, "abc", 1.5, None]), st.integers()),
    "final": st.one_of(st.booleans(), st.sampled_from(["yes", "", 2, None]), WRONG_TYPES),
    "idempotency_key": st.one_of(st.sampled_from(["", "k", "k" * 129, "\u0000"]), WRONG_TYPES),
    "resume_token": st.one_of(st.sampled_from(["", "rt_x", "x" * 300, "\u0000"]), NASTY_STRINGS, WRONG_TYPES),
}
HOLD_VERB_FIELDS = {
    "extend": ["seconds", "ttl_seconds", "idempotency_key"],
    "commit": ["used_seconds", "final"],
    "release": [],
}


@st.composite
def hostile_holds(draw) -> HttpCase:
    """The hold paths name nobody (a fz- user) or an invalid user_id: 404 or 400 whatever the
    other fields say. Create's fields and each verb's are drawn from valid and hostile values;
    a hold_id segment may be undecodable, or given again in the body (400)."""
    kind = draw(st.sampled_from(["create", "extend", "commit", "release", "list"]))
    user = draw(st.one_of(NOBODY, NOBODY, INVALID_IDS, WRONG_TYPES.filter(lambda v: v not in ([], {}))))
    if kind == "list":
        query = b"user_id=" + (segment(user) if isinstance(user, str) else draw(BAD_BYTES.map(segment)))
        if draw(st.integers(0, 4)) == 0:
            query = draw(st.sampled_from([b"", b"user_id=fz-q&hold_id=1", b"%FF=1", b"user_id=%00", b"userId=fz-q"]))
        return HttpCase("holds", "GET", b"/v1/billing/holds" + (b"?" + query if query else b""))
    body: dict = {"user_id": user}
    if kind == "create":
        body |= {"hold_id": "fz-hold", "operation": "build", "seconds": 60}
        for name in draw(st.lists(st.sampled_from(["hold_id", "operation", "seconds", "ttl_seconds", "resume_token"]),
                                  max_size=3, unique=True)):
            body[name] = draw(HOLD_FIELDS[name])
        target = b"/v1/billing/holds"
    else:
        fields = HOLD_VERB_FIELDS[kind]
        for name in draw(st.lists(st.sampled_from(fields), max_size=3, unique=True)) if fields else []:
            body[name] = draw(HOLD_FIELDS[name])
        if draw(st.integers(0, 5)) == 0:
            body[draw(st.sampled_from(["hold_id", "holdId"]))] = draw(NOBODY)
        hold = draw(st.one_of(NOBODY.map(segment), UNDECODABLE, BAD_BYTES.map(segment)))
        target = b"/v1/billing/holds/" + hold + b"/" + kind.encode()
    raw = draw(st.one_of(st.just(json.dumps(body).encode()), st.sampled_from([b"{", b"[]", b"null", b"\xff"])))
    return HttpCase("holds", "POST", target, JSON, raw)


THRESHOLD_POISONS = st.one_of(
    st.lists(st.one_of(st.integers(), st.sampled_from([1.5, "60", None, True, [], {}])), max_size=8),
    st.sampled_from([None, 60, "60,120", {}, [60, 60], [0], [2**31], list(range(1, 8))]),
)


@st.composite
def hostile_alert_thresholds(draw) -> HttpCase:
    """GET / PUT /alert-thresholds/{user_id}: nobody's or an undecodable user, hostile lists."""
    user = draw(st.one_of(NOBODY.map(segment), UNDECODABLE, BAD_BYTES.map(segment)))
    target = b"/v1/billing/alert-thresholds/" + user
    if draw(st.booleans()):
        return HttpCase("alert_thresholds", "GET", target)
    body: dict = {"thresholds_seconds": draw(THRESHOLD_POISONS)}
    if draw(st.integers(0, 3)) == 0:
        body["use_default"] = draw(st.sampled_from([True, "yes", 1, None]))
    if draw(st.integers(0, 5)) == 0:
        body[draw(st.sampled_from(["user_id", "userId"]))] = draw(NOBODY)
    raw = draw(st.one_of(st.just(json.dumps(body).encode()), st.sampled_from([b"{", b"[]", b"null", b"\xff"])))
    return HttpCase("alert_thresholds", "PUT", target, JSON, raw)


SESSION_TTL_POISONS = st.one_of(
    st.sampled_from([-1, 1, 59, 86_401, 90_000, 2**31, 10**20, 1.5, "abc", "", "86401", True, [], {}]),
    st.integers(max_value=-1), st.integers(min_value=86_401, max_value=2**31 - 1),
)


@st.composite
def hostile_session_keys(draw) -> HttpCase:
    """POST /admin/session-keys (internal listener): an invalid user_id or ttl_seconds, or both."""
    body: dict = {"user_id": draw(NOBODY)}
    if draw(st.integers(0, 2)) == 0:
        body["ttl_seconds"] = 600
    poisoned = draw(st.sampled_from([["user_id"], ["ttl_seconds"], ["user_id", "ttl_seconds"]]))
    if "user_id" in poisoned:
        body["user_id"] = draw(st.one_of(INVALID_IDS, WRONG_TYPES.filter(lambda v: v not in ([], {}))))
    if "ttl_seconds" in poisoned:
        body["ttl_seconds"] = draw(SESSION_TTL_POISONS)
    if draw(st.booleans()):
        body = {("userId" if k == "user_id" else "ttlSeconds" if k == "ttl_seconds" else k): v for k, v in body.items()}
    return HttpCase("session_keys", "POST", b"/v1/billing/admin/session-keys", JSON, json.dumps(body).encode())


@st.composite
def hostile_streams(draw) -> HttpCase:
    """GET /balance/{user_id}/stream (SSE): nobody or an invalid id, hostile since_version. A
    valid one would never end: test_fuzz reads these with a short timeout."""
    target = b"/v1/billing/balance/" + draw(ANY_ID_SEGMENT) + b"/stream"
    query = draw(st.one_of(
        st.none(),
        NUMBERS.map(lambda n: str(n).encode()),
        BAD_BYTES.map(segment), NASTY_STRINGS.map(segment),
    ))
    if query is not None:
        target += b"?since_version=" + query
    headers = draw(st.sampled_from([(), ((b"Accept", b"text/event-stream"),), ((b"Last-Event-ID", b"\xff-1"),)]))
    return HttpCase("stream", "GET", target, headers)


WEBHOOK_ENDPOINTS = b"/v1/billing/admin/webhook-endpoints"
WEBHOOK_DELIVERIES = b"/v1/billing/admin/webhook-deliveries"
# Refused whatever BILLING_WEBHOOK_ALLOW_PRIVATE says (the test stack turns it on).
BAD_WEBHOOK_URLS = st.one_of(
    st.sampled_from(["", "ftp://fz.example/x", "file:///etc/passwd", "https://u:p@fz.example/", "https://t@fz.example/",
                     "http:///x", "https://fz.example:99999/", "https://fz.example/a b", "https://fz.example/\n",
                     "javascript:alert(1)", "gopher://127.0.0.1:25/", "https://fz.example/" + "a" * 2100]),
    WRONG_TYPES.filter(lambda v: v not in ([], {}, False, 0, 0.0)),
)
# No parameter of ListWebhookEndpoints: every one is unknown (400).
BAD_QUERIES = st.sampled_from([b"x=1", b"%FF=1", b"limit=1", b"endpointId=fz-x&user_id=fz-y", b"status=%00"])


@st.composite
def hostile_webhook_admin(draw, kinds: tuple[str, ...]) -> HttpCase:
    """The webhook endpoints and delivery log (internal listener): each case carries a poison: a URL
    refused whatever the private-address setting, an unknown event type, an endpoint or event that
    does not exist (404), an undecodable or over-long id, a bad filter, no `since`, or an unknown
    query parameter on the lists."""
    kind = draw(st.sampled_from(kinds))
    if kind == "create":
        body: dict = {"url": draw(BAD_WEBHOOK_URLS)}
        if draw(st.booleans()):
            body = {"url": "https://fz.example/hook", "event_types": ["balance.low", draw(NASTY_STRINGS)]}
            if draw(st.booleans()):
                body["description"] = "d" * 300
        raw = draw(st.one_of(st.just(json.dumps(body).encode()), st.sampled_from([b"{", b"[]", b"null", b"\xff"])))
        return HttpCase("webhook_admin", "POST", WEBHOOK_ENDPOINTS, JSON, raw)
    if kind == "list":
        return HttpCase("webhook_admin", "GET", WEBHOOK_ENDPOINTS + b"?" + draw(BAD_QUERIES))
    ident = draw(st.one_of(NOBODY.map(segment), UNDECODABLE, st.just(b"e" * 65)))
    if kind in ("disable", "enable", "rotate-secret"):
        verb = kind.encode()
        body = {} if draw(st.booleans()) else {draw(st.sampled_from(["endpoint_id", "endpointId"])): draw(NOBODY)}
        return HttpCase("webhook_admin", "POST", WEBHOOK_ENDPOINTS + b"/" + ident + b"/" + verb, JSON,
                        json.dumps(body).encode())
    if kind == "delete":
        return HttpCase("webhook_admin", "DELETE", WEBHOOK_ENDPOINTS + b"/" + ident, JSON)
    if kind == "deliveries":
        query = draw(st.one_of(
            st.sampled_from([b"x=1", b"%FF=1", b"status=%00", b"eventId=fz-x"]),
            st.sampled_from([b"status=lost", b"status=PENDING", b"limit=-1", b"limit=abc", b"page_token=zz",
                             b"page_token=" + b"a" * 600, b"user_id=a%20b", b"endpoint_id=" + b"e" * 65]),
        ))
        return HttpCase("webhook_admin", "GET", WEBHOOK_DELIVERIES + b"?" + query)
    if kind == "replay_event":
        return HttpCase("webhook_admin", "POST", WEBHOOK_DELIVERIES + b"/" + ident + b"/replay", JSON, b"{}")
    body = {} if draw(st.booleans()) else {"since": draw(st.one_of(
        # not {}: an empty Timestamp is the epoch, a valid `since`
        st.sampled_from(["", "yesterday", "2026-13-01T00:00:00Z", "2026-01-01"]), WRONG_TYPES.filter(lambda v: v != {})))}
    if draw(st.booleans()):
        body["endpoint_id"] = draw(NOBODY)
    return HttpCase("webhook_admin", "POST", WEBHOOK_DELIVERIES + b"/replay", JSON, json.dumps(body).encode())


# ---------------------------------------------------------------- undecodable paths and queries, path fields given twice

PATH_BOUND_ROUTES = [  # (method, path with {user_id}, its query parameters): every path binding in the protos
    ("GET", "/v1/billing/balance/{user_id}", []),
    ("GET", "/v1/billing/balance/{user_id}/stream", [b"since_version"]),
    ("GET", "/v1/billing/usage/{user_id}", [b"period"]),
    ("GET", "/v1/billing/events/{user_id}", [b"limit", b"page_token"]),
    ("GET", "/v1/billing/auto-topup/{user_id}", []),
    ("PUT", "/v1/billing/auto-topup/{user_id}", []),
]


@st.composite
def undecodable_targets(draw) -> HttpCase:
    """Signed by the admin key, so that the refusal is the decoding's: a path segment or a query
    name or value that does not percent-decode to UTF-8 (or holds a NUL), or a path field given
    again by the query or the body (the transcoder would let it override the path). Always 400."""
    method, template, parameters = draw(st.sampled_from(PATH_BOUND_ROUTES))
    how = draw(st.sampled_from(["path", "query_value", "query_name", "query_repeats_path", "body_repeats_path"]))
    if how == "body_repeats_path" and method != "PUT":
        how = "query_repeats_path"
    nobody = draw(NOBODY).encode()
    ident = draw(UNDECODABLE) if how == "path" else nobody
    target = template.encode().replace(b"{user_id}", ident)
    query: list[bytes] = []
    if how == "query_value":
        name = draw(st.sampled_from(parameters or [b"user_id"]))
        query.append(name + b"=" + draw(st.one_of(UNDECODABLE, st.tuples(BROKEN_ESCAPES, UNDECODABLE).map(b"".join))))
    elif how == "query_name":
        query.append(draw(UNDECODABLE) + b"=1")
    elif how == "query_repeats_path":
        spelling = draw(st.sampled_from([b"user_id", b"userId"]))
        query.append(spelling + b"=" + draw(st.sampled_from([nobody, draw(NOBODY).encode(), b""])))
    if query and parameters and draw(st.booleans()):
        query.insert(draw(st.integers(0, 1)), parameters[0] + b"=1")
    if query:
        target += b"?" + b"&".join(query)
    if method == "GET":
        return HttpCase("undecodable", method, target, expect=frozenset({400}), signing="admin")
    body: dict = {"enabled": False}
    if how in ("path", "body_repeats_path") and draw(st.booleans()) or how == "body_repeats_path":
        body[draw(st.sampled_from(["user_id", "userId"]))] = draw(NOBODY)
    return HttpCase("undecodable", method, target, JSON, json.dumps(body).encode(), frozenset({400}), signing="admin")


REST_FAMILIES: list[tuple[str, st.SearchStrategy[HttpCase]]] = [
    ("reads", hostile_reads()),
    ("catalog", hostile_catalog()),
    ("json_writes", poisoned_json_writes()),
    ("malformed_json", malformed_json()),
    ("content_types", wrong_content_types()),
    ("odd_methods", odd_methods_and_paths()),
    ("headers", huge_and_broken_headers()),
    ("typed_headers", hostile_typed_headers()),
    ("auto_topup", hostile_auto_topup()),
    ("holds", hostile_holds()),
    ("alert_thresholds", hostile_alert_thresholds()),
    ("session_keys", hostile_session_keys()),
    # three families, so that each of the nine routes gets its share of cases
    ("webhook_endpoints", hostile_webhook_admin(("create", "list"))),
    ("webhook_endpoint_changes", hostile_webhook_admin(("disable", "enable", "rotate-secret", "delete"))),
    ("webhook_deliveries", hostile_webhook_admin(("deliveries", "replay_event", "replay_failed"))),
    ("stream", hostile_streams()),
    # the operator console's API (fuzz_operator_cases.py): four families for its nineteen routes
    ("operator_reads", hostile_operator_reads()),
    ("operator_actions", hostile_operator_actions()),
    ("operator_records", hostile_operator_records()),
    ("console_logins", hostile_console_logins()),
    ("webhooks", hostile_webhooks()),
    ("replay", replayed_signatures()),
    ("undecodable", undecodable_targets()),
]
REST_CASES = st.one_of(*(strategy for _, strategy in REST_FAMILIES))

