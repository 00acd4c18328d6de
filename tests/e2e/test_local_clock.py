"""The README's "Living through a subscription period locally", end to end: `billing-dev run` (server, Envoy and
the Stripe stand-in, on free ports and a fresh database) with the local clock offset file, a Pro subscription
bought through the stand-in's checkout, `billing-dev clock advance 31d` (the stand-in's clock and the server's
offset together), the renewal credited and the ended period rolled over (capped), then the cancel and the
period's end. Session keys keep expiring by the wall clock while the service's clock runs ahead.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import subprocess
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import psycopg
import pytest

from billing.domain.auth import Scope
from billing.settings import libpq_url
from tests.support.database import fresh_database
from testkit.processes import answers_200, REPO_ROOT, VENV_BIN, free_port, health_serving, start_failed, stop_process, tail
from testkit.signing import SigningKey, create_key

STACK_START_TIMEOUT_SECONDS = 60.0
WEBHOOKS_WITHIN_SECONDS = 30.0  # deliveries are synchronous in the stand-in; the server's credit follows
COMMAND_TIMEOUT_SECONDS = 120.0
PRO_MINUTES, PRO_ROLLOVER_CAP_MINUTES = 1200, 600  # catalog/catalog.json
DEV_COMMANDS = ("clock", "stripe-secret")  # the local stack's (billing-dev), not the service's
DAY = 86400
T = TypeVar("T")


@dataclass(frozen=True)
class LocalStack:
    database_url: str
    env: dict[str, str]  # a shell's: no STRIPE_*, no BILLING_CLOCK_OFFSET_FILE (the same stand-in port)
    rest_port: int
    admin_rest_port: int
    standin_port: int
    key: SigningKey
    log: Path

    def call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        body = json.dumps(payload).encode() if payload is not None else b""
        headers = self.key.rest_headers(method, path, body) | ({"Content-Type": "application/json"} if body else {})
        port = self.admin_rest_port if path.startswith("/v1/billing/admin/") else self.rest_port
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            connection.request(method, path, body=body or None, headers=headers)
            response = connection.getresponse()
            return response.status, json.loads(response.read() or b"{}")
        finally:
            connection.close()

    def ok(self, method: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        status, body = self.call(method, path, payload)
        assert status == 200, f"{method} {path}: {status} {body}\n{tail(self.log)}"
        return body

    def billing(self, *arguments: str) -> str:
        """`.venv/bin/billing ...` as typed in another shell."""
        command = "billing-dev" if arguments[0] in DEV_COMMANDS else "billing"
        done = subprocess.run([str(VENV_BIN / command), *arguments], cwd=REPO_ROOT, env=self.env,
                              capture_output=True, text=True, timeout=COMMAND_TIMEOUT_SECONDS)
        assert done.returncode == 0, f"billing {' '.join(arguments)}: {done.stdout}{done.stderr}\n{tail(self.log)}"
        return done.stdout

    def pay(self, session_id: str) -> None:
        """The checkout page's Pay button (JSON asked for: the stand-in answers once the webhooks are delivered)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.standin_port, timeout=60)
        try:
            connection.request("POST", f"/checkout/{session_id}/pay", body=urllib.parse.urlencode({"outcome": "succeed"}),
                               headers={"Content-Type": "application/x-www-form-urlencoded",
                                        "Accept": "application/json"})
            response = connection.getresponse()
            assert response.status == 200, response.read()
        finally:
            connection.close()


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with fresh_database("billing_clock") as database_url:
        port = {name: free_port() for name in ("grpc", "rest", "admin_rest", "standin")}
        key = create_key(database_url, Scope.ADMIN)  # before the server starts: known at once
        shell = {name: value for name, value in os.environ.items()
                 if not name.startswith("STRIPE_") and name != "BILLING_CLOCK_OFFSET_FILE"} | {
            "DATABASE_URL": database_url,
            "BILLING_GRPC_PORT": str(port["grpc"]),
            "BILLING_REST_PORT": str(port["rest"]),
            "BILLING_ADMIN_REST_PORT": str(port["admin_rest"]),
            "BILLING_METRICS_PORT": "0",
            "BILLING_STRIPE_STANDIN_PORT": str(port["standin"]),  # its own .data/stripe-standin/port-N/
            "BILLING_DEMO_PORT": "0",
            "BILLING_LOG_FORMAT": "text",
            "PYTHONUNBUFFERED": "1",
        }
        log = tmp_path_factory.mktemp("billing-run") / "billing-run.log"
        with open(log, "wb") as out:
            process = subprocess.Popen([str(VENV_BIN / "billing-dev"), "run"], cwd=REPO_ROOT, env=shell, stdout=out,
                                       stderr=subprocess.STDOUT)
        standin_dir = REPO_ROOT / ".data" / "stripe-standin" / f"port-{port['standin']}"
        try:
            grpc_target = f"127.0.0.1:{port['grpc']}"
            deadline = time.monotonic() + STACK_START_TIMEOUT_SECONDS
            while not (health_serving(grpc_target) and answers_200(port["rest"], "/v1/billing/catalog")
                       and answers_200(port["standin"], "/_standin/clock")):
                if process.poll() is not None:
                    start_failed("billing-dev run", process, f"exited with code {process.returncode}", [log])
                if time.monotonic() > deadline:
                    start_failed("billing-dev run", process, f"not serving within {STACK_START_TIMEOUT_SECONDS:.0f}s", [log])
                time.sleep(0.2)
            yield LocalStack(database_url, shell, port["rest"], port["admin_rest"], port["standin"], key, log)
        finally:
            stop_process(process, timeout=20)
            shutil.rmtree(standin_dir, ignore_errors=True)


def _eventually(read: Callable[[], T | None], what: str, log: Path) -> T:
    deadline = time.monotonic() + WEBHOOKS_WITHIN_SECONDS
    while True:
        found = read()
        if found:
            return found
        assert time.monotonic() < deadline, f"{what} within {WEBHOOKS_WITHIN_SECONDS:.0f}s\n{tail(log)}"
        time.sleep(0.2)


def _ahead(shown: str) -> int:
    """`billing-dev clock`'s "(30d 23h 59m ahead ...)" in seconds, to the minute: a second boundary may pass."""
    found = re.search(r"\((\d+)d (\d+)h (\d+)m ahead", shown)
    assert found, shown
    days, hours, minutes = map(int, found.groups())
    seconds = days * DAY + hours * 3600 + minutes * 60
    return seconds + 60 if seconds % 3600 == 3540 else seconds


def _plan_of(database_url: str, account_id: str) -> str:
    """Read in the database, not through the service (a read would do the upkeep itself)."""
    with psycopg.connect(libpq_url(database_url)) as connection:
        row = connection.execute("SELECT plan_key FROM accounts WHERE account_id = %s", (account_id,)).fetchone()
    assert row is not None, account_id
    return str(row[0])


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _paid(balance: dict[str, Any], source: str) -> list[dict[str, Any]]:
    return [bucket for bucket in balance["buckets"]["paid"] if bucket["source"] == source]


def test_living_through_a_subscription_period_locally(local_stack: LocalStack):
    stack, user = local_stack, f"clock-{uuid.uuid4().hex[:8]}"
    stack.ok("POST", "/v1/billing/accounts", {"user_id": user})
    # An idle account nobody reads: its complimentary Starter month ends on the way, for `billing tick` alone.
    idle = f"idle-{uuid.uuid4().hex[:8]}"
    stack.ok("POST", "/v1/billing/accounts", {"user_id": idle, "plan_key": "starter"})
    checkout = stack.ok("POST", "/v1/billing/subscriptions/checkout",
                        {"user_id": user, "plan_key": "pro", "currency": "USD"})
    stack.pay(checkout["session_id"])
    first = _eventually(lambda: (b := stack.ok("GET", f"/v1/billing/balance/{user}"))["plan_key"] == "pro"
                        and _paid(b, "subscription") and b, "the first period credited", stack.log)
    first_end = _time(first["subscription"]["current_period_end_at"])
    assert timedelta(days=27) < first_end - datetime.now(timezone.utc) < timedelta(days=32), first
    assert [b["seconds"] for b in _paid(first, "subscription")] == [PRO_MINUTES * 60]
    assert not _paid(first, "rollover")

    advanced = stack.billing("clock", "advance", "31d")
    assert _ahead(advanced) == 31 * DAY, advanced
    assert "customer.subscription.updated" in advanced and "invoice.paid" in advanced, advanced

    # The renewal's invoice.paid is credited: the server's clock has reached the new period (it follows the
    # offset file `billing-dev clock advance` wrote), and the ended period's minutes roll over up to Pro's cap.
    renewed = _eventually(lambda: (b := stack.ok("GET", f"/v1/billing/balance/{user}"))
                          and _paid(b, "rollover") and b, "the renewal credited and rolled over", stack.log)
    assert [b["seconds"] for b in _paid(renewed, "subscription")] == [PRO_MINUTES * 60]
    assert [b["seconds"] for b in _paid(renewed, "rollover")] == [PRO_ROLLOVER_CAP_MINUTES * 60]  # capped
    assert _time(renewed["subscription"]["current_period_end_at"]) > first_end + timedelta(days=27), renewed
    events = stack.ok("GET", f"/v1/billing/events/{user}?limit=50")["events"]
    types = [event["type"] for event in events]
    assert types.count("subscription_credit") == 2 and types.count("rollover_created") == 1, types
    assert types.count("rollover_discard") == 1, types  # the 600 minutes over the cap
    assert _ahead(stack.billing("clock")) == 31 * DAY

    # `billing tick` from a shell keeps the server's time (the stand-in's offset file, by default): the idle
    # account's month is over, and the tick closes it.
    assert _plan_of(stack.database_url, idle) == "starter"
    assert "upkeep done for 0 account" not in stack.billing("tick")
    assert _plan_of(stack.database_url, idle) == "free"

    # Session keys: the service's clock runs 31 days ahead, their expiry stays on the wall clock.
    before = datetime.now(timezone.utc)
    session = stack.ok("POST", "/v1/billing/admin/session-keys", {"user_id": user, "ttl_seconds": 600})
    assert _time(session["expires_at"]) <= datetime.now(timezone.utc) + timedelta(seconds=601), session
    assert _time(session["expires_at"]) >= before + timedelta(seconds=599), session

    cancel = stack.ok("POST", "/v1/billing/subscriptions/cancel", {"user_id": user, "idempotency_key": "cancel-1"})
    assert cancel["cancel_at_period_end"] is True and cancel["plan_key"] == "pro", cancel
    ended = stack.billing("clock", "advance", "31d")
    assert "customer.subscription.deleted" in ended, ended
    _eventually(lambda: stack.ok("GET", f"/v1/billing/balance/{user}")["plan_key"] == "free", "back on free", stack.log)
