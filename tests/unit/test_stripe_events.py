"""The Stripe adapter's webhook verification (the real SDK) and its reading of Stripe's JSON."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest

from billing.adapters.stripe_payments import StripePayments
from billing.service.provider_events import PackagePaid
from billing.service.ports import InvalidWebhook, MalformedWebhook
from tests.support import stripe_events as se

OLD, NEW = "whsec_old_secret", "whsec_new_secret"


@pytest.fixture
def stripe_payments():
    return StripePayments("sk_test_x", (OLD, NEW), api_base="http://127.0.0.1:9")


def _sign(payload: bytes, secret: str, t: int) -> str:
    return f"t={t},v1=" + hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()


def test_either_secret_verifies_during_a_rotation(stripe_payments):
    evt = se.payment_intent_succeeded("pi_1", "u1", "mini", 60, 499, int(time.time()))
    for secret in (OLD, NEW):
        payload, header = se.signed(evt, secret)
        parsed = stripe_payments.verify_webhook(payload, header)
        assert parsed.event_id == evt["id"] and isinstance(parsed.event, PackagePaid)


@pytest.mark.parametrize("case", ["other_secret", "stale", "no_header", "not_utf8", "tampered"])
def test_what_does_not_verify_is_refused(stripe_payments, case):
    now = int(time.time())
    payload, header = se.signed(se.payment_intent_succeeded("pi_2", "u1", "mini", 60, 499, now), OLD)
    if case == "other_secret":
        header = _sign(payload, "whsec_someone_else", now)
    elif case == "stale":
        header = _sign(payload, OLD, now - 301)
    elif case == "no_header":
        header = ""
    elif case == "not_utf8":
        payload = b"\xff\xfe" + payload
        header = "t=1,v1=00"
    elif case == "tampered":
        payload = payload.replace(b'"mini"', b'"mega"')
    with pytest.raises(InvalidWebhook):
        stripe_payments.verify_webhook(payload, header)


def test_a_verified_payload_that_is_not_an_event_is_malformed_not_a_bad_signature(stripe_payments):
    payload = b"not json at all"
    with pytest.raises(MalformedWebhook):
        stripe_payments.verify_webhook(payload, _sign(payload, NEW, int(time.time())))


@pytest.mark.parametrize("payload", [b'"null"', b"null", b"1", b"[]", b"true", b'"\\ud800"'])
def test_a_verified_payload_that_is_json_but_not_an_object_is_malformed(stripe_payments, payload):
    """The SDK fails on these with AttributeError (not ValueError): found by the e2e fuzz as a 500."""
    with pytest.raises(MalformedWebhook):
        stripe_payments.verify_webhook(payload, _sign(payload, NEW, int(time.time())))
