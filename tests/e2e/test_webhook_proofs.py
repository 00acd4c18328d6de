"""Issue 22's proofs of outbound events, on real wallet changes (docs/decisions.md, "Outbound events:
the proofs (issue 22)").

1. Faults: a receiver that verifies every signature with `standardwebhooks` and answers 500 to ~30 %
   of requests and drops ~10 % of connections; two replicas on this test's own PostgreSQL; ~10 s of
   accounts created, granted, consumed and held across both, with `kill -9` of one replica and a
   PostgreSQL restart mid-load. Then the outbox drains (the service clock moved through the retry
   schedule, below) and: every outbox event arrived with a verified signature, each account's in
   `seq` order (none before its predecessor was answered 2xx), duplicates only as the same bytes of
   the same id, nothing that is not in the outbox, and the outbox agrees with the ledger (the credit
   rows) and with what each account's plan of changes implies (its thresholds crossed).
2. Two replicas, 64 concurrent consumes (REST through Envoy to one, gRPC to the other) crossing a
   threshold together: one `balance.low` in the outbox, one delivered.

Draining through the retry schedule (5 s, 5 min, 30 min...): the replicas run with
BILLING_CLOCK_OFFSET_FILE, which they read live; once nothing is due, the test moves their clock to
the next pending `next_attempt_at` (a retry, or the lease of a delivery the killed replica held).
That runs the sender's own schedule and leases, as time would, rather than replaying by hand (the
admin replay only takes finished deliveries). The receiver fails an event at most 3 times, so
nothing reaches the end of the schedule (a delivery failed for good lets its successors go first)."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import grpc
import psycopg
import pytest

from billing.adapters.db.invariants import find_violations_in_database
from billing.domain.delivery_outcomes import canonical_body
from billing.settings import libpq_url
from billing.v1 import (
    accounts_pb2, billing_service_pb2, billing_service_pb2_grpc, consumption_pb2, holds_pb2, webhooks_pb2,
)
from tests.e2e.helpers import assert_few_outage_lines_and_no_traceback, call, create_account, new_user
from tests.e2e.test_rest_consume import consume
from testkit.postgres import postgres_ctl
from testkit.processes import VENV_BIN, health_serving, start_billing_server, stop_process
from testkit.signing import signed_channel
from testkit.waiting import wait_until
from testkit.webhook_receiver import DROP, WebhookReceiver

pytestmark = pytest.mark.slow

NEW_ACCOUNT_SECONDS = 2700  # a free account: the welcome seconds and today's daily bonus
GIFT_SECONDS = 300
RECOVERY_GRANT_SECONDS = 1500
CALL_TIMEOUT_SECONDS = 10.0
OP_WITHIN_SECONDS = 40.0  # a change retried through the faults succeeds within this

# --- 1: the fault proof ------------------------------------------------------------------------

ACCOUNTS = 30
LOAD_SECONDS = 10.0
KILL_REPLICA_AT = 3.0
RESTART_DATABASE_AT = 6.0
DATABASE_DOWN_SECONDS = 1.0
FAIL_RATE, DROP_RATE = 0.30, 0.10
FAULTY_ATTEMPTS = 3  # from the 4th request for an event on, the receiver answers 200
DRAINED_WITHIN_SECONDS = 60.0

# Each account's plan (by n % 5): where its available balance ends, and what that announces, in order.
PLANS = {
    0: (1000, ["credit.granted", "credit.granted"]),
    1: (400, ["credit.granted", "credit.granted", "balance.low:600"]),
    2: (60, ["credit.granted", "credit.granted", "balance.low:600", "balance.low:120"]),
    3: (0, ["credit.granted", "credit.granted", "balance.low:600", "balance.low:120", "balance.depleted"]),
    # down to 60, granted back above every threshold, down to 300 again
    4: (300, ["credit.granted", "credit.granted", "balance.low:600", "balance.low:120", "credit.granted",
              "balance.recovered", "balance.low:600"]),
}
RECOVERY_LOW = 60
CREDIT_TYPES = ("subscription_credit", "package_credit", "rollover_created", "adjustment")


@dataclass
class AccountLoad:
    user: str
    kind: int
    changes: int = 0
    retried: Counter = field(default_factory=Counter)  # the fault codes its calls met


def _a_fault(error: grpc.RpcError) -> bool:
    """What the faults may answer: UNAVAILABLE (a replica gone, the database down), a deadline, or the
    client's own INTERNAL on a connection the killed replica reset."""
    if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return True
    return error.code() == grpc.StatusCode.INTERNAL and error.details() == "Internal error from Core"


def _through_faults(stubs, first: int, load: AccountLoad, method: str, request):
    """One change, sent again (the same idempotency key or hold id) to the other replica, then back,
    until one answers: a change applies once whatever the faults did to its answers."""
    deadline = time.monotonic() + OP_WITHIN_SECONDS
    replica = first
    while True:
        try:
            reply = getattr(stubs[replica], method)(request, timeout=CALL_TIMEOUT_SECONDS)
            load.changes += 1
            return reply
        except grpc.RpcError as error:
            assert _a_fault(error), (load.user, method, error.code(), error.details())
            load.retried[error.code().name] += 1
        assert time.monotonic() < deadline, f"{load.user}: {method} not answered through the faults"
        replica = 1 - replica
        time.sleep(0.05)  # a retry's pause (the replicas are polled, not waited for)


def _steps(rng: random.Random, seconds: int, count: int) -> list[int]:
    cuts = sorted(rng.sample(range(1, seconds), count - 1))
    return [b - a for a, b in zip([0, *cuts], [*cuts, seconds])]


def _run_account(n: int, stubs, load: AccountLoad, until: float) -> None:
    rng = random.Random(n)
    user, turn = load.user, [n % 2]

    def send(method: str, request):
        turn[0] = 1 - turn[0]
        return _through_faults(stubs, turn[0], load, method, request)

    def spend(seconds: int, steps: int) -> None:
        for i, step in enumerate(_steps(rng, seconds, steps)):
            pause = rng.uniform(0.2, 2 * max(0.0, until - time.monotonic()) / (steps - i + 3))
            time.sleep(pause)  # spreads each account's changes over the load (pacing, not waiting)
            if i % 2 == 0:
                send("Consume", consumption_pb2.ConsumeRequest(
                    user_id=user, operation="build", seconds=step, idempotency_key=f"c-{user}-{load.changes}-{i}"))
            else:  # held, then settled with all of it used: a hold crosses thresholds as a consume does
                hold_id = f"h-{user}-{load.changes}-{i}"
                send("CreateHold", holds_pb2.CreateHoldRequest(user_id=user, hold_id=hold_id, operation="build",
                                                                 seconds=step))
                send("CommitHold", holds_pb2.CommitHoldRequest(user_id=user, hold_id=hold_id, used_seconds=step,
                                                                 final=True))

    def grant(seconds: int, key: str) -> None:
        send("CreateGrant", accounts_pb2.CreateGrantRequest(user_id=user, source="gift", seconds=seconds,
                                                            reason="proof", idempotency_key=key))

    send("CreateAccount", accounts_pb2.CreateAccountRequest(user_id=user))
    grant(GIFT_SECONDS, f"gift-{user}")
    start = NEW_ACCOUNT_SECONDS + GIFT_SECONDS
    end, _ = PLANS[load.kind]
    if load.kind == 4:
        spend(start - RECOVERY_LOW, 5)
        grant(RECOVERY_GRANT_SECONDS, f"recovery-{user}")
        spend(RECOVERY_LOW + RECOVERY_GRANT_SECONDS - end, 3)
    else:
        spend(start - end, 8)


def _query(database_url: str, sql: str, *args):
    with psycopg.connect(libpq_url(database_url)) as connection:
        return connection.execute(sql, args).fetchall()


def _move_clock_when_idle(database_url: str, offset_file: Path, offset: list[int]) -> None:
    """When no pending delivery is due on the service's clock, moves it (all replicas read the
    file) to the earliest pending one: a retry, or a lease the killed replica left."""
    (due, earliest), = _query(
        database_url,
        "SELECT count(*) FILTER (WHERE next_attempt_at <= now() + make_interval(secs => %s)),"
        " min(next_attempt_at) FILTER (WHERE next_attempt_at < 'infinity')"
        " FROM webhook_deliveries WHERE status = 'pending'", offset[0])
    if due or earliest is None:
        return
    ahead = int((earliest - datetime.now(timezone.utc)).total_seconds()) + 1
    if ahead > offset[0]:
        offset[0] = ahead
        staged = offset_file.with_suffix(".new")
        staged.write_text(str(ahead))
        staged.replace(offset_file)


def test_every_event_arrives_in_order_through_kill_9_and_a_database_restart(own_postgres, tmp_path):
    data_dir, database_url = own_postgres
    rng, rng_lock = random.Random(22), threading.Lock()

    def answer(event_id: str, attempt: int):
        if attempt > FAULTY_ATTEMPTS:
            return 200
        with rng_lock:
            draw = rng.random()
        return 500 if draw < FAIL_RATE else DROP if draw < FAIL_RATE + DROP_RATE else 200

    receiver = WebhookReceiver(answer)
    offset_file, offset = tmp_path / "clock-offset", [0]
    settings = {"BILLING_LOG_LEVEL": "WARNING", "BILLING_LOG_FORMAT": "json", "BILLING_WEBHOOK_ALLOW_PRIVATE": "1",
                "BILLING_CLOCK_OFFSET_FILE": str(offset_file), "BILLING_CLOCK_OFFSET_SECONDS": "0"}
    replica_a = start_billing_server(database_url, tmp_path / "replica-a", migrate=False, extra_env=settings)
    replica_b = start_billing_server(database_url, tmp_path / "replica-b", migrate=False, extra_env=settings)
    restarted = None
    channels = [signed_channel(replica_a.grpc_target), signed_channel(replica_b.grpc_target)]
    try:
        stubs = [billing_service_pb2_grpc.BillingServiceStub(channel) for channel in channels]
        created = stubs[1].CreateWebhookEndpoint(webhooks_pb2.CreateWebhookEndpointRequest(
            url=receiver.url, description="the fault proof"), timeout=CALL_TIMEOUT_SECONDS)
        assert list(created.endpoint.event_types) == [], "subscribed to every type"
        receiver.secret = created.secret

        loads = [AccountLoad(f"proof-{uuid.uuid4().hex[:8]}-{n}", n % len(PLANS)) for n in range(ACCOUNTS)]
        began = time.monotonic()
        until = began + LOAD_SECONDS
        with ThreadPoolExecutor(max_workers=ACCOUNTS) as pool:
            running = [pool.submit(_run_account, n, stubs, load, until) for n, load in enumerate(loads)]
            wait_until(lambda: time.monotonic() >= began + KILL_REPLICA_AT, "the kill's moment", timeout=30)
            replica_a.process.send_signal(signal.SIGKILL)
            wait_until(lambda: time.monotonic() >= began + RESTART_DATABASE_AT, "the restart's moment", timeout=30)
            postgres_ctl("stop", data_dir)
            down = time.monotonic()
            wait_until(lambda: time.monotonic() >= down + DATABASE_DOWN_SECONDS, "the database's downtime")
            postgres_ctl("start", data_dir)
            for future in running:
                future.result()
        wall = time.monotonic() - began
        assert replica_a.process.wait(timeout=10) == -signal.SIGKILL
        # The killed replica comes back (its leases run out on the moved clock; either sends them).
        restarted = start_billing_server(database_url, tmp_path / "replica-a2", migrate=False, extra_env=settings)
        wait_until(lambda: health_serving(replica_b.grpc_target), "replica B SERVING after the faults")
        # Read before the clock moves (a moved clock past midnight would show tomorrow's daily bonus).
        balances = {load.user: stubs[1].GetBalance(billing_service_pb2.GetBalanceRequest(user_id=load.user),
                                                   timeout=CALL_TIMEOUT_SECONDS).totals for load in loads}

        def drained() -> bool:
            (pending, events), = _query(database_url,
                                        "SELECT (SELECT count(*) FROM webhook_deliveries WHERE status <> 'delivered'),"
                                        " (SELECT count(*) FROM outbound_events WHERE NOT dispatched)")
            if pending == 0 and events == 0:
                return True
            _move_clock_when_idle(database_url, offset_file, offset)
            return False

        drain_began = time.monotonic()
        wait_until(drained, "every outbox event delivered", timeout=DRAINED_WITHIN_SECONDS, interval=0.2)
        drain = time.monotonic() - drain_began
    finally:
        for channel in channels:
            channel.close()
        receiver.close()
        for server in (restarted, replica_b, replica_a):
            if server is not None:
                stop_process(server.process)

    outbox = _query(database_url, "SELECT account_id, seq, event_id, type, payload FROM outbound_events"
                                  " ORDER BY account_id, seq")
    deliveries = _query(database_url, "SELECT event_id, status FROM webhook_deliveries")
    attempts = Counter(n for n, in _query(database_url, "SELECT attempts FROM webhook_deliveries"))
    requests = receiver.requests()
    by_id = {event_id: (account, seq, kind, payload) for account, seq, event_id, kind, payload in outbox}
    answered = Counter(r.answered for r in requests)
    retries = sum((load.retried for load in loads), Counter())
    print(f"\n{len(loads)} accounts, {sum(load.changes for load in loads)} changes in {wall:.1f} s (calls retried "
          f"through the faults: {dict(retries)}); {len(outbox)} events, {len(requests)} requests {dict(answered)}; "
          f"drained in {drain:.1f} s, the clock moved {offset[0]} s ahead; deliveries by attempts recorded "
          f"{dict(sorted(attempts.items()))}")
    assert retries, "the faults broke calls"
    assert answered[500] and answered[DROP], "the receiver failed and dropped deliveries"

    # Every event arrived; nothing else did; one delivery each, delivered.
    assert all(r.verified for r in requests), "every request verifies with standardwebhooks, webhook-id = id"
    assert {r.id for r in requests} <= set(by_id), "nothing arrived that is not in the outbox"
    assert receiver.delivered() == set(by_id), "every outbox event was answered 2xx"
    assert sorted(event_id for event_id, _ in deliveries) == sorted(by_id)
    assert {status for _, status in deliveries} == {"delivered"}
    # Duplicates only as the same bytes: every request carried its outbox row's one body.
    for r in requests:
        assert r.body == canonical_body(by_id[r.id][3]), r.id

    # In order per account: no event was sent before its predecessor had been answered 2xx.
    answered_up_to: dict[str, int] = defaultdict(int)
    first_delivered: dict[str, list[int]] = defaultdict(list)
    for r in requests:  # in arrival order
        account, seq, _, _ = by_id[r.id]
        assert seq <= answered_up_to[account] + 1, (account, seq, answered_up_to[account])
        if r.answered == 200 and seq == answered_up_to[account] + 1:
            answered_up_to[account] = seq
            first_delivered[account].append(seq)
    for account, seqs in first_delivered.items():
        assert seqs == list(range(1, len(seqs) + 1)), (account, seqs)

    # The outbox agrees with each account's plan and the ledger.
    events: dict[str, list[tuple[str, dict]]] = defaultdict(list)
    for account, _, _, kind, payload in outbox:
        events[account].append((kind, payload))
    ledger_credits = defaultdict(list)
    for account, kind, seconds, reason, occurred_at, metadata in _query(
            database_url, "SELECT account_id, type, seconds, reason, occurred_at, metadata FROM ledger_events"
                          " WHERE type = ANY(%s) AND seconds > 0 ORDER BY account_id, event_seq", list(CREDIT_TYPES)):
        ledger_credits[account].append((kind, seconds, reason, occurred_at, metadata))
    assert set(events) == {load.user for load in loads}
    for load in loads:
        end, expected = PLANS[load.kind]
        assert balances[load.user].total_seconds == end and balances[load.user].held_seconds == 0, load.user
        said = [f"{kind}:{payload['data']['threshold_seconds']}" if kind == "balance.low" else kind
                for kind, payload in events[load.user]]
        assert said == expected, (load.user, said)
        lows = Counter(s for s in said if s.startswith("balance.low"))
        if load.kind != 4:  # never recovered: each threshold above the final balance crossed once
            assert lows == Counter(f"balance.low:{t}" for t in (600, 120) if end < t), (load.user, said)
        granted = [row for kind, payload in events[load.user] if kind == "credit.granted"
                   for row in payload["data"]["events"]]
        ledger = [{"type": kind, "seconds": seconds, "reason": reason,
                   "timestamp": occurred_at.astimezone(timezone.utc).isoformat().replace("+00:00", "Z"),
                   "metadata": metadata} for kind, seconds, reason, occurred_at, metadata in ledger_credits[load.user]]
        assert granted == ledger, (load.user, granted, ledger)

    assert_few_outage_lines_and_no_traceback(replica_b.stderr_log)
    assert asyncio.run(find_violations_in_database(database_url)) == []
    verify = subprocess.run([str(VENV_BIN / "billing"), "verify"], env=os.environ | {"DATABASE_URL": database_url},
                            capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0, verify.stdout + verify.stderr


# --- 2: 64 concurrent consumes crossing a threshold together -----------------------------------

CONSUMES = 64
CONSUME_SECONDS = 10
BEFORE_SECONDS = 1000  # 64 x 10 s from 1000 ends at 360: below 600, not 120
ROUNDS = 3


def test_64_concurrent_consumes_on_two_replicas_announce_a_threshold_once(e2e, http, second_replica):
    receiver = WebhookReceiver(lambda event_id, attempt: 200)
    status, _, created = call(http, "POST", "/v1/billing/admin/webhook-endpoints", {"url": receiver.url})
    assert status == 200, created
    receiver.secret, endpoint_id = created["secret"], created["endpoint"]["endpoint_id"]
    try:
        with signed_channel(second_replica.grpc_target) as channel, \
                ThreadPoolExecutor(max_workers=CONSUMES) as pool:
            stub = billing_service_pb2_grpc.BillingServiceStub(channel)
            for _ in range(ROUNDS):
                user = new_user()
                create_account(http, user)
                status, _, taken = consume(http, user, NEW_ACCOUNT_SECONDS - BEFORE_SECONDS)
                assert status == 200 and taken["totals"]["total_seconds"] == BEFORE_SECONDS, taken
                together = threading.Barrier(CONSUMES)

                def one(i: int) -> int:
                    together.wait(timeout=CALL_TIMEOUT_SECONDS)
                    if i % 2:
                        return stub.Consume(consumption_pb2.ConsumeRequest(
                            user_id=user, operation="build", seconds=CONSUME_SECONDS,
                            idempotency_key=uuid.uuid4().hex), timeout=CALL_TIMEOUT_SECONDS).totals.total_seconds
                    status, _, reply = consume(http, user, CONSUME_SECONDS)
                    assert status == 200, reply
                    return reply["totals"]["total_seconds"]

                after = list(pool.map(one, range(CONSUMES)))
                final = BEFORE_SECONDS - CONSUMES * CONSUME_SECONDS
                assert min(after) == final and len(set(after)) == CONSUMES, "each consume took its 10 s"

                outbox = _query(e2e.database_url, "SELECT event_id, type, payload FROM outbound_events"
                                                  " WHERE account_id = %s ORDER BY seq", user)
                lows = [(event_id, payload["data"]["threshold_seconds"]) for event_id, kind, payload in outbox
                        if kind == "balance.low"]
                assert [t for _, t in lows] == [600], outbox
                wait_until(lambda: receiver.delivered() >= {event_id for event_id, _, _ in outbox},
                           "the account's events delivered")
                arrived = {r.id for r in receiver.requests()
                           if r.payload["user_id"] == user and r.payload["type"] == "balance.low"}
                assert arrived == {lows[0][0]}, arrived
        assert all(r.verified for r in receiver.requests())
    finally:
        status, _, _ = call(http, "DELETE", f"/v1/billing/admin/webhook-endpoints/{endpoint_id}",
                            headers={"Content-Length": "0"})
        receiver.close()
        assert status == 200
