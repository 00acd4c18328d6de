"""The outbound events' sender (issue 22): its decisions (the Svix schedule with jitter, 410, five days
failing), ordering per account and endpoint without blocking other accounts, leases, and the
Standard Webhooks signatures, verified with the `standardwebhooks` package itself."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import datetime, timedelta, timezone

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from billing.adapters.clock import FixedClock
from billing.adapters.webhook_http import signature_headers
from billing.domain.delivery_outcomes import (
    DELIVERED, FAILED, PENDING, RESPONSE_EXCERPT_BYTES, RETRY_SCHEDULE, AttemptResult, canonical_body, decide,
    excerpt_of, retry_delay,
)
from billing.service.webhook_sender_ports import OutgoingWebhook
from billing.service.webhook_sender import LEASE, SenderOptions, WebhookSender
from tests.support.fake_outbound import NO_SHARES, MemoryEndpoint, MemoryOutboundQueue

NOW = datetime(2026, 3, 14, 9, 30, tzinfo=timezone.utc)
SECRET = "whsec_" + base64.b64encode(b"k" * 24).decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"o" * 24).decode()
OK = AttemptResult(200, 12, "ok")
ERROR = AttemptResult(500, 12, "boom")


# --- decisions ---------------------------------------------------------------------------------


def test_the_schedule_is_svix_with_ten_percent_jitter_then_failed():
    assert [d.total_seconds() for d in RETRY_SCHEDULE] == [5, 300, 1800, 7200, 18000, 36000, 36000]
    for failed, base in enumerate(RETRY_SCHEDULE, start=1):
        assert retry_delay(failed, 0.0) == base * 0.9
        assert retry_delay(failed, 0.5) == base
        assert base * 0.9 <= retry_delay(failed, 0.999999) <= base * 1.1  # type: ignore[operator]
    assert retry_delay(len(RETRY_SCHEDULE) + 1, 0.5) is None
    outcomes = [decide(ERROR, attempts, None, NOW, 0.5) for attempts in range(8)]
    assert [o.status for o in outcomes] == [PENDING] * 7 + [FAILED]
    assert outcomes[0].next_attempt_at == NOW + timedelta(seconds=5)
    assert outcomes[6].next_attempt_at == NOW + timedelta(hours=10)


@pytest.mark.parametrize("result", [
    AttemptResult(302, 5, error=None), AttemptResult(301, 5), AttemptResult(404, 5), AttemptResult(503, 5),
    AttemptResult(None, 15000, error="timeout after 15 s"), AttemptResult(None, 1, error="connection failed"),
    AttemptResult(None, 0, error="refused target: 127.0.0.1 is a loopback address"),
])
def test_anything_but_2xx_and_410_is_retried(result):
    outcome = decide(result, 0, None, NOW, 0.5)
    assert (outcome.status, outcome.disable_reason, outcome.endpoint_failing) == (PENDING, None, True)


def test_2xx_delivers_and_clears_failing():
    for code in (200, 201, 204, 299):
        outcome = decide(AttemptResult(code, 5), 3, NOW - timedelta(days=9), NOW, 0.5)
        assert (outcome.status, outcome.disable_reason, outcome.endpoint_failing) == (DELIVERED, None, False)


def test_410_fails_the_delivery_and_disables_the_endpoint():
    outcome = decide(AttemptResult(410, 5), 0, None, NOW, 0.5)
    assert outcome.status == FAILED and outcome.next_attempt_at is None
    assert outcome.disable_reason and "410" in outcome.disable_reason


def test_an_endpoint_failing_for_five_days_is_disabled():
    almost = decide(ERROR, 1, NOW - timedelta(days=5) + timedelta(seconds=1), NOW, 0.5)
    assert almost.disable_reason is None
    five_days = decide(ERROR, 1, NOW - timedelta(days=5), NOW, 0.5)
    assert five_days.disable_reason and "5 days" in five_days.disable_reason
    assert five_days.status == PENDING  # the delivery keeps its schedule; it waits for the endpoint's enabling


def test_the_body_is_one_serialization_and_the_excerpt_is_bounded():
    assert canonical_body({"b": 1, "a": {"y": "é", "x": [1, 2]}}) == canonical_body({"a": {"x": [1, 2], "y": "é"}, "b": 1})
    assert canonical_body({"a": "é"}) == '{"a":"é"}'.encode()
    assert len(excerpt_of(b"x" * 5000).encode()) == RESPONSE_EXCERPT_BYTES
    assert len(excerpt_of("é".encode() * 1000).encode()) <= RESPONSE_EXCERPT_BYTES  # a cut character left out
    assert excerpt_of(b"a\x00b") == "ab"


# --- signatures --------------------------------------------------------------------------------


def test_signatures_verify_with_standardwebhooks():
    body = canonical_body({"id": "evt_1", "type": "credit.granted", "data": {"seconds": 60}})
    webhook = OutgoingWebhook("https://example.com/hook", "evt_1", body, (SECRET,))
    now = int(datetime.now(timezone.utc).timestamp())
    headers = signature_headers(webhook, now)
    assert headers["webhook-id"] == "evt_1" and headers["webhook-timestamp"] == str(now)
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(SECRET).verify(body, headers) == json.loads(body)
    with pytest.raises(WebhookVerificationError):
        Webhook(OLD_SECRET).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body + b" ", headers)


def test_during_a_rotation_both_secrets_sign():
    body = canonical_body({"id": "evt_2"})
    webhook = OutgoingWebhook("https://example.com/hook", "evt_2", body, (SECRET, OLD_SECRET))
    headers = signature_headers(webhook, int(datetime.now(timezone.utc).timestamp()))
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(SECRET).verify(body, headers)  # a receiver on either secret accepts it
    Webhook(OLD_SECRET).verify(body, headers)


# --- the sender on the in-memory queue ---------------------------------------------------------


class ScriptedTransport:
    """Answers from a script per event id (default 200); keeps what was sent, in order."""

    def __init__(self, answers: dict[str, list[AttemptResult]] | None = None, hold: asyncio.Event | None = None):
        self.answers = answers or {}
        self.sent: list[OutgoingWebhook] = []
        self.hold = hold

    async def send(self, webhook: OutgoingWebhook) -> AttemptResult:
        self.sent.append(webhook)
        if self.hold is not None:
            await self.hold.wait()
        script = self.answers.get(webhook.event_id)
        return script.pop(0) if script else OK

    def ids(self) -> list[str]:
        return [w.event_id for w in self.sent]


def _queue(*accounts_events: tuple[str, int]) -> MemoryOutboundQueue:
    queue = MemoryOutboundQueue()
    queue.endpoints["ep"] = MemoryEndpoint("ep", "https://example.com/hook", SECRET, NOW - timedelta(days=1))
    for account, count in accounts_events:
        for seq in range(1, count + 1):
            queue.add_event(account, seq, "credit.granted", NOW)
    return queue


async def _run(sender: WebhookSender, until, seconds: float = 3.0) -> None:
    sender.start()
    try:
        async with asyncio.timeout(seconds):
            while not until():
                await asyncio.sleep(0.005)
    finally:
        await sender.close()


FAST = SenderOptions(poll_seconds=0.01, concurrency=8)


async def test_a_line_waits_for_its_head_while_other_accounts_flow_on():
    queue = _queue(("alice", 3), ("bob", 3))
    transport = ScriptedTransport({"evt_alice_1": [ERROR]})
    clock = FixedClock(NOW)
    sender = WebhookSender(queue, transport, clock, FAST, draw=lambda: 0.5)
    await _run(sender, lambda: transport.ids().count("evt_bob_3") == 1 and len(transport.sent) >= 4)
    assert [i for i in transport.ids() if "bob" in i] == ["evt_bob_1", "evt_bob_2", "evt_bob_3"]
    assert [i for i in transport.ids() if "alice" in i] == ["evt_alice_1"]  # alice's 2 waits for her 1
    alice_1 = queue.deliveries[("alice", "ep", 1)]
    assert (alice_1.status, alice_1.attempts, alice_1.next_attempt_at) == (PENDING, 1, NOW + timedelta(seconds=5))
    clock.set(NOW + timedelta(seconds=5))  # the retry is due: then alice's line flows, in order
    await _run(sender, lambda: "evt_alice_3" in transport.ids())
    assert [i for i in transport.ids() if "alice" in i] == ["evt_alice_1", "evt_alice_1", "evt_alice_2", "evt_alice_3"]
    assert all(d.status == DELIVERED for d in queue.deliveries.values())


async def test_a_delivery_failed_for_good_lets_the_next_go():
    queue = _queue(("alice", 2))
    transport = ScriptedTransport({"evt_alice_1": [ERROR] * 8})
    clock = FixedClock(NOW)
    sender = WebhookSender(queue, transport, clock, FAST, draw=lambda: 0.5)
    for attempt in range(8):
        await _run(sender, lambda: transport.ids().count("evt_alice_1") == attempt + 1)
        clock.set(clock.now() + timedelta(hours=11))
    await _run(sender, lambda: "evt_alice_2" in transport.ids())
    assert queue.deliveries[("alice", "ep", 1)].status == FAILED
    assert queue.deliveries[("alice", "ep", 1)].attempts == 8
    assert queue.deliveries[("alice", "ep", 2)].status == DELIVERED


async def test_410_disables_the_endpoint_and_nothing_more_goes_to_it():
    queue = _queue(("alice", 2), ("bob", 1))
    transport = ScriptedTransport({"evt_alice_1": [AttemptResult(410, 3, "gone")]}, hold=None)
    sender = WebhookSender(queue, transport, FixedClock(NOW), SenderOptions(poll_seconds=0.01, concurrency=1))
    await _run(sender, lambda: not queue.endpoints["ep"].enabled)
    await asyncio.sleep(0)
    assert queue.deliveries[("alice", "ep", 1)].status == FAILED
    assert "410" in (queue.endpoints["ep"].disabled_reason or "")
    assert "evt_alice_2" not in transport.ids()


async def test_a_killed_senders_lease_runs_out_and_another_sends_it_with_the_same_id():
    queue = _queue(("alice", 1))
    await queue.dispatch(NOW, 10)
    [dead] = await queue.claim(NOW, NOW + LEASE, 10, NO_SHARES)  # a sender claimed it, then died before sending
    clock = FixedClock(NOW + LEASE - timedelta(seconds=1))
    transport = ScriptedTransport()
    sender = WebhookSender(queue, transport, clock, FAST)
    sender.start()
    await asyncio.sleep(0.1)
    assert transport.sent == []  # the lease holds
    clock.set(NOW + LEASE)
    await _run(sender, lambda: queue.deliveries[("alice", "ep", 1)].status == DELIVERED)
    assert transport.ids() == [dead.event_id]
    # The dead sender coming back records nothing: its lease was taken.
    assert await sender.record(dead, OK) == "lost_lease"


async def test_the_same_bytes_and_id_at_every_attempt():
    queue = _queue(("alice", 1))
    transport = ScriptedTransport({"evt_alice_1": [ERROR, ERROR]})
    clock = FixedClock(NOW)
    sender = WebhookSender(queue, transport, clock, FAST, draw=lambda: 0.5)
    for step in range(3):
        await _run(sender, lambda: len(transport.sent) == step + 1)
        clock.set(clock.now() + timedelta(hours=1))
    assert len({(w.event_id, w.body) for w in transport.sent}) == 1


async def test_a_transport_bug_is_a_failed_attempt_not_a_stuck_delivery():
    class Broken:
        async def send(self, webhook):
            raise RuntimeError("bug")

    queue = _queue(("alice", 1))
    sender = WebhookSender(queue, Broken(), FixedClock(NOW), FAST, draw=lambda: 0.5)
    await _run(sender, lambda: queue.deliveries.get(("alice", "ep", 1)) is not None
               and queue.deliveries[("alice", "ep", 1)].attempts == 1)
    delivery = queue.deliveries[("alice", "ep", 1)]
    assert delivery.status == PENDING and "bug" in (delivery.results[0].error or "")


async def test_stopping_lets_a_send_in_flight_finish_and_be_recorded():
    hold = asyncio.Event()
    queue = _queue(("alice", 1))
    transport = ScriptedTransport(hold=hold)
    sender = WebhookSender(queue, transport, FixedClock(NOW), FAST)
    sender.start()
    async with asyncio.timeout(2):
        while not transport.sent:
            await asyncio.sleep(0.005)
    closing = asyncio.create_task(sender.close())
    await asyncio.sleep(0.05)
    hold.set()
    await closing
    assert queue.deliveries[("alice", "ep", 1)].status == DELIVERED


async def test_events_before_the_endpoint_and_of_other_types_are_not_sent_to_it():
    queue = MemoryOutboundQueue()
    queue.endpoints["ep"] = MemoryEndpoint("ep", "https://example.com/hook", SECRET, NOW, event_types=("balance.low",))
    queue.add_event("alice", 1, "balance.low", NOW - timedelta(seconds=1))
    queue.add_event("alice", 2, "credit.granted", NOW)
    queue.add_event("alice", 3, "balance.low", NOW)
    transport = ScriptedTransport()
    sender = WebhookSender(queue, transport, FixedClock(NOW), FAST)
    await _run(sender, lambda: bool(transport.sent))
    assert transport.ids() == ["evt_alice_3"]


@pytest.mark.parametrize("turns_before_the_event", [0, 1, 2, 3])
async def test_a_sender_loop_cancelled_as_it_is_woken_ends(turns_before_the_event):
    """close() cancels the loops; a cancellation that lands as the loop's event is set must end the
    loop (CPython 3.11's wait_for returned the event instead, and close() waited forever)."""
    from billing.service.webhook_sender import _wait

    event = asyncio.Event()
    waiting = asyncio.create_task(_wait(event, 10))
    for _ in range(turns_before_the_event):
        await asyncio.sleep(0)
    event.set()
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    assert waiting.cancelled()
