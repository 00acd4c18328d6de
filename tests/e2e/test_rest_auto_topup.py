"""Auto top-up end to end: a card saved through the stand-in's setup checkout, 64 concurrent
consumes on two replicas crossing the threshold together, exactly one PaymentIntent, its
webhook credits the package, and the balance shows the state."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from billing.v1 import billing_service_pb2_grpc, consumption_pb2
from tests.e2e.helpers import assert_error, call, create_account, new_user
from testkit.signing import signed_channel

CONSUMES = 64


def _consume(target: str, user: str, n: int) -> str:
    with signed_channel(target) as channel:
        stub = billing_service_pb2_grpc.BillingServiceStub(channel)
        try:
            stub.Consume(consumption_pb2.ConsumeRequest(user_id=user, operation="build", seconds=20,
                                                        idempotency_key=f"k{n}"), timeout=30)
            return "taken"
        except grpc.RpcError as error:
            return error.code().name


def _topup_payments(standin, user: str) -> set[str]:
    return {
        e["data"]["object"]["id"] for e in standin.events()
        if e["type"].startswith("payment_intent.") and e["data"]["object"].get("metadata", {}).get("user_id") == user
        and e["data"]["object"]["metadata"].get("topup_seq")
    }


@pytest.mark.slow
def test_concurrent_consumes_on_two_replicas_buy_one_top_up(http, e2e, stripe_standin, second_replica):
    user = new_user()
    create_account(http, user)
    setting = {"enabled": True, "threshold_seconds": 2000, "package_key": "mini", "currency": "USD"}
    status, _, refused = call(http, "PUT", f"/v1/billing/auto-topup/{user}", setting)
    assert_error(status, refused, 409, "PAYMENT_METHOD_REQUIRED")
    status, _, setup = call(http, "POST", "/v1/billing/auto-topup/setup", {"user_id": user})
    assert status == 200 and setup["checkout_url"], setup
    stripe_standin.pay(setup["session_id"])  # the customer saves a card
    status, _, saved = call(http, "PUT", f"/v1/billing/auto-topup/{user}", setting)
    assert status == 200 and saved["enabled"] is True and saved["pending"] is False, saved

    targets = [e2e.grpc_target, second_replica.grpc_target]
    with ThreadPoolExecutor(max_workers=32) as pool:
        outcomes = list(pool.map(lambda n: _consume(targets[n % 2], user, n), range(CONSUMES)))
    assert outcomes.count("taken") == CONSUMES  # 2700 s, 64 x 20 s taken, crossing 2000 s on the way

    deadline = time.monotonic() + 15
    while True:
        _, _, balance = call(http, "GET", f"/v1/billing/balance/{user}")
        credited = [b for b in balance["buckets"]["paid"] if b["source"] == "package"]
        if credited or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(credited) == 1 and 0 < credited[0]["seconds"] <= 3600, balance  # late consumes may use it
    assert balance["auto_topup"]["pending"] is False and balance["auto_topup"]["enabled"] is True
    assert len(_topup_payments(stripe_standin, user)) == 1  # one PaymentIntent for 64 consumes on 2 replicas
    _, _, history = call(http, "GET", f"/v1/billing/events/{user}?limit=200")
    types = [e["type"] for e in history["events"]]
    assert types.count("auto_topup_triggered") == 1 and types.count("package_credit") == 1
    assert [e["seconds"] for e in history["events"] if e["type"] == "package_credit"] == [3600]
    status, _, shown = call(http, "GET", f"/v1/billing/auto-topup/{user}")
    assert status == 200 and shown["failures"] == 0 and shown["last_failure"] == ""
