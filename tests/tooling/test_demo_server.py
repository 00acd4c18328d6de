"""devstack.demo_server's HTTP side with a fake app backend: the built files (with the app's routes
falling back to index.html, never a file outside them), /demo/config and /demo/session (only for the
demo's own Host and Origin); and the process stopping cleanly on SIGTERM."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import grpc
import pytest

from billing.adapters.key_secrets import MasterKey
from billing.settings import Settings
from devstack.demo_server import DemoSettings, _handler_class
from testkit.processes import free_port

SESSION = {"key_id": "sk_x", "secret": "s", "user_id": "demo-user", "expires_at": "2030-01-01T00:00:00Z"}


class FakeBackend:
    def __init__(self, settings: DemoSettings):
        self.settings = settings
        self.failing = False

    def session_key(self) -> dict[str, Any]:
        if self.failing:
            raise grpc.RpcError()
        return SESSION


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[int, FakeBackend, Path]]:
    static = tmp_path / "dist"
    (static / "assets").mkdir(parents=True)
    (static / "index.html").write_text("<!doctype html><title>demo</title>")
    (static / "assets" / "app.js").write_text("console.log(1)")
    (tmp_path / "secret.txt").write_text("not to be served")
    settings = DemoSettings(port=0, grpc_target="127.0.0.1:1", billing_url="http://localhost:8080", user_id="demo-user",
                            currency="EUR", service=Settings.from_environment(database_url="postgresql://unused"),
                            master_key=MasterKey(b"k" * 32), static_dir=static)
    backend = FakeBackend(settings)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(backend))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server.server_address[1], backend, static
    finally:
        server.shutdown()
        server.server_close()


def request(port: int, method: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, str, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type") or "", response.read()
    finally:
        connection.close()


def test_serves_the_built_files_and_the_app_routes_as_index_html(demo):
    port, _, _ = demo
    status, content_type, _ = request(port, "GET", "/assets/app.js")
    assert status == 200 and content_type.endswith("javascript")
    for route in ("/", "/?purchased=true", "/settings"):
        status, content_type, body = request(port, "GET", route)
        assert (status, content_type) == (200, "text/html") and b"<title>demo</title>" in body, route
    assert request(port, "GET", "/assets/missing.js")[0] == 404


def test_never_serves_a_file_outside_the_build(demo):
    port, _, _ = demo
    assert request(port, "GET", "/../secret.txt")[0] == 404
    status, _, body = request(port, "GET", "/../secret")
    assert status == 200 and b"not to be served" not in body


def test_says_how_to_build_the_app_when_it_is_not_built(demo):
    port, _, static = demo
    (static / "index.html").unlink()
    status, _, body = request(port, "GET", "/")
    assert status == 503 and b"make demo" in body


def test_config_names_the_rest_api_the_user_and_the_currency(demo):
    port, _, _ = demo
    status, content_type, body = request(port, "GET", "/demo/config")
    assert (status, content_type) == (200, "application/json")
    assert json.loads(body) == {"billing_url": "http://localhost:8080", "user_id": "demo-user", "currency": "EUR"}


def test_session_is_a_post_answering_the_backends_user_key_or_503(demo):
    port, backend, _ = demo
    assert request(port, "GET", "/demo/session")[0] == 404
    status, _, body = request(port, "POST", "/demo/session")
    assert status == 200 and json.loads(body) == SESSION
    backend.failing = True
    status, _, body = request(port, "POST", "/demo/session")
    assert status == 503 and json.loads(body)["error"] == "UNAVAILABLE"


def test_session_is_only_for_the_demos_own_host_and_pages(demo):
    port, _, _ = demo
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"LOCALHOST:{port}"):
        for origin in (None, f"http://localhost:{port}", f"http://127.0.0.1:{port}"):
            headers = {"Host": host} | ({"Origin": origin} if origin else {})
            status, _, body = request(port, "POST", "/demo/session", headers)
            assert status == 200 and json.loads(body) == SESSION, headers
    # DNS rebinding: another site's name resolved to 127.0.0.1, or this port reached by another one.
    for host in (f"evil.example:{port}", "evil.example", f"localhost:{port + 1}", "localhost", ""):
        status, _, body = request(port, "POST", "/demo/session", {"Host": host, "Origin": f"http://{host}"})
        assert status == 421 and "secret" not in json.loads(body), host
        assert request(port, "GET", "/demo/config", {"Host": host})[0] == 421, host
    for origin in ("http://evil.example", f"http://localhost:{port + 1}", f"https://localhost:{port}", "null"):
        status, _, body = request(port, "POST", "/demo/session", {"Origin": origin})
        assert status == 403 and json.loads(body)["error"] == "FORBIDDEN_ORIGIN", origin


# A second stop signal while the first is being handled (Ctrl-C reaches every process of `make run`,
# whose SIGTERM follows): sent from inside the cleanup, so it always lands there.
STOP_TWICE = """
import os, signal
import devstack.demo_server as demo

def close(self):
    os.kill(os.getpid(), signal.SIGINT)
    os.kill(os.getpid(), signal.SIGTERM)
    print("closed", flush=True)

demo.AppBackend.close = close
demo.main()
"""


def test_sigterm_stops_the_process_cleanly_even_when_signals_follow(tmp_path: Path):
    port = free_port()
    env = os.environ | {"BILLING_DEMO_PORT": str(port), "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/unused",
                        "BILLING_MASTER_KEY": "ab" * 32}
    process = subprocess.Popen([sys.executable, "-c", STOP_TWICE], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if request(port, "GET", "/demo/config")[0] == 200:
                    break
            except OSError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, "the demo server answers"
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "closed" in out and "Traceback" not in err and "KeyboardInterrupt" not in err, err
