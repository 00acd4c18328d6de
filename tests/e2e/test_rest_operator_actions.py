"""Operator actions end to end (issue 23): REST through Envoy's internal listener with an admin key,
the audit trail, a refund at the Stripe stand-in whose webhook claws the seconds back, the Stripe
inbox, console sign-in from `billing console-login`, and refusals (403 for user and service keys on
every operator call, 400 naming "reason")."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid

import psycopg
import pytest
import stripe
from google.api import annotations_pb2

from billing.domain.audit import Action
from billing.domain.auth import Scope
from billing.service.audit import action_request
from billing.settings import libpq_url
from billing.v1 import operator_service_pb2
from tests.e2e.conftest import E2E_STRIPE_KEY, E2E_WEBHOOK_SECRET
from tests.e2e.helpers import assert_error, call, create_account, new_user
from tests.support import stripe_events
from testkit.processes import VENV_BIN
from testkit.signing import SigningKey, create_key
from testkit.waiting import wait_until

ADMIN = "/v1/billing/admin"
BILLING = VENV_BIN / "billing"


def _key() -> str:
    return uuid.uuid4().hex


def _act(http, path: str, payload: dict, key=True):
    return call(http, "POST", f"{ADMIN}{path}", payload, key=key)


def _events(http, user: str) -> list[dict]:
    status, _, body = call(http, "GET", f"/v1/billing/events/{user}?limit=200")
    assert status == 200, body
    return body["events"]


def _total(http, user: str) -> int:
    status, _, body = call(http, "GET", f"/v1/billing/balance/{user}")
    assert status == 200, body
    return body["total_seconds"] if "total_seconds" in body else body["totals"]["total_seconds"]


def test_grant_and_claw_back_with_the_trail(http):
    user = new_user()
    create_account(http, user)
    grant = {"source": "gift", "seconds": 600, "reason": "goodwill", "idempotency_key": _key(),
             "expires_at": "2099-01-01T00:00:00Z"}
    status, _, granted = _act(http, f"/accounts/{user}/grants", grant)
    assert status == 200, granted
    audit = granted["audit"]
    assert (audit["action"], audit["user_id"], audit["reason"]) == ("grant", user, "goodwill")
    assert audit["after"]["total_seconds"] == audit["before"]["total_seconds"] + 600
    assert audit["operator_key_id"] and audit["detail"]["seconds"] == 600
    status, _, again = _act(http, f"/accounts/{user}/grants", grant)
    assert status == 200 and again["replayed"] is True and again["audit"] == audit
    status, _, reused = _act(http, f"/accounts/{user}/grants", grant | {"seconds": 601})
    assert_error(status, reused, 409, "IDEMPOTENCY_KEY_REUSED")

    status, _, too_much = _act(http, f"/accounts/{user}/claw-backs",
                               {"seconds": 1_000_000, "reason": "abuse", "idempotency_key": _key()})
    assert_error(status, too_much, 409, "BALANCE_TOO_LOW", field="seconds")
    status, _, clawed = _act(http, f"/accounts/{user}/claw-backs",
                             {"seconds": 300, "reason": "abuse", "idempotency_key": _key()})
    assert status == 200, clawed
    assert clawed["audit"]["before"]["total_seconds"] - clawed["audit"]["after"]["total_seconds"] == 300

    status, _, auto = _act(http, f"/accounts/{user}/auto-topup/disable", {"reason": "disputes", "idempotency_key": _key()})
    assert status == 200 and auto["audit"]["detail"]["was_enabled"] is False, auto

    status, _, trail = call(http, "GET", f"{ADMIN}/audit?user_id={user}&page_size=2")
    assert status == 200, trail
    assert [e["action"] for e in trail["entries"]] == ["disable_auto_topup", "claw_back"] and trail["next_page_token"]
    status, _, rest = call(http, "GET", f"{ADMIN}/audit?user_id={user}&page_token={trail['next_page_token']}")
    assert [e["action"] for e in rest["entries"]] == ["grant"] and not rest.get("next_page_token")
    status, _, grants = call(http, "GET", f"{ADMIN}/audit?user_id={user}&action=grant")
    assert [e["audit_id"] for e in grants["entries"]] == [audit["audit_id"]]


@pytest.mark.parametrize("path", ["/grants", "/claw-backs", "/auto-topup/disable", "/subscription/cancel"])
@pytest.mark.parametrize("reason", [None, "", "   "])
def test_no_reason_is_400_naming_reason(http, path, reason):
    user = new_user()
    create_account(http, user)
    payload = {"source": "gift", "seconds": 60, "idempotency_key": _key()} | ({"reason": reason} if reason is not None else {})
    status, _, body = _act(http, f"/accounts/{user}{path}", payload)
    assert_error(status, body, 400, "INVALID_ARGUMENT", field="reason")


def _operator_calls() -> list[tuple[str, str, str]]:
    """(method name, HTTP verb, a path) of every OperatorService REST binding but the sign-in."""
    service = operator_service_pb2.DESCRIPTOR.services_by_name["OperatorService"]
    calls = []
    for method in service.methods:
        rule = method.GetOptions().Extensions[annotations_pb2.http]
        verb = rule.WhichOneof("pattern")
        path = re.sub(r"\{[^}]+\}", "x", getattr(rule, verb))
        if method.name != "RedeemConsoleLogin":
            calls.append((method.name, verb.upper(), path))
    return calls


@pytest.mark.parametrize("scope", [Scope.USER, Scope.SERVICE])
def test_user_and_service_keys_get_403_from_every_operator_call(http, e2e, session_keys, scope):
    key = session_keys.user if scope is Scope.USER else session_keys.service
    calls = _operator_calls()
    assert len(calls) == 18
    for name, verb, path in calls:
        payload = {"reason": "r", "idempotency_key": _key()} if verb == "POST" else None
        status, _, body = call(http, verb, path, payload, key=key)
        assert status == 403, (name, status, body)
        assert body["error"] == "PERMISSION_DENIED"


def test_revoke_key_refuses_it_at_once_on_this_replica(http, e2e):
    victim = create_key(e2e.database_url, Scope.SERVICE)
    probe = new_user()
    create_account(http, probe)
    # Servers copy the stored keys every 5 s: the new key signs once this replica has copied it.
    wait_until(lambda: call(http, "GET", f"/v1/billing/balance/{probe}", key=victim)[0] == 200, "the new key works",
               timeout=15)
    status, _, revoked = _act(http, f"/keys/{victim.key_id}/revoke", {"reason": "leaked", "idempotency_key": _key()})
    assert status == 200, revoked
    assert revoked["audit"]["user_id"] == "" and revoked["audit"]["detail"]["scope"] == "service"
    assert "before" not in revoked["audit"]
    status, _, body = call(http, "GET", f"/v1/billing/balance/{probe}", key=victim)
    assert status == 401, body
    status, _, again = _act(http, f"/keys/{victim.key_id}/revoke", {"reason": "leaked", "idempotency_key": _key()})
    assert_error(status, again, 409, "ACTION_NOT_POSSIBLE", field="key_id")
    status, _, own = _act(http, f"/keys/{e2e.admin_key.key_id}/revoke", {"reason": "oops", "idempotency_key": _key()})
    assert_error(status, own, 409, "ACTION_NOT_POSSIBLE", field="key_id")


def test_refund_at_the_standin_claws_back_through_its_webhook(http, stripe_standin):
    user, payment_id, client = _bought_and_credited(http, stripe_standin)
    credited = _total(http, user)

    refund = {"amount_cents": 0, "reason": "customer asked", "idempotency_key": _key()}
    status, _, refunded = _act(http, f"/accounts/{user}/payments/{payment_id}/refund", refund)
    assert status == 200, refunded
    audit = refunded["audit"]
    assert audit["action"] == "refund_payment" and audit["detail"]["refund_id"].startswith("re_")
    assert audit["before"] == audit["after"]
    wait_until(lambda: [e for e in _events(http, user) if e["metadata"].get("refund_of") == payment_id],
               "the refund's claw-back", timeout=20)
    assert _total(http, user) < credited
    status, _, replay = _act(http, f"/accounts/{user}/payments/{payment_id}/refund", refund)
    assert status == 200 and replay["replayed"] is True and replay["audit"] == audit
    status, _, more = _act(http, f"/accounts/{user}/payments/{payment_id}/refund",
                           refund | {"idempotency_key": _key()})
    assert_error(status, more, 409, "ACTION_NOT_POSSIBLE", field="payment_id")


def _bought_and_credited(http, stripe_standin) -> tuple[str, str, stripe.StripeClient]:
    user = new_user()
    create_account(http, user)
    status, _, bought = call(http, "POST", "/v1/billing/packages/purchase",
                             {"user_id": user, "package_key": "mini", "currency": "USD", "idempotency_key": "buy"})
    assert status == 200, bought
    stripe_standin.pay(bought["session_id"])
    wait_until(lambda: [e for e in _events(http, user) if e["type"] == "package_credit"], "the package's credit")
    client = stripe.StripeClient(E2E_STRIPE_KEY, base_addresses={"api": stripe_standin.api_base})
    return user, client.v1.checkout.sessions.retrieve(bought["session_id"])["payment_intent"], client


def test_a_refund_whose_audit_commit_failed_is_completed_by_a_late_retry_after_its_webhook(http, e2e, stripe_standin):
    """The server refunded at Stripe, then died before the commit of its audit entry (the intent it
    recorded first stays 'requested'); Stripe's webhook applied the refund; the operator retries days
    later (Stripe forgot the idempotency key): the retry finds the refund by the intent id in its
    metadata, creates none, and writes the entry, where it once answered "refunded in full" (409)."""
    user, payment_id, client = _bought_and_credited(http, stripe_standin)
    idempotency_key = _key()
    request = action_request(Action.REFUND_PAYMENT, e2e.admin_key.key_id, "customer asked", idempotency_key,
                             user_id=user, payment_id=payment_id, amount_cents=0)
    intent_id = f"rfi_e2e{uuid.uuid4().hex[:16]}"
    with psycopg.connect(libpq_url(e2e.database_url)) as connection:
        connection.execute(
            "INSERT INTO refund_intents (account_id, intent_id, idempotency_key, request_fingerprint, operator_key_id, "
            "payment_id, amount_cents, reason, payment_amount_cents, refunded_cents_before, state, created_at, "
            "claimed_until) VALUES (%s, %s, %s, %s, %s, %s, 0, %s, 499, 0, 'requested', now() - interval '3 days', "
            "now() - interval '3 days')",
            (user, intent_id, idempotency_key, request.fingerprint, request.operator_key_id, payment_id,
             request.reason))
    first = client.v1.refunds.create({"payment_intent": payment_id, "metadata": {"refund_intent_id": intent_id}})
    wait_until(lambda: [e for e in _events(http, user) if e["metadata"].get("refund_of") == payment_id],
               "the refund's claw-back", timeout=20)

    path = f"/accounts/{user}/payments/{payment_id}/refund"
    status, _, refunded = _act(http, path, {"amount_cents": 0, "reason": "customer asked",
                                            "idempotency_key": idempotency_key})
    assert status == 200, refunded
    assert refunded["audit"]["detail"]["refund_id"] == first["id"] and not refunded.get("replayed")
    assert refunded["audit"]["detail"]["refund_intent_id"] == intent_id
    assert [r["id"] for r in client.v1.refunds.list({"payment_intent": payment_id})["data"]] == [first["id"]]
    status, _, again = _act(http, path, {"amount_cents": 0, "reason": "customer asked",
                                         "idempotency_key": idempotency_key})
    assert status == 200 and again["replayed"] is True and again["audit"] == refunded["audit"]


def test_kept_stripe_deliveries_are_listed_and_reprocessed(http):
    evt = stripe_events.payment_intent_succeeded(
        f"pi_{uuid.uuid4().hex[:12]}", new_user(), "mini", 60, stripe_events.USD_PRICES["mini"],
        int(time.time()), customer=f"cus_unknown_{uuid.uuid4().hex[:8]}")
    payload, signature = stripe_events.signed(evt, E2E_WEBHOOK_SECRET)
    status, _, _ = http("POST", "/v1/billing/webhooks/stripe", body=payload, key=None,
                        headers={"Content-Type": "application/json", "Stripe-Signature": signature})
    assert status == 200
    status, _, kept = call(http, "GET", f"{ADMIN}/stripe-events?outcome=kept&page_size=200")
    assert status == 200, kept
    [record] = [e for e in kept["events"] if e["event_id"] == evt["id"]]
    assert record["outcome"] == "ignored" and record["payload"]["id"] == evt["id"]
    status, _, body = _act(http, f"/stripe-events/{evt['id']}/reprocess", {"idempotency_key": _key()})
    assert_error(status, body, 400, "INVALID_ARGUMENT", field="reason")
    status, _, again = _act(http, f"/stripe-events/{evt['id']}/reprocess", {"reason": "look", "idempotency_key": _key()})
    assert status == 200, again
    assert again["event"]["outcome"] == "ignored" and again["audit"]["action"] == "reprocess_stripe_event"
    assert again["event"]["detail"].startswith("reprocessed: ")
    status, _, missing = _act(http, "/stripe-events/evt_nope/reprocess", {"reason": "look", "idempotency_key": _key()})
    assert_error(status, missing, 404, "STRIPE_EVENT_NOT_FOUND", field="event_id")


def test_console_login_redeems_once_for_an_admin_key(http, e2e):
    environment = {name: value for name, value in os.environ.items() if name != "BILLING_KEY_SECRET"}
    minted = subprocess.run([str(BILLING), "console-login", "--json"], cwd="/tmp", capture_output=True, text=True,
                            timeout=60, env=environment | {"DATABASE_URL": e2e.database_url})
    assert minted.returncode == 0, minted.stderr
    printed = json.loads(minted.stdout)
    assert printed["url"].startswith("http://127.0.0.1:8081/console/#login=")
    code = printed["url"].split("#login=", 1)[1]
    redeem = f"{ADMIN}/console-logins/redeem"
    status, _, credentials = call(http, "POST", redeem, {"code": code}, key=None)
    assert status == 200, credentials
    assert credentials["key_id"] == printed["key_id"] and credentials["secret"].startswith("bsk_")
    console_key = SigningKey(credentials["key_id"], credentials["secret"])
    status, _, trail = call(http, "GET", f"{ADMIN}/audit?page_size=1", key=console_key)
    assert status == 200, trail
    user = new_user()
    create_account(http, user)
    status, _, granted = _act(http, f"/accounts/{user}/grants",
                              {"source": "gift", "seconds": 60, "reason": "console", "idempotency_key": _key()},
                              key=console_key)
    assert status == 200 and granted["audit"]["operator_key_id"] == console_key.key_id, granted
    for attempt in (code, "A" * 43):
        status, _, refused = call(http, "POST", redeem, {"code": attempt}, key=None)
        assert_error(status, refused, 401, "UNAUTHENTICATED")


@pytest.fixture
def subscribed(http, stripe_standin):
    user = new_user()
    create_account(http, user)
    status, _, checkout = call(http, "POST", "/v1/billing/subscriptions/checkout",
                               {"user_id": user, "plan_key": "starter", "currency": "USD"})
    assert status == 200, checkout
    stripe_standin.pay(checkout["session_id"])
    return user


def test_operator_changes_then_cancels_a_subscription(http, subscribed):
    user = subscribed
    status, _, changed = _act(http, f"/accounts/{user}/subscription/change",
                              {"plan_key": "pro", "reason": "upgrade asked by phone", "idempotency_key": _key()})
    assert status == 200, changed
    assert changed["audit"]["action"] == "change_subscription" and changed["audit"]["detail"]["requested_plan_key"] == "pro"
    status, _, canceled = _act(http, f"/accounts/{user}/subscription/cancel",  # the longest key allowed
                               {"reason": "asked to leave", "idempotency_key": "c" * 96 + _key()})
    assert status == 200, canceled
    assert canceled["audit"]["detail"]["cancel_at_period_end"] is True
    status, _, trail = call(http, "GET", f"{ADMIN}/audit?user_id={user}")
    assert [e["action"] for e in trail["entries"]] == ["cancel_subscription", "change_subscription"]
