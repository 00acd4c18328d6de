"""Fuzz cases about signatures (test_fuzz.py): Stripe webhooks whose Stripe-Signature must not
verify, and correctly signed requests sent changed (replays). See fuzz_cases.py for the rest."""

from __future__ import annotations

import json

from hypothesis import strategies as st

from tests.e2e.fuzz_values import ANY_JSON, JSON, NOBODY, VALID, HttpCase, pct
from tests.support import stripe_events

# The webhook secret the e2e server is started with (tests/e2e/conftest.py E2E_WEBHOOK_SECRET).
WEBHOOK_SECRET = "whsec_e2e_" + "5" * 24

# ---------------------------------------------------------------- Stripe webhooks


def _stripe_signature(secret: str, timestamp: int, payload: bytes) -> str:
    import hashlib
    import hmac

    return hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()


@st.composite
def hostile_webhooks(draw) -> HttpCase:
    """POST /webhooks/stripe: garbage or event-shaped bodies, every one with a Stripe-Signature
    that must not verify (missing, malformed, another secret, stale, over other bytes): 400, nothing
    written (webhook_events is in the ledger snapshot)."""
    import time

    evt = stripe_events.payment_intent_succeeded(
        "pi_fz" + draw(st.text("abcdef0123456789", min_size=4, max_size=12)), draw(NOBODY), "mini", 60, 499,
        int(time.time()))
    event_json = json.dumps(evt, separators=(",", ":")).encode()
    body = draw(st.one_of(
        st.just(event_json),
        st.binary(max_size=300),
        ANY_JSON.map(lambda v: json.dumps(v).encode()),
        st.sampled_from([b"", b"{", b"null", b"[]", b"{}", b'{"type":"payment_intent.succeeded"}', b"\xff\xfe"]),
    ))
    now = int(time.time())
    # Nothing signed right with the secret at an instant within the tolerance: such a delivery is
    # Stripe's, and one that cannot be read is recorded for an operator (service/webhooks.py).
    how = draw(st.sampled_from(["missing", "empty", "garbage", "wrong_secret", "stale", "far_future", "other_body",
                                "no_t", "no_v1", "v0_only", "bad_t", "upper_hex", "many_wrong", "huge",
                                "non_ascii", "future_signed"]))
    good = _stripe_signature(WEBHOOK_SECRET, now, body)
    signature: bytes | None = {
        "missing": None,
        "empty": b"",
        "garbage": draw(st.binary(max_size=80)).replace(b"\r", b"").replace(b"\n", b"").replace(b"\x00", b""),
        "wrong_secret": f"t={now},v1={_stripe_signature('whsec_not_ours', now, body)}".encode(),
        "stale": f"t={now - draw(st.integers(301, 10**6))},v1=".encode(),
        "far_future": f"t={now + draw(st.integers(301, 10**6))},v1={good}".encode(),  # signed at now
        "other_body": f"t={now},v1={_stripe_signature(WEBHOOK_SECRET, now, body + b' ')}".encode(),
        "no_t": f"v1={good}".encode(),
        "no_v1": f"t={now}".encode(),
        "v0_only": f"t={now},v0={good}".encode(),
        # (not " <now>" or "+<now>": int() reads them as now, and the signature is then right)
        "bad_t": f"t={draw(st.sampled_from(['', 'abc', '-1', '1e9', str(2**64), str(now) + 'x', hex(now)]))},v1={good}".encode(),
        "upper_hex": f"t={now},v1={good.upper()}".encode(),
        "many_wrong": (f"t={now}," + ",".join(f"v1={'%064x' % i}" for i in range(draw(st.integers(2, 150))))).encode(),
        "huge": f"t={now},v1=".encode() + b"a" * draw(st.integers(1000, 7000)),
        # Issue 19: any non-ASCII character in v1 made the SDK's compare_digest raise TypeError,
        # which was taken for "verified": credit without the secret.
        "non_ascii": f"t={now},v1=".encode() + draw(st.sampled_from(
            ["\u00e9", "\u00e9" * 64, good[:-1] + "\u0660", "\U0001f600"])).encode("utf-8"),
        "future_signed": f"t={now + draw(st.integers(400, 10**5))},v1=".encode(),  # signed right, ahead of time
    }[how]
    if how in ("stale", "future_signed"):  # signed right, with the secret, at that time
        stamp = int(signature.split(b",")[0][2:])
        signature += _stripe_signature(WEBHOOK_SECRET, stamp, body).encode()
    content_type = draw(st.sampled_from([b"application/json", b"application/json; charset=utf-8", b"text/plain",
                                         b"application/octet-stream"]))
    headers = ((b"Content-Type", content_type),)
    if signature is not None:
        headers += ((b"Stripe-Signature", signature),)
    # 400 from the service (stripe-signature), or from Envoy's codec for a header it cannot carry;
    # a content type other than JSON is refused by Envoy first (415).
    expect = frozenset({400}) if content_type.startswith(b"application/json") else frozenset({400, 415})
    if how in ("huge", "many_wrong"):
        expect |= {431}  # over Envoy's header limit, which is fine too
    return HttpCase("webhooks", "POST", b"/v1/billing/webhooks/stripe", headers, body, expect, signing="none")


# ---------------------------------------------------------------- replayed signatures


@st.composite
def replayed_signatures(draw) -> HttpCase:
    """A request signed correctly (by the session's admin key, when it is sent) and sent changed:
    another body, path or query, a timestamp outside the 300 s window (or not the one signed), or
    another key's id. Always 401. What is signed names nobody, so even a wrong 2xx could not write."""
    nobody, other = draw(NOBODY), draw(NOBODY)
    consume = dict(VALID["consume"]) | {"user_id": nobody, "idempotency_key": "fz-" + other}
    reads = [
        ("GET", f"/v1/billing/balance/{nobody}".encode(), b""),
        ("GET", f"/v1/billing/events/{nobody}?limit=5".encode(), b""),
        ("GET", f"/v1/billing/usage/{nobody}?period=week".encode(), b""),
        ("GET", f"/v1/billing/auto-topup/{nobody}".encode(), b""),
        ("GET", f"/v1/billing/balance/{nobody}/stream".encode(), b""),
    ]
    writes = [
        ("POST", b"/v1/billing/consume", json.dumps(consume).encode()),
        ("POST", b"/v1/billing/admin/grants", json.dumps(VALID["admin/grants"] | {"user_id": nobody}).encode()),
        ("PUT", f"/v1/billing/auto-topup/{nobody}".encode(), b'{"enabled":false}'),
        ("POST", b"/v1/billing/auto-topup/setup", json.dumps({"user_id": nobody}).encode()),
    ]
    # Each change keeps the request one the transcoder accepts (a known query parameter, a body
    # only where there is one): the refusal must come from the signature, not from the routing.
    how = draw(st.sampled_from(["body", "path", "query", "stale", "future", "timestamp", "key_id"]))
    pool = {"body": writes, "query": reads, "path": [base for base in reads + writes if nobody.encode() in base[1]]}
    method, target, body = draw(st.sampled_from(pool.get(how, reads + writes)))
    sent_target, sent_body, signing = target, body, "replay:fresh"
    if how == "body":
        sent_body = draw(st.sampled_from([body + b" ", b" " + body, body.replace(b"60", b"61"),
                                          body.replace(nobody.encode(), other.encode()), b"{}"]))
        if sent_body == body:
            sent_body = body + b"\n"
    elif how == "path":
        sent_target = draw(st.sampled_from([target.replace(nobody.encode(), other.encode()),
                                            target.replace(nobody.encode(), pct(nobody.encode()).replace(b"f", b"%66"))]))
        if sent_target == target:  # nobody == other
            sent_target = target.replace(nobody.encode(), nobody.encode() + b"0")
    elif how == "query":
        path, _, query = target.partition(b"?")
        changed = {b"limit=5": [b"limit=6", b"limit=5&page_token=x", b""], b"period=week": [b"period=month", b""]}
        sent_target = path + b"?" + draw(st.sampled_from(changed.get(query, [b"since_version=1", b"user_id=" + other.encode()]
                                                                     if path.endswith(b"/stream") else [b"user_id=" + other.encode()])))
        sent_target = sent_target.rstrip(b"?")
    # At least 10 s past the 300 s window: the timestamp is whole seconds and the request spends
    # time in flight, so 301 s ahead could arrive 299.9 s ahead (and be valid) on a busy machine.
    elif how == "stale":
        signing = f"replay:offset:{-draw(st.integers(310, 10**7))}"
    elif how == "future":
        signing = f"replay:offset:{draw(st.integers(310, 10**7))}"
    elif how == "timestamp":
        signing = f"replay:timestamp:{draw(st.sampled_from([-1, 1, 100, -299]))}"
    else:
        signing = "replay:key_id:" + draw(st.sampled_from(["service", "user", "unknown", "empty", "long"]))
    sent_method = method
    headers = JSON if sent_body else ()
    return HttpCase("replay", sent_method, sent_target, headers, sent_body, frozenset({401}),
                    signing=signing, signed_over=(method, target, body))
