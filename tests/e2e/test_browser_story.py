"""The demo app in a real browser: `billing-dev run` (server, Envoy, the Stripe stand-in and the demo
server, as `make run` starts them, on free ports and a fresh database) and headless Chromium
driven by clients/demo/story/story.mjs (playwright-core).

The script prints `STEP <name>` per step and stops at `WAIT <name>` until the test writes a line:
the test acts between steps there (see StoryRun). Screenshots go to a temporary folder, or to
BILLING_STORY_SCREENSHOTS (`BILLING_STORY_SCREENSHOTS=docs/screenshots` refreshes the README's).
`make test` builds the demo and installs Chromium first and requires them (BILLING_REQUIRE_BROWSER=1);
run alone without them, the test is skipped.
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import shutil
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator

import pytest

from billing.domain.auth import Scope
from tests.support.database import fresh_database
from testkit.processes import answers_200, REPO_ROOT, VENV_BIN, free_port, health_serving, start_failed, stop_process, tail
from billing.v1 import billing_service_pb2_grpc, consumption_pb2
from testkit.signing import SigningKey, create_key, signed_channel

STORY = REPO_ROOT / "clients" / "demo" / "story" / "story.mjs"
DEMO_DIST = REPO_ROOT / "clients" / "demo" / "dist" / "index.html"
CHROMIUM = Path("/usr/bin/chromium")
STACK_START_TIMEOUT_SECONDS = 40.0
STORY_LINE_TIMEOUT_SECONDS = 40.0  # one step: its waits are 15 s each in the script
STEPS_BEFORE_WAIT = ["welcome", "operations", "insufficient", "checkout", "resumed"]
LIVE_CONSUME_SECONDS = 300  # 45 min left after the resume -> 40 on the page, from the stream


@dataclass(frozen=True)
class DemoStack:
    demo_url: str
    rest_base_url: str
    grpc_target: str
    user_id: str
    service_key: SigningKey  # for the test's own calls (e.g. a consume over gRPC between steps)
    log: Path


@pytest.fixture(scope="module")
def demo_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoStack]:
    node = shutil.which("node")
    if node is None or not CHROMIUM.exists() or not DEMO_DIST.exists() or not (REPO_ROOT / "clients" / "node_modules" / "playwright-core").exists():
        missing = "the demo, playwright-core or Chromium is missing (make test installs and builds them)"
        if os.environ.get("BILLING_REQUIRE_BROWSER") == "1":  # `make test` and CI: a skip would hide a broken story
            pytest.fail(missing)
        pytest.skip(missing)
    with fresh_database("billing_demo") as database_url:
        port = {name: free_port() for name in ("grpc", "rest", "admin_rest", "metrics", "standin", "demo")}
        user_id = f"demo-{uuid.uuid4().hex[:8]}"
        service_key = create_key(database_url, Scope.SERVICE)  # before the server starts: known at once
        env = {name: value for name, value in os.environ.items() if not name.startswith("STRIPE_")} | {
            "DATABASE_URL": database_url,
            "BILLING_GRPC_PORT": str(port["grpc"]),
            "BILLING_REST_PORT": str(port["rest"]),
            "BILLING_ADMIN_REST_PORT": str(port["admin_rest"]),
            "BILLING_METRICS_PORT": str(port["metrics"]),
            "BILLING_STRIPE_STANDIN_PORT": str(port["standin"]),
            "BILLING_DEMO_PORT": str(port["demo"]),
            "BILLING_CORS_ORIGIN": f"http://localhost:{port['demo']}",  # and Checkout's success URL
            "BILLING_DEMO_USER": user_id,
            "BILLING_LOG_FORMAT": "text",
            "PYTHONUNBUFFERED": "1",
        }
        log = tmp_path_factory.mktemp("billing-run") / "billing-run.log"
        with open(log, "wb") as out:
            process = subprocess.Popen([str(VENV_BIN / "billing-dev"), "run"], cwd=REPO_ROOT, env=env, stdout=out,
                                       stderr=subprocess.STDOUT)
        try:
            grpc_target = f"127.0.0.1:{port['grpc']}"
            deadline = time.monotonic() + STACK_START_TIMEOUT_SECONDS
            while not (health_serving(grpc_target) and answers_200(port["demo"], "/demo/config")
                       and answers_200(port["rest"], "/v1/billing/catalog")):
                if process.poll() is not None:
                    start_failed("billing-dev run", process, f"exited with code {process.returncode}", [log])
                if time.monotonic() > deadline:
                    start_failed("billing-dev run", process, f"not serving within {STACK_START_TIMEOUT_SECONDS:.0f}s", [log])
                time.sleep(0.2)
            yield DemoStack(f"http://localhost:{port['demo']}", f"http://127.0.0.1:{port['rest']}", grpc_target,
                            user_id, service_key, log)
        finally:
            stop_process(process, timeout=20)


class StoryRun:
    """story.mjs as a child process: its stdout lines are read in a thread, so every wait has a timeout."""

    def __init__(self, demo_url: str, screenshot_dir: Path):
        self.screenshot_dir = screenshot_dir
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self.data: dict[str, object] = {}
        env = os.environ | {"DEMO_URL": demo_url, "SCREENSHOT_DIR": str(screenshot_dir), "CHROMIUM": str(CHROMIUM)}
        self.process = subprocess.Popen(
            [shutil.which("node") or "node", str(STORY)], cwd=REPO_ROOT, env=env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        assert self.process.stdout is not None
        threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, wanted: str) -> None:
        """Reads lines (keeping DATA ones) until `wanted`; fails with the script's stderr otherwise."""
        deadline = time.monotonic() + STORY_LINE_TIMEOUT_SECONDS
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self._fail(f"no {wanted!r} within {STORY_LINE_TIMEOUT_SECONDS:.0f}s")
            if line is None:
                self._fail(f"the story ended before {wanted!r}")
            self.seen.append(line)
            if line.startswith("DATA "):
                name, _, payload = line[len("DATA "):].partition(" ")
                self.data[name] = json.loads(payload)
            elif line == wanted:
                return
            elif line.startswith(("STEP ", "WAIT ")):
                self._fail(f"{line!r} where {wanted!r} was expected")

    def go_on(self) -> None:
        """Lets the story go on from its WAIT line."""
        assert self.process.stdin is not None
        self.process.stdin.write("go on\n")
        self.process.stdin.flush()

    def _fail(self, why: str) -> None:
        stop_process(self.process, timeout=5)
        stderr = self.process.stderr.read() if self.process.stderr else ""
        pytest.fail(f"browser story: {why}\nlines so far: {self.seen}\nscreenshots: {self.screenshot_dir}\n{stderr}",
                    pytrace=False)

    def finish(self) -> None:
        self.expect("DONE")
        if self.process.wait(timeout=15) != 0:
            self._fail(f"exit code {self.process.returncode}")


def _consumption_entries(database_url_events: list[dict], idempotency_key: str) -> list[dict]:
    return [event for event in database_url_events
            if event["type"] == "consumption" and (event.get("metadata") or {}).get("idempotency_key") == idempotency_key]


def test_the_demo_story_in_a_browser(demo_stack: DemoStack, tmp_path: Path):
    screenshots = Path(os.environ.get("BILLING_STORY_SCREENSHOTS") or tmp_path / "screenshots")
    story = StoryRun(demo_stack.demo_url, screenshots)
    try:
        for name in STEPS_BEFORE_WAIT:
            story.expect(f"STEP {name}")
        story.expect("WAIT after-resume")
        blocked = story.data["blocked"]
        assert isinstance(blocked, dict) and blocked["operation"] == "build" and blocked["seconds"] == 1200, blocked
        assert blocked["suggestion"].startswith("Buy Mini"), blocked

        # The blocked build ran exactly once, with its own idempotency key: 20 minutes, not 40.
        events = _events(demo_stack)
        resumed = _consumption_entries(events, blocked["idempotency_key"])
        assert sum(event["seconds"] for event in resumed) == -1200, resumed
        consumes = {(event.get("metadata") or {}).get("idempotency_key") for event in events if event["type"] == "consumption"}
        assert len(consumes) == 3, events  # two builds, then the resumed one
        assert [event["seconds"] for event in events if event["type"] == "package_credit"] == [3600], events

        # Live balance: a consume over gRPC by another client; the page shows it without a reload.
        with signed_channel(demo_stack.grpc_target, demo_stack.service_key) as channel:
            billing_service_pb2_grpc.BillingServiceStub(channel).Consume(consumption_pb2.ConsumeRequest(
                user_id=demo_stack.user_id, operation="plan", seconds=LIVE_CONSUME_SECONDS,
                idempotency_key=f"story-live-{uuid.uuid4().hex}",
            ))
        story.go_on()
        story.expect("STEP live")
        story.expect("STEP history")
        story.finish()
    finally:
        stop_process(story.process, timeout=5)


def _events(stack: DemoStack) -> list[dict]:
    """The user's ledger through REST (the service key), newest first."""
    path = f"/v1/billing/events/{stack.user_id}?limit=50"
    host, _, port = stack.rest_base_url.removeprefix("http://").partition(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", path, headers=stack.service_key.rest_headers("GET", path))
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    assert response.status == 200, body
    return json.loads(body)["events"]
