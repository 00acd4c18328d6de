"""The sender of outbound events (issue 22), one in every server process; replicas share the work
through the database alone (the OutboundQueue's `FOR UPDATE SKIP LOCKED` claims and leases).

Two loops. The dispatcher turns undispatched outbox rows into one pending delivery per endpoint.
The deliverer claims due deliveries that head their (account, endpoint) line, with a lease, sends
each (at most `concurrency` at a time, at most `per_endpoint` of them to one endpoint, fewer while
it fails, so one endpoint that hangs cannot hold every slot), then records the attempt and what
domain/delivery_outcomes.py decides.
Each loop runs when woken (`wake()`: a committed wallet change heard by the change listener, its own
dispatch, a finished delivery, whose successor in line is now the head) or every `poll_seconds`.

At least once: a sender killed between its send and its record leaves a lease that runs out;
another sender then sends the same event again (the same webhook-id). A record that finds its lease
taken records nothing. Stopping: no new claims, the sends in flight get `stop_grace_seconds` to
finish and be recorded, then are cancelled (their leases run out).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable

from billing.domain.delivery_outcomes import DELIVERED, FAILED, AttemptResult, canonical_body, decide
from billing.service.ports import Clock, Unavailable, outage_log
from billing.service.webhook_sender_ports import (
    ClaimedDelivery, DeliveryMetrics, EndpointShares, NoDeliveryMetrics, OutboundQueue, OutgoingWebhook, WebhookTransport,
)

log = logging.getLogger(__name__)

# Longer than the 15 s send timeout and a slow record: a live sender never loses its lease.
LEASE = timedelta(seconds=60)
BACKOFF_SECONDS_MAX = 5.0


@dataclass(frozen=True)
class SenderOptions:
    poll_seconds: float = 0.2
    dispatch_batch: int = 500
    claim_batch: int = 100
    concurrency: int = 32
    # One endpoint's share of the slots: an endpoint that hangs for the whole 15 s timeout holds at
    # most half of them, and at most two once it is failing (its deliveries wait for retries anyway).
    per_endpoint: int = 16
    failing_per_endpoint: int = 2
    lease: timedelta = LEASE
    stop_grace_seconds: float = 5.0


class WebhookSender:
    def __init__(
        self, queue: OutboundQueue, transport: WebhookTransport, clock: Clock, options: SenderOptions = SenderOptions(),
        metrics: DeliveryMetrics | None = None, draw: Callable[[], float] = random.random,
    ):
        self._queue = queue
        self._transport = transport
        self._clock = clock
        self._options = options
        self._metrics = metrics or NoDeliveryMetrics()
        self._draw = draw
        self._dispatch_wanted = asyncio.Event()
        self._claim_wanted = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._in_flight_by_endpoint: Counter[str] = Counter()
        self._loops: list[asyncio.Task[None]] = []
        self.delivered = 0  # attempts recorded by this sender, by outcome (tests, logs)
        self.retried = 0
        self.failed = 0

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._loops = [loop.create_task(self._dispatching(), name="webhook dispatcher"),
                       loop.create_task(self._delivering(), name="webhook deliverer")]

    def wake(self, *_: Any) -> None:
        """Something may have been written to the outbox (a change listener's callback)."""
        self._dispatch_wanted.set()

    async def close(self) -> None:
        for task in self._loops:
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        if self._in_flight:
            _, late = await asyncio.wait(set(self._in_flight), timeout=self._options.stop_grace_seconds)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        log.info("webhook sender stopped: %d delivered, %d to retry, %d failed", self.delivered, self.retried,
                 self.failed)

    # --- the loops ---------------------------------------------------------------------------

    async def _dispatching(self) -> None:
        backoff = 0.0
        while True:
            self._dispatch_wanted.clear()
            try:
                events, deliveries = await self._queue.dispatch(self._clock.now(), self._options.dispatch_batch)
                backoff = 0.0
            except Exception as failure:
                backoff = _next_backoff(backoff, self._options.poll_seconds)
                _log_failure("webhook dispatcher", failure)
                await asyncio.sleep(backoff)
                continue
            if deliveries:
                self._claim_wanted.set()
            if events >= self._options.dispatch_batch:
                continue  # more are waiting
            await _wait(self._dispatch_wanted, self._options.poll_seconds)

    async def _delivering(self) -> None:
        backoff = 0.0
        while True:
            self._claim_wanted.clear()
            room = min(self._options.concurrency - len(self._in_flight), self._options.claim_batch)
            claimed: list[ClaimedDelivery] = []
            if room > 0:
                now = self._clock.now()
                try:
                    shares = EndpointShares(self._options.per_endpoint, self._options.failing_per_endpoint,
                                            dict(self._in_flight_by_endpoint))
                    claimed = await self._queue.claim(now, now + self._options.lease, room, shares)
                    backoff = 0.0
                except Exception as failure:
                    backoff = _next_backoff(backoff, self._options.poll_seconds)
                    _log_failure("webhook deliverer", failure)
                    await asyncio.sleep(backoff)
                    continue
                for delivery in claimed:
                    self._in_flight_by_endpoint[delivery.endpoint_id] += 1
                    task = asyncio.get_running_loop().create_task(self._deliver(delivery))
                    self._in_flight.add(task)
                    task.add_done_callback(self._finished)
            if claimed and len(claimed) == room and len(self._in_flight) < self._options.concurrency:
                continue  # more may be due
            await _wait(self._claim_wanted, self._options.poll_seconds)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._claim_wanted.set()  # room again, and the next of that line may be the head now
        if not task.cancelled() and task.exception() is not None:
            log.error("webhook delivery failed unexpectedly: %r", task.exception())

    # --- one delivery ------------------------------------------------------------------------

    async def _deliver(self, delivery: ClaimedDelivery) -> None:
        try:
            webhook = OutgoingWebhook(delivery.url, delivery.event_id, canonical_body(delivery.payload), delivery.secrets)
            started = time.monotonic()
            try:
                result = await self._transport.send(webhook)
            except Exception as failure:  # a transport bug is a failed attempt, not a stuck delivery
                log.exception("webhook transport failed")
                result = AttemptResult(None, int((time.monotonic() - started) * 1000), error=f"sender error: {failure!r}")
            await self.record(delivery, result)
        finally:
            self._in_flight_by_endpoint[delivery.endpoint_id] -= 1
            if self._in_flight_by_endpoint[delivery.endpoint_id] <= 0:
                del self._in_flight_by_endpoint[delivery.endpoint_id]

    async def record(self, delivery: ClaimedDelivery, result: AttemptResult) -> str:
        """Records the attempt and its outcome; returns what became of the delivery (delivered,
        retry, failed, lost_lease, unrecorded: the database refused it, the lease will run out)."""
        now = self._clock.now()
        outcome = decide(result, delivery.attempts, delivery.failing_since, now, self._draw())
        try:
            recorded = await self._queue.record(delivery, result, outcome, now)
        except Exception as failure:
            _log_failure("webhook deliverer (recording an attempt)", failure)
            return "unrecorded"
        if not recorded:
            label = "lost_lease"
            log.warning("webhook delivery %s to %s: the lease ran out before the attempt was recorded",
                        delivery.event_id, delivery.endpoint_id)
        elif outcome.status == DELIVERED:
            label = "delivered"
            self.delivered += 1
            self._metrics.webhook_delivered(max(0.0, (now - delivery.created_at).total_seconds()))
        elif outcome.status == FAILED:
            label = "failed"
            self.failed += 1
        else:
            label = "retry"
            self.retried += 1
        if recorded and outcome.disable_reason:
            log.warning("webhook endpoint %s disabled: %s", delivery.endpoint_id, outcome.disable_reason)
        self._metrics.webhook_attempt(label, result.latency_ms / 1000)
        return label


async def _wait(event: asyncio.Event, seconds: float) -> None:
    # asyncio.timeout, not wait_for: CPython 3.11's wait_for swallows a cancellation that arrives as
    # the event is set (it returns the event's result), and close() then waited forever on a loop
    # that never saw it was cancelled.
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        pass


def _next_backoff(previous: float, poll_seconds: float) -> float:
    return min(max(previous * 2, poll_seconds), BACKOFF_SECONDS_MAX)


def _log_failure(who: str, failure: Exception) -> None:
    if isinstance(failure, Unavailable):
        log.warning("%s: the database is out (%s); trying again", who, failure, extra=outage_log("database"))
    else:
        log.exception("%s failed; trying again", who)
