"""The operator console (issue 23) end to end: `billing-dev run` (server, Envoy, the Stripe stand-in and
the demo app for the story's user, as `make run` starts them, on free ports and a fresh database), Envoy
serving the console on the internal listener only, and headless Chromium driven by
clients/console/story/console_story.mjs (playwright-core, @axe-core/playwright) through every page at
1280 and 768 px. The user's demo page is open in a second page of the same browser while the operator
grants: its balance follows the grant from its live stream, without a reload.

Parts that need OperatorService methods still answering 501 (UNIMPLEMENTED) on this server are skipped,
naming the method; everything else (serving, sign-in, the webhook deliveries, axe on every page, the
login link) runs today. Screenshots go to a temporary folder, or to BILLING_STORY_SCREENSHOTS
(`BILLING_STORY_SCREENSHOTS=docs/screenshots` refreshes docs/screenshots/console-*.png).
`make test` builds the console and installs Chromium first and requires them (BILLING_REQUIRE_BROWSER=1);
run alone without them, the browser parts are skipped.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from billing.domain.auth import Scope
from tests.support.database import fresh_database
from testkit.processes import REPO_ROOT, VENV_BIN, answers_200, free_port, health_serving, start_failed, stop_process
from testkit.signing import SigningKey, create_key
from testkit.webhook_receiver import WebhookReceiver

STORY = REPO_ROOT / "clients" / "console" / "story" / "console_story.mjs"
CONSOLE_DIST = REPO_ROOT / "clients" / "console" / "dist"
DEMO_DIST = REPO_ROOT / "clients" / "demo" / "dist" / "index.html"
CHROMIUM = Path("/usr/bin/chromium")
STACK_START_TIMEOUT_SECONDS = 40.0
STORY_TIMEOUT_SECONDS = 300.0
DELIVERY_TIMEOUT_SECONDS = 30.0
WIDTHS = (1280, 768)
SERIOUS = {"serious", "critical"}


@dataclass(frozen=True)
class ConsoleStack:
    admin_port: int  # the internal listener: the console and the admin API
    rest_port: int  # the browser listener
    demo_port: int  # the demo app, signed in as user_id
    admin: SigningKey
    service: SigningKey
    user: SigningKey
    user_id: str
    event_id: str  # an outbound event delivered to the stack's endpoint
    log: Path
    total_seconds: int = 0  # the seeded account's available seconds (no holds: also its ledger sum)
    payment_id: str = ""  # the account's package payment (paid on the stand-in), once GetAccountOverview lists it
    package_seconds: int = 0
    env: dict[str, str] | None = None  # billing-dev run's environment (for `billing console-login`)

    @property
    def console_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}/console/"

    @property
    def demo_url(self) -> str:
        return f"http://localhost:{self.demo_port}"  # a loopback name the demo server answers (and Envoy's CORS allows)

    def request(self, method: str, path: str, body: Any = None, key: SigningKey | None = None,
                port: int | None = None) -> tuple[int, dict[str, str], bytes]:
        data = b"" if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if key is not None:
            headers |= key.rest_headers(method, path, data)
        connection = http.client.HTTPConnection("127.0.0.1", port or self.admin_port, timeout=20)
        try:
            connection.request(method, path, body=data or None, headers=headers)
            response = connection.getresponse()
            return response.status, {name.lower(): value for name, value in response.getheaders()}, response.read()
        finally:
            connection.close()

    def admin_json(self, method: str, path: str, body: Any = None) -> dict:
        status, _, data = self.request(method, path, body, key=self.admin)
        assert status == 200, (method, path, status, data)
        return json.loads(data)

    def answers_501(self, path: str, method: str = "GET") -> bool:
        return self.request(method, path, {} if method == "POST" else None, key=self.admin)[0] == 501

    def unbuilt(self) -> list[str]:
        """The OperatorService reads and actions the grant story needs that answer 501 here (a POST of {}
        is refused for its missing reason once built: it acts on nothing)."""
        needed = [("GET", f"/v1/billing/admin/accounts/{self.user_id}"), ("GET", "/v1/billing/admin/audit"),
                  ("POST", f"/v1/billing/admin/accounts/{self.user_id}/grants")]
        return [f"{method} {path}" for method, path in needed if self.answers_501(path, method)]


def _console_built() -> bool:
    return all((CONSOLE_DIST / name).is_file() for name in ("index.html", "console.js", "console.css", "favicon.svg"))


def _browser_missing() -> str | None:
    node_modules = REPO_ROOT / "clients" / "node_modules"
    if shutil.which("node") is None or not CHROMIUM.exists() or not _console_built() or not DEMO_DIST.is_file() or not (
            node_modules / "playwright-core").exists() or not (node_modules / "@axe-core" / "playwright").exists():
        return ("the console or demo build, playwright-core, @axe-core/playwright or Chromium is missing "
                "(make test installs and builds them)")
    return None


@pytest.fixture(scope="module")
def console_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleStack]:
    if not _console_built():
        missing = "clients/console/dist is not built (make console)"
        if os.environ.get("BILLING_REQUIRE_BROWSER") == "1":
            pytest.fail(missing)
        pytest.skip(missing)
    with fresh_database("billing_console") as database_url:
        port = {name: free_port() for name in ("grpc", "rest", "admin_rest", "metrics", "standin", "demo")}
        user_id = f"console-{uuid.uuid4().hex[:8]}"
        keys = {scope: create_key(database_url, scope, user_id=user_id if scope is Scope.USER else None)
                for scope in (Scope.ADMIN, Scope.SERVICE, Scope.USER)}  # before the server starts: known at once
        env = {name: value for name, value in os.environ.items() if not name.startswith("STRIPE_")} | {
            "DATABASE_URL": database_url,
            "BILLING_GRPC_PORT": str(port["grpc"]),
            "BILLING_REST_PORT": str(port["rest"]),
            "BILLING_ADMIN_REST_PORT": str(port["admin_rest"]),
            "BILLING_METRICS_PORT": str(port["metrics"]),
            "BILLING_STRIPE_STANDIN_PORT": str(port["standin"]),
            "BILLING_DEMO_PORT": str(port["demo"]),  # the user's own page, open while the operator acts
            "BILLING_DEMO_USER": user_id,
            "BILLING_LOG_FORMAT": "text",
            "PYTHONUNBUFFERED": "1",
        }
        log = tmp_path_factory.mktemp("billing-run") / "billing-run.log"
        receiver = WebhookReceiver(lambda event_id, attempt: 200)
        with open(log, "wb") as out:
            process = subprocess.Popen([str(VENV_BIN / "billing-dev"), "run"], cwd=REPO_ROOT, env=env, stdout=out,
                                       stderr=subprocess.STDOUT)
        try:
            grpc_target = f"127.0.0.1:{port['grpc']}"
            deadline = time.monotonic() + STACK_START_TIMEOUT_SECONDS
            while not (health_serving(grpc_target) and answers_200(port["admin_rest"], "/console/")
                       and answers_200(port["rest"], "/v1/billing/catalog") and answers_200(port["demo"], "/demo/config")):
                if process.poll() is not None:
                    start_failed("billing-dev run", process, f"exited with code {process.returncode}", [log])
                if time.monotonic() > deadline:
                    start_failed("billing-dev run", process, f"not serving within {STACK_START_TIMEOUT_SECONDS:.0f}s", [log])
                time.sleep(0.2)
            stack = ConsoleStack(port["admin_rest"], port["rest"], port["demo"], keys[Scope.ADMIN], keys[Scope.SERVICE],
                                 keys[Scope.USER], user_id, "", log)
            event_id = _seed(stack, receiver)
            payment_id, package_seconds = _paid_package(stack)
            totals = stack.admin_json("GET", f"/v1/billing/balance/{user_id}")["totals"]
            assert totals["held_seconds"] == 0, totals
            yield ConsoleStack(**{**stack.__dict__, "event_id": event_id, "total_seconds": totals["total_seconds"],
                                  "payment_id": payment_id, "package_seconds": package_seconds, "env": env})
        finally:
            receiver.close()
            stop_process(process, timeout=20)


def _seed(stack: ConsoleStack, receiver: WebhookReceiver) -> str:
    """An account with a credit and a consume, and the credit's outbound event delivered to an endpoint."""
    created = stack.admin_json("POST", "/v1/billing/admin/webhook-endpoints",
                               {"url": receiver.url, "event_types": ["credit.granted"], "description": "console story"})
    receiver.secret = created["secret"]
    stack.admin_json("POST", "/v1/billing/accounts", {"user_id": stack.user_id})
    stack.admin_json("POST", "/v1/billing/admin/grants", {
        "user_id": stack.user_id, "source": "gift", "seconds": 3600, "reason": "console story",
        "idempotency_key": uuid.uuid4().hex})
    stack.admin_json("POST", "/v1/billing/consume", {
        "user_id": stack.user_id, "operation": "build", "seconds": 600, "idempotency_key": uuid.uuid4().hex})
    deadline = time.monotonic() + DELIVERY_TIMEOUT_SECONDS
    while True:
        deliveries = stack.admin_json("GET", f"/v1/billing/admin/webhook-deliveries?user_id={stack.user_id}")["deliveries"]
        delivered = [d for d in deliveries if d["status"] == "delivered"]
        if delivered:
            return delivered[0]["event_id"]
        assert time.monotonic() < deadline, f"no delivery of the grant's event within {DELIVERY_TIMEOUT_SECONDS:.0f}s: {deliveries}"
        time.sleep(0.2)


def shown(seconds: int) -> str:
    """Seconds as the console shows them (clients/console/src/format.ts formatSeconds)."""
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    parts = ([f"{hours:,} h"] if hours else []) + ([f"{minutes} min"] if minutes else [])
    parts += [f"{secs} s"] if secs or not parts else []
    return ("−" if seconds < 0 else "") + " ".join(parts)


def _paid_package(stack: ConsoleStack) -> tuple[str, int]:
    """The user buys the mini package on the stand-in's Checkout; returns its payment id (read from the
    account page's API; "" while that answers 501) and the seconds it credited."""
    total = lambda: stack.admin_json("GET", f"/v1/billing/balance/{stack.user_id}")["totals"]["total_seconds"]  # noqa: E731
    before = total()
    bought = stack.admin_json("POST", "/v1/billing/packages/purchase", {
        "user_id": stack.user_id, "package_key": "mini", "currency": "USD", "idempotency_key": uuid.uuid4().hex})
    pay = urllib.request.Request(f"{bought['checkout_url']}/pay", data=b"outcome=succeed", method="POST", headers={
        "Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"})
    with urllib.request.urlopen(pay, timeout=20) as answer:
        assert answer.status == 200
    deadline = time.monotonic() + DELIVERY_TIMEOUT_SECONDS
    while total() == before:
        assert time.monotonic() < deadline, "the package's credit did not arrive"
        time.sleep(0.2)
    credited = total() - before
    path = f"/v1/billing/admin/accounts/{stack.user_id}"
    if stack.answers_501(path):
        return "", credited
    payments = stack.admin_json("GET", path)["payments"]
    assert len(payments) == 1 and payments[0]["granted_seconds"] == credited, payments
    return payments[0]["payment_id"], credited


@dataclass
class StoryResult:
    pages: list[dict]
    data: dict[str, Any]
    lines: list[str]

    def page(self, name: str, width: int) -> dict:
        found = [page for page in self.pages if page["name"] == name and page["width"] == width]
        assert found, f"the story did not reach {name} at {width} px: {self.lines}"
        return found[0]


def _console_login_url(stack: ConsoleStack) -> str:
    """`billing console-login`'s one-time URL for this stack ("" while the command is not there)."""
    assert stack.env is not None
    minted = subprocess.run([str(VENV_BIN / "billing"), "console-login", "--json"], cwd=REPO_ROOT, env=stack.env,
                            capture_output=True, text=True, timeout=60)
    if minted.returncode != 0:
        assert "invalid choice" in minted.stderr, minted.stderr  # not built on this branch yet
        return ""
    url = json.loads(minted.stdout)["url"]
    assert url.startswith(stack.console_url + "#login="), url
    return url


@pytest.fixture(scope="module")
def story(console_stack: ConsoleStack, tmp_path_factory: pytest.TempPathFactory) -> StoryResult:
    missing = _browser_missing()
    if missing:
        if os.environ.get("BILLING_REQUIRE_BROWSER") == "1":
            pytest.fail(missing)
        pytest.skip(missing)
    screenshots = Path(os.environ.get("BILLING_STORY_SCREENSHOTS") or tmp_path_factory.mktemp("console-screenshots"))
    env = os.environ | {
        "CONSOLE_URL": console_stack.console_url, "ADMIN_KEY_ID": console_stack.admin.key_id,
        "ADMIN_SECRET": console_stack.admin.secret, "USER_ID": console_stack.user_id, "EVENT_ID": console_stack.event_id,
        "SCREENSHOT_DIR": str(screenshots), "CHROMIUM": str(CHROMIUM),
        "ACTIONS": "0" if console_stack.unbuilt() else "1", "PAYMENT_ID": console_stack.payment_id,
        "LOGIN_URL": _console_login_url(console_stack), "DEMO_URL": console_stack.demo_url,
    }
    result = subprocess.run([shutil.which("node") or "node", str(STORY)], cwd=REPO_ROOT, env=env, text=True,
                            capture_output=True, timeout=STORY_TIMEOUT_SECONDS)
    lines = result.stdout.splitlines()
    if result.returncode != 0 or "DONE" not in lines:
        pytest.fail(f"console story failed (exit {result.returncode})\nlines: {lines}\nscreenshots: {screenshots}\n"
                    f"{result.stderr[-8000:]}", pytrace=False)
    pages = [json.loads(line[len("PAGE "):]) for line in lines if line.startswith("PAGE ")]
    data = {}
    for line in lines:
        if line.startswith("DATA "):
            name, _, payload = line[len("DATA "):].partition(" ")
            data[name] = json.loads(payload)
    return StoryResult(pages, data, lines)


# ---------------------------------------------------------------- served on the internal listener only


def test_the_console_is_served_on_the_internal_listener_with_security_headers(console_stack: ConsoleStack):
    status, headers, body = console_stack.request("GET", "/console/")
    assert status == 200 and headers["content-type"].startswith("text/html"), (status, headers)
    assert b'src="/console/console.js"' in body and b'href="/console/console.css"' in body
    csp = headers["content-security-policy"]
    for directive in ("default-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"):
        assert directive in csp, csp
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cache-control"] == "no-store"
    assert "set-cookie" not in headers

    for path, content_type in (("/console/console.js", "text/javascript"), ("/console/console.css", "text/css"),
                               ("/console/favicon.svg", "image/svg+xml")):
        status, headers, body = console_stack.request("GET", path)
        assert status == 200 and headers["content-type"].startswith(content_type) and body, (path, status, headers)
        assert headers["x-content-type-options"] == "nosniff"
        assert (CONSOLE_DIST / path.removeprefix("/console/")).read_bytes() == body

    status, headers, _ = console_stack.request("GET", "/console")
    assert status == 301 and headers["location"].endswith("/console/"), (status, headers)
    # Client-side routes (hash routing) and any other path under /console/: the app.
    status, headers, body = console_stack.request("GET", "/console/accounts/someone")
    assert status == 200 and headers["cache-control"] == "no-store" and b"console.js" in body


@pytest.mark.parametrize("path", ["/console/", "/console", "/console/console.js", "/console/console.css", "/console/index.html"])
def test_the_browser_listener_serves_no_console_page_or_asset(console_stack: ConsoleStack, path: str):
    status, headers, body = console_stack.request("GET", path, port=console_stack.rest_port)
    assert status == 404, (path, status, body)
    assert json.loads(body)["error"] == "NOT_FOUND" and "content-security-policy" not in headers


@pytest.mark.parametrize("path", [
    "/v1/billing/admin/webhook-deliveries", "/v1/billing/admin/webhook-endpoints", "/v1/billing/admin/accounts?query=console",
    "/v1/billing/admin/audit", "/v1/billing/admin/health",
])
def test_console_calls_with_a_user_or_service_key_are_403(console_stack: ConsoleStack, path: str):
    assert console_stack.request("GET", path, key=console_stack.admin)[0] in (200, 501)
    for key in (console_stack.user, console_stack.service):
        status, _, body = console_stack.request("GET", path, key=key)
        assert status == 403, (path, status, body)
    status, _, _ = console_stack.request("GET", path)
    assert status == 401, path


# ---------------------------------------------------------------- in Chromium


def test_sign_in_with_an_admin_key_and_the_webhook_deliveries(console_stack: ConsoleStack, story: StoryResult):
    for width in WIDTHS:
        page = story.page("webhooks", width)
        assert page["unimplemented"] is False, page
    # The key lives in this tab's sessionStorage only: no cookie, nothing in localStorage.
    assert story.data["storage"] == {"session": ["billing.console.key"], "local": [], "cookies": ""}, story.data
    # The replay dialog by keyboard: focus moved into it, Escape closed it, focus back on its button.
    assert story.data["replay-dialog"] == {"focusedInside": True, "focusBack": f"Replay {console_stack.event_id}"}


def test_no_serious_or_critical_axe_violations_nor_overflow_on_any_page(story: StoryResult):
    names = {page["name"] for page in story.pages}
    assert {"sign-in", "webhooks", "accounts", "account", "audit", "stripe", "operations"} <= names, names
    problems = []
    for page in story.pages:
        serious = [violation for violation in page["violations"] if violation["impact"] in SERIOUS]
        if serious or page["overflow"] or page["errors"]:
            problems.append({key: page[key] for key in ("name", "width", "overflow", "errors")} | {"violations": serious})
    assert problems == [], json.dumps(problems, indent=1)
    assert {page["width"] for page in story.pages if page["name"] == "operations"} == set(WIDTHS)


# Each page, and the OperatorService method its first read needs (501 until that method is built here).
PAGES = {
    "accounts": "/v1/billing/admin/accounts?query=console",
    "account": "/v1/billing/admin/accounts/{user_id}",
    "audit": "/v1/billing/admin/audit",
    "stripe": "/v1/billing/admin/stripe-events",
    "operations": "/v1/billing/admin/health",
}


@pytest.mark.parametrize("name", sorted(PAGES))
def test_each_operator_page_loads_its_data(console_stack: ConsoleStack, story: StoryResult, name: str):
    path = PAGES[name].format(user_id=console_stack.user_id)
    if console_stack.answers_501(path):
        pytest.skip(f"GET {path} answers 501 (UNIMPLEMENTED) on this server: the {name} page shows its notice")
    for width in WIDTHS:
        assert story.page(name, width)["unimplemented"] is False, story.page(name, width)


def test_the_account_timeline_explains_the_balance(console_stack: ConsoleStack, story: StoryResult):
    path = f"/v1/billing/admin/accounts/{console_stack.user_id}/ledger"
    if console_stack.answers_501(path):
        pytest.skip(f"GET {path} (ListAccountLedger) answers 501 (UNIMPLEMENTED) on this server")
    # The welcome credit, the daily bonus, a 60 min gift and a 10 min build: the timeline ends where the balance is.
    assert f"available after this page {shown(console_stack.total_seconds)}." in story.data["timeline"]["summary"], story.data


def test_a_grant_with_a_reason_changes_the_balance_and_leaves_an_audit_row(console_stack: ConsoleStack, story: StoryResult):
    unbuilt = console_stack.unbuilt()
    if unbuilt:
        pytest.skip(f"answering 501 (UNIMPLEMENTED) on this server: {', '.join(unbuilt)}")
    grant = story.data["grant"]
    assert (grant["before"], grant["after"]) == (shown(console_stack.total_seconds), shown(console_stack.total_seconds + 1800)), grant
    assert "Grant" in grant["audit"] and console_stack.admin.key_id in grant["audit"], grant


def demo_minutes(seconds: int) -> str:
    """A total as the demo's balance shows it (clients/react/src/format.ts minutes: whole minutes)."""
    return f"{seconds // 60} min"


def test_the_users_demo_page_shows_the_grant_live(console_stack: ConsoleStack, story: StoryResult):
    unbuilt = console_stack.unbuilt()
    if unbuilt:
        pytest.skip(f"answering 501 (UNIMPLEMENTED) on this server: {', '.join(unbuilt)}")
    demo = story.data["demo-live"]
    assert demo["user"] == f"Welcome, {console_stack.user_id}", demo
    # Open before the grant, on its stream; after it, the new total in the same document (no reload).
    assert demo["before"] == demo_minutes(console_stack.total_seconds), demo
    assert demo["after"] == demo_minutes(console_stack.total_seconds + 1800), demo
    assert (demo["reloaded"], demo["live"], demo["errors"]) == (False, "yes", []), demo


def test_finding_a_user_by_payment_id_and_a_refund_whose_claw_back_arrives(console_stack: ConsoleStack, story: StoryResult):
    unbuilt = console_stack.unbuilt() + [path for path in ("GET /v1/billing/admin/accounts?query=pi_x",)
                                         if console_stack.answers_501(path.split(" ", 1)[1])]
    if unbuilt:
        pytest.skip(f"answering 501 (UNIMPLEMENTED) on this server: {', '.join(unbuilt)}")
    refund = story.data["refund"]
    assert "Stripe payment" in refund["matchedBy"], refund
    # After the grant story's +30 min; the refund's webhook takes the package's seconds back.
    after_grant = console_stack.total_seconds + 1800
    assert (refund["before"], refund["after"]) == (shown(after_grant), shown(after_grant - console_stack.package_seconds)), refund


def test_the_one_time_url_of_billing_console_login_signs_in(console_stack: ConsoleStack, story: StoryResult):
    if "login-url" not in story.data:
        pytest.skip("`billing console-login` is not built on this branch")
    signed = story.data["login-url"]
    assert signed["url"] == console_stack.console_url, signed  # the code left the address bar
    assert signed["keyId"].startswith("bk_") and signed["expires"], signed


def test_the_login_link_leaves_the_address_bar(console_stack: ConsoleStack, story: StoryResult):
    link = story.data["login-link"]
    assert link["url"] == console_stack.console_url, link
    assert "login" not in link["url"]
    assert "sign-in link" in link["alert"], link
