"""The "REST webhooks" scenario: signed Stripe `payment_intent.succeeded` deliveries through Envoy.

    python -m bench.webhooks --target HOST:PORT --accounts N [--account-offset 0] --duration SECONDS \
        --concurrency C [--block 100] [--events-per-payment 2] [--repeat-share 0.2] [--max-rate 2500] \
        [--timeout 10] [--run-id ID] --out result.json

The webhook signing secret is read from BENCH_STRIPE_WEBHOOK_SECRET (bench/stack.py sets it,
and gives the server the same one as STRIPE_WEBHOOK_SECRET).

Deliveries, generated before the measured window (signing and JSON are not timed):
  - each PaymentIntent `pi_<run id>_<n>` buys the "mini" package (60 minutes) for a random account
    offset+1 .. offset+N, and is delivered as `--events-per-payment` (2) *different* events (own
    event ids): the first to arrive credits, the others answer `processed` and credit nothing;
  - `--repeat-share` (20%) of the deliveries are verbatim repeats of one of those events (the same
    bytes and Stripe-Signature header): answered `duplicate` by the event id;
  - shuffled within blocks of `--block` PaymentIntents, so the deliveries of one payment arrive
    close together (some at once, at the scenario's concurrency), as Stripe's do;
  - signed as Stripe signs (`t=<unix>,v1=<hex hmac_sha256(secret, "<t>.<payload>")>`) when generated:
    the server accepts 300 s of clock difference, so a run is at most RUN_SECONDS_MAX long.
Enough deliveries for `--max-rate` per second over the run are generated; a run that sends them
all before its time is up stops there (`exhausted`, figures over the time it took).

Closed loop: C workers, one keep-alive HTTP/1.1 connection each (testkit/http1_client.py), each
sending its next delivery when the previous one answered. A success is HTTP 200 with
`"received": true`; the answer's `outcome` is counted.

The result (JSON) has the loadgen's fields (requests, rps = deliveries/s, p50/p99/p999 ms, errors,
client CPU) plus the duplicate shares and outcomes, and `payments`: every PaymentIntent with at
least one delivery sent, its account and whether one of its deliveries was answered 200, which
`verify_credits` checks against the ledger (`bench/run.py` does so after the scenario).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import hmac
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from testkit.http1_client import HttpConnection
from bench.load_requests import RUN_ID_PATTERN
from bench.load_stats import cpu_seconds, latency_summary

PATH = "/v1/billing/webhooks/stripe"
SECRET_ENV = "BENCH_STRIPE_WEBHOOK_SECRET"
API_VERSION = "2026-10-28.endive"  # tests/support/stripe_events.py (not imported: bench code stands alone)
PACKAGE_KEY, PACKAGE_MINUTES, AMOUNT_CENTS = "mini", 60, 499
RUN_SECONDS_MAX = 240.0  # signatures made before the run must still be within the server's 300 s tolerance
ERROR_SAMPLES_MAX = 5


# ------------------------------------------------------------------ the deliveries (pure)


def event(event_type: str, obj: dict[str, Any], created: int, event_id: str) -> dict[str, Any]:
    """A Stripe event (the shape of tests/support/stripe_events.py's event())."""
    return {
        "id": event_id, "object": "event", "type": event_type, "created": created,
        "api_version": API_VERSION, "livemode": False, "data": {"object": obj}, "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
    }  # fmt: skip


def customer_of(account_id: str) -> str:
    """The bench account's customer at the provider (register_customers stores the mapping): the
    service credits the customer's account, never the one the metadata names."""
    return f"cus_bench_{account_id}"


def register_customers(database_url: str, account_offset: int, accounts: int) -> None:
    """What each account's first checkout would have stored, for the accounts the run pays for."""
    import psycopg

    from billing.settings import libpq_url

    with psycopg.connect(libpq_url(database_url), autocommit=True) as connection:
        for table, columns in (("payment_profiles", "account_id, customer_id, updated_at"),
                               ("payment_customers", "account_id, customer_id, created_at")):
            connection.execute(
                f"INSERT INTO {table} ({columns}) SELECT n::text, 'cus_bench_' || n, now() "
                "FROM generate_series(%s::bigint, %s::bigint) n "
                "WHERE EXISTS (SELECT 1 FROM accounts WHERE account_id = n::text) ON CONFLICT DO NOTHING",
                (account_offset + 1, account_offset + accounts))


def payment_intent_succeeded(pi_id: str, user_id: str, created: int, event_id: str) -> dict[str, Any]:
    """A package purchase's PaymentIntent succeeded (tests/support/stripe_events.py's shape)."""
    metadata = {"user_id": user_id, "purpose": "package", "package_key": PACKAGE_KEY,
                "package_minutes": str(PACKAGE_MINUTES)}  # fmt: skip
    pi = {"id": pi_id, "object": "payment_intent", "status": "succeeded", "amount": AMOUNT_CENTS,
          "amount_received": AMOUNT_CENTS, "currency": "usd", "customer": customer_of(user_id),
          "metadata": metadata, "created": created}  # fmt: skip
    return event("payment_intent.succeeded", pi, created, event_id)


def signed(evt: dict[str, Any], secret: str, timestamp: int) -> tuple[bytes, str]:
    """The delivery as Stripe sends it: the JSON bytes and the Stripe-Signature header."""
    payload = json.dumps(evt, separators=(",", ":")).encode()
    signature = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return payload, f"t={timestamp},v1={signature}"


def http_request(host: str, payload: bytes, signature: str) -> bytes:
    head = (
        f"POST {PATH} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json; charset=utf-8\r\n"
        f"User-Agent: Stripe/1.0 (+https://stripe.com/docs/webhooks)\r\nStripe-Signature: {signature}\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


@dataclass(frozen=True)
class Delivery:
    payment_id: str
    account_id: str
    event_id: str
    payload: bytes
    signature: str
    repeat: bool  # a verbatim copy of another delivery of this block (same bytes, same signature)
    request: bytes  # the whole HTTP/1.1 request; a repeat shares its original's


@dataclass
class DeliveryPlan:
    """What the generator makes: see the module doc. Pure but for `clock` (the signatures' t)."""

    secret: str
    accounts: int
    run_id: str
    host: str = "127.0.0.1"
    account_offset: int = 0
    events_per_payment: int = 2
    repeat_share: float = 0.2
    block_payments: int = 100
    rng: random.Random = field(default_factory=random.Random)
    clock: Callable[[], float] = time.time

    def validate(self) -> None:
        if not self.secret:
            raise ValueError(f"no webhook secret (set {SECRET_ENV})")
        if self.accounts < 1 or self.account_offset < 0:
            raise ValueError("accounts must be >= 1 and account_offset >= 0")
        if self.events_per_payment < 1 or self.block_payments < 1:
            raise ValueError("events_per_payment and block_payments must be >= 1")
        if not 0.0 <= self.repeat_share < 1.0:
            raise ValueError("repeat_share must be in [0, 1)")
        if not RUN_ID_PATTERN.fullmatch(self.run_id):
            raise ValueError(f"run_id must be 1-64 of [A-Za-z0-9_.], got {self.run_id!r}")

    def repeats_per_block(self) -> int:
        """Verbatim repeats in a block, so that they are repeat_share of its deliveries."""
        distinct = self.block_payments * self.events_per_payment
        return round(distinct * self.repeat_share / (1.0 - self.repeat_share))

    def block(self, first_payment: int) -> list[Delivery]:
        """block_payments PaymentIntents (numbered from first_payment), every delivery of them, shuffled."""
        rng, timestamp = self.rng, int(self.clock())
        originals = []
        for n in range(first_payment, first_payment + self.block_payments):
            payment_id = f"pi_{self.run_id}_{n}"
            account_id = str(self.account_offset + 1 + rng.randrange(self.accounts))
            for k in range(self.events_per_payment):
                event_id = f"evt_{self.run_id}_{n}_{k}"
                payload, signature = signed(payment_intent_succeeded(payment_id, account_id, timestamp, event_id),
                                            self.secret, timestamp)  # fmt: skip
                request = http_request(self.host, payload, signature)
                originals.append(Delivery(payment_id, account_id, event_id, payload, signature, False, request))
        repeats = [
            Delivery(d.payment_id, d.account_id, d.event_id, d.payload, d.signature, True, d.request)
            for d in rng.sample(originals, min(self.repeats_per_block(), len(originals)))
        ]
        deliveries = originals + repeats
        rng.shuffle(deliveries)
        return deliveries

    def deliveries(self, count: int) -> list[Delivery]:
        """At least `count` deliveries: whole blocks (a block's duplicates stay within it)."""
        self.validate()
        out: list[Delivery] = []
        first = 1
        while len(out) < count:
            out += self.block(first)
            first += self.block_payments
        return out


# ------------------------------------------------------------------ the run


@dataclass
class WebhookConfig:
    target: str  # Envoy's REST listener, HOST:PORT (an http:// prefix is accepted)
    accounts: int
    duration_s: float
    concurrency: int
    account_offset: int = 0
    block_payments: int = 100
    events_per_payment: int = 2
    repeat_share: float = 0.2
    max_rate: float = 2500.0  # deliveries generated: max_rate x duration (a run stops early past that)
    timeout_s: float = 10.0
    run_id: str = field(default_factory=lambda: "wh" + os.urandom(5).hex())

    def validate(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        if not 0 < self.duration_s <= RUN_SECONDS_MAX:
            raise ValueError(f"duration must be in (0, {RUN_SECONDS_MAX:g}] s (the signatures' tolerance)")
        if self.max_rate <= 0 or self.timeout_s <= 0:
            raise ValueError("max_rate and timeout must be > 0")
        self.plan("x").validate()

    def host_port(self) -> tuple[str, int]:
        target = self.target.split("://", 1)[-1].rstrip("/")
        host, _, port = target.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"target must be HOST:PORT, got {self.target!r}")
        return host.strip("[]"), int(port)

    def plan(self, secret: str, rng: random.Random | None = None) -> DeliveryPlan:
        host, port = self.host_port()
        return DeliveryPlan(
            secret=secret, accounts=self.accounts, run_id=self.run_id, host=f"{host}:{port}",
            account_offset=self.account_offset, events_per_payment=self.events_per_payment,
            repeat_share=self.repeat_share, block_payments=self.block_payments, rng=rng or random.Random(),
        )  # fmt: skip


def outcome_of(body: bytes) -> str | None:
    """The `outcome` of a `{"received": true, "outcome": ...}` answer; None for anything else."""
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    if not isinstance(answer, dict) or answer.get("received") is not True:
        return None
    outcome = answer.get("outcome")
    return outcome if isinstance(outcome, str) else None


async def run_load(cfg: WebhookConfig, secret: str) -> dict:
    """Generates the deliveries, then sends them closed-loop for cfg.duration_s (see module doc)."""
    cfg.validate()
    deliveries = cfg.plan(secret).deliveries(math.ceil(cfg.max_rate * cfg.duration_s))
    host, port = cfg.host_port()
    loop = asyncio.get_running_loop()
    conns = [HttpConnection(loop, host, port) for _ in range(cfg.concurrency)]
    await asyncio.gather(*(c.connect() for c in conns))
    clock = time.perf_counter
    queue: Iterator[Delivery] = iter(deliveries)
    latencies: list[float] = []
    outcomes: collections.Counter[str] = collections.Counter()
    errors, error_samples = 0, list[str]()
    sent = repeats_sent = 0
    attempted: dict[str, str] = {}  # payment id -> account id
    answered: set[str] = set()  # payment ids with a delivery answered 200 received
    exhausted_at: float | None = None

    def error(text: str) -> None:
        nonlocal errors
        errors += 1
        if len(error_samples) < ERROR_SAMPLES_MAX and text not in error_samples:
            error_samples.append(text[:300])

    async def watchdog() -> None:
        while True:
            await asyncio.sleep(min(1.0, cfg.timeout_s / 4))
            now = clock()
            for conn in conns:
                conn.timeout_check(now, cfg.timeout_s)

    async def worker(conn: HttpConnection, stop_at: float) -> None:
        nonlocal sent, repeats_sent, exhausted_at
        while True:
            start = clock()
            if start >= stop_at:
                return
            delivery = next(queue, None)
            if delivery is None:
                exhausted_at = start if exhausted_at is None else exhausted_at
                return
            sent += 1
            repeats_sent += int(delivery.repeat)
            attempted[delivery.payment_id] = delivery.account_id
            try:
                failure = await conn.send(delivery.request)
            except Exception as exc:  # noqa: BLE001 -- a failed delivery is counted, the run goes on
                failure = repr(exc)
            latencies.append(clock() - start)
            if failure is not None:
                error(failure)
                continue
            outcome = outcome_of(conn.last_body)
            if outcome is None:
                error(f"HTTP 200 without received=true: {conn.last_body[:200]!r}")
                continue
            outcomes[outcome] += 1
            answered.add(delivery.payment_id)

    dog = loop.create_task(watchdog())
    try:
        cpu_start, wall_start, unix_start = cpu_seconds(), clock(), time.time()
        stop_at = wall_start + cfg.duration_s
        await asyncio.gather(*(worker(conn, stop_at) for conn in conns))
        cpu_end, wall_end, unix_end = cpu_seconds(), clock(), time.time()
    finally:
        dog.cancel()
        for conn in conns:
            if conn.transport is not None:
                conn.transport.close()

    duration = cfg.duration_s if exhausted_at is None else max(exhausted_at - wall_start, 1e-9)
    client_cpu = max(0.0, cpu_end - cpu_start)
    distinct = len(attempted)
    result = {
        "tool": "bench.webhooks", "protocol": "rest", "scenario": "webhooks", "mode": "closed",
        "concurrency": cfg.concurrency, "connections": cfg.concurrency, "accounts": cfg.accounts,
        "account_offset": cfg.account_offset, "requests": sent, "deliveries": sent, "errors": errors, "dropped": 0,
        "duration_s": round(duration, 3), "wall_s": round(wall_end - wall_start, 3),
        "exhausted": exhausted_at is not None, "generated": len(deliveries),
        "rps": round(sent / duration, 1),
        "payment_intents": distinct,
        "events_per_payment": cfg.events_per_payment, "block_payments": cfg.block_payments,
        # Deliveries that must credit nothing (a verbatim repeat, or another event of a payment
        # already delivered): all but one per PaymentIntent.
        "duplicate_share": round((sent - distinct) / sent, 3) if sent else None,
        "verbatim_repeat_share": round(repeats_sent / sent, 3) if sent else None,
        "outcomes": dict(sorted(outcomes.items())),
        "answered_duplicate_share": round(outcomes["duplicate"] / sent, 3) if sent else None,
    }  # fmt: skip
    result.update(latency_summary(latencies))
    result.update({
        "client_cpu_s": round(client_cpu, 3),
        "client_cpu_per_request_us": round(client_cpu / sent * 1e6, 1) if sent else None,
        "window_start_unix": round(unix_start, 3), "window_end_unix": round(unix_end, 3),
        "run_id": cfg.run_id, "error_samples": error_samples,
        "payments": {pid: [account, pid in answered] for pid, account in attempted.items()},
    })  # fmt: skip
    return result


def run(cfg: WebhookConfig, secret: str) -> dict:
    from bench.loadgen import _runner  # uvloop, as the other generators

    with _runner() as runner:
        return runner.run(run_load(cfg, secret))


# ------------------------------------------------------------------ the check


CREDITS_OF_PAYMENTS = """
SELECT metadata->>'payment_id' AS payment_id, count(*)
FROM ledger_events
WHERE account_id = ANY(%(accounts)s) AND type = 'package_credit' AND metadata->>'payment_id' LIKE %(prefix)s
GROUP BY 1
"""


def like_prefix(text: str) -> str:
    """A LIKE pattern matching what starts with text (its _ and % taken literally)."""
    return text.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%") + "%"


def credit_problems(payments: dict[str, list], credits: dict[str, int]) -> list[str]:
    """What is wrong with the ledger's package credits of one run (empty: nothing).

    Every PaymentIntent whose delivery was answered 200 credited exactly once; one whose every
    delivery failed at most once (the server may have credited before the failure); none not
    delivered at all.
    """
    problems = []
    for payment_id, (_account, answered) in sorted(payments.items()):
        count = credits.get(payment_id, 0)
        if count > 1 or (answered and count != 1):
            problems.append(f"{payment_id}: {count} package_credit ledger rows")
    for payment_id in sorted(credits.keys() - payments.keys()):
        problems.append(f"{payment_id}: {credits[payment_id]} package_credit ledger rows, never delivered")
    return problems


def verify_credits(database_url: str, result: dict) -> dict:
    """Counts the run's package_credit ledger rows per metadata->>'payment_id' (by the run's
    accounts, on the ledger's primary key) and checks them (credit_problems)."""
    import psycopg

    from billing.settings import libpq_url

    payments = result["payments"]
    accounts = sorted({account for account, _answered in payments.values()})
    with psycopg.connect(libpq_url(database_url), autocommit=True) as connection:
        rows = connection.execute(
            CREDITS_OF_PAYMENTS, {"accounts": accounts, "prefix": like_prefix(f"pi_{result['run_id']}_")}
        ).fetchall()
    credits = {payment_id: count for payment_id, count in rows}
    problems = credit_problems(payments, credits)
    credited = sum(1 for count in credits.values() if count >= 1)
    return {
        "credited_payment_intents": credited,
        "credits_per_s": round(credited / result["duration_s"], 1),
        "credit_check": {"ok": not problems, "problems": len(problems), "samples": problems[:10]},
    }


# ------------------------------------------------------------------ CLI and subprocess


def cli_args(cfg: WebhookConfig) -> list[str]:
    return [
        "--target", cfg.target, "--accounts", str(cfg.accounts), "--account-offset", str(cfg.account_offset),
        "--duration", str(cfg.duration_s), "--concurrency", str(cfg.concurrency),
        "--block", str(cfg.block_payments), "--events-per-payment", str(cfg.events_per_payment),
        "--repeat-share", str(cfg.repeat_share), "--max-rate", str(cfg.max_rate), "--timeout", str(cfg.timeout_s),
        "--run-id", cfg.run_id,
    ]  # fmt: skip


def run_subprocess(cfg: WebhookConfig) -> dict:
    """Runs the CLI in its own process (client CPU is the generator's alone); returns its result."""
    cfg.validate()
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(root)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    with tempfile.TemporaryDirectory(prefix="webhooks-") as tmp:
        out = Path(tmp) / "result.json"
        proc = subprocess.run(
            [sys.executable, "-m", "bench.webhooks", *cli_args(cfg), "--out", str(out)],
            cwd=root, env=env, capture_output=True, text=True, timeout=cfg.duration_s + cfg.timeout_s + 120,
        )  # fmt: skip
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"bench.webhooks failed (exit {proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
        return json.loads(out.read_text())


def parse_args(argv: list[str] | None = None) -> tuple[WebhookConfig, str]:
    p = argparse.ArgumentParser(prog="python -m bench.webhooks", description=__doc__.split("\n\n")[0])
    p.add_argument("--target", required=True, help="Envoy's REST listener, HOST:PORT")
    p.add_argument("--accounts", type=int, required=True, help="accounts are offset+1 .. offset+N")
    p.add_argument("--account-offset", type=int, default=0)
    p.add_argument("--duration", type=float, required=True, help="measured seconds")
    p.add_argument("--concurrency", type=int, required=True, help="connections, one delivery in flight on each")
    p.add_argument("--block", type=int, default=100, help="PaymentIntents shuffled together")
    p.add_argument("--events-per-payment", type=int, default=2, help="different events per PaymentIntent")
    p.add_argument("--repeat-share", type=float, default=0.2, help="share of deliveries repeated verbatim")
    p.add_argument("--max-rate", type=float, default=2500.0, help="deliveries generated per second of the run")
    p.add_argument("--timeout", type=float, default=10.0, help="per-delivery timeout, seconds")
    p.add_argument("--run-id", default=None, help="PaymentIntent and event id prefix (default: random)")
    p.add_argument("--out", required=True, help="write the result JSON here")
    a = p.parse_args(argv)
    cfg = WebhookConfig(
        target=a.target, accounts=a.accounts, account_offset=a.account_offset, duration_s=a.duration,
        concurrency=a.concurrency, block_payments=a.block, events_per_payment=a.events_per_payment,
        repeat_share=a.repeat_share, max_rate=a.max_rate, timeout_s=a.timeout,
    )  # fmt: skip
    if a.run_id:
        cfg.run_id = a.run_id
    try:
        cfg.validate()
    except ValueError as exc:
        p.error(str(exc))
    return cfg, a.out


def main(argv: list[str] | None = None) -> int:
    cfg, out = parse_args(argv)
    secret = os.environ.get(SECRET_ENV, "")
    if not secret:
        print(f"{SECRET_ENV} is not set (the server's STRIPE_WEBHOOK_SECRET)", file=sys.stderr)
        return 2
    result = run(cfg, secret)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
