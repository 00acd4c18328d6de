"""The demo app's "app backend", which `make run` serves at http://localhost:3000 (BILLING_DEMO_PORT;
0: not started): the built files of clients/demo (`make demo`) and the two calls a real app backend
answers for its logged-in user.

    GET  /demo/config   {"billing_url", "user_id", "currency"}: where the REST API is, who is signed in
    POST /demo/session  {"key_id", "secret", "user_id", "expires_at"}: a short-lived user key for the
                        browser (gRPC CreateSessionKey, with this backend's service key), after
                        creating the user's account if it is missing (CreateAccount is idempotent)

The browser only ever holds that user key. The service key is this process's own: a row created in
the database like `billing keys create --scope service` when first needed (and again before it
expires), revoked when the process stops. The demo has one user (BILLING_DEMO_USER, default
demo-user) and no login: anyone who can reach the port acts as that user, so it listens on
127.0.0.1 only, and /demo/ answers only a request addressed to this server by a loopback name
(Host: localhost:<port> or 127.0.0.1:<port>; else 421) and, for a session, coming from one of the
demo's own pages (an Origin header, when sent, of http://localhost:<port> or http://127.0.0.1:<port>;
else 403): a page of another site whose name is made to resolve to 127.0.0.1 (DNS rebinding) gets no
key. Standard library HTTP server, as the Stripe stand-in.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import signal
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

import grpc
import psycopg

from billing.adapters.key_secrets import MasterKey
from billing.entrypoints.keys import create_stored_key, revoke_stored_key
from billing.domain.auth import ApiKey, Scope
from billing.settings import LOOPBACK, LOOPBACK_NAMES, REPO_ROOT, Settings, demo_origins, demo_port
from billing.settings import text as setting_text
from billing.v1 import accounts_pb2, billing_service_pb2_grpc, keys_pb2

log = logging.getLogger("devstack.demo_server")

STATIC_DIR = REPO_ROOT / "clients" / "demo" / "dist"
SESSION_KEY_TTL_SECONDS = 3600  # the client fetches another a minute before it expires
SERVICE_KEY_TTL = timedelta(days=1)
SERVICE_KEY_RENEW_BEFORE = timedelta(hours=1)
GRPC_TIMEOUT_SECONDS = 5.0
# Servers copy the keys table every 5 s: a service key younger than this may not be known yet.
NEW_KEY_UNKNOWN_SECONDS = 10.0
# How long /demo/session waits for a backend still starting (database, migrations, gRPC server).
BACKEND_START_WAIT_SECONDS = 30.0
RETRY_PAUSE_SECONDS = 0.5


@dataclass(frozen=True)
class DemoSettings:
    port: int
    grpc_target: str
    billing_url: str  # the REST API as the browser reaches it (Envoy's public listener)
    user_id: str
    currency: str
    service: Settings  # the billing service's: its service key is made through the service's composition root
    master_key: MasterKey
    static_dir: Path = STATIC_DIR

    @classmethod
    def from_environment(cls, settings: Settings) -> "DemoSettings":
        return cls(
            port=demo_port(),
            grpc_target=f"{LOOPBACK}:{settings.server.grpc_port}",
            billing_url=f"http://localhost:{settings.edge.rest_port}",
            user_id=setting_text("BILLING_DEMO_USER"),
            currency=setting_text("BILLING_DEMO_CURRENCY"),
            service=settings,
            master_key=MasterKey.load(settings.keys.master_key_path, settings.keys.master_key_hex),
        )


class ServiceKey:
    """This backend's service key, created when first needed and again an hour before it expires."""

    def __init__(self, service: Settings, master_key: MasterKey):
        self._service, self._master_key = service, master_key
        self._lock = threading.Lock()
        self._key: ApiKey | None = None
        self._created_monotonic = 0.0

    def metadata(self) -> tuple[tuple[str, str], ...]:
        with self._lock:
            if self._key is None or self._key.expires_at - datetime.now(timezone.utc) < SERVICE_KEY_RENEW_BEFORE:
                self._key = create_stored_key(self._service, Scope.SERVICE, None, SERVICE_KEY_TTL)
                self._created_monotonic = time.monotonic()
                log.info("service key %s created", self._key.key_id)
            key_id = self._key.key_id
        return (("authorization", f"Bearer {key_id}.{self._master_key.secret(key_id)}"),)

    def maybe_unknown_yet(self) -> bool:
        return time.monotonic() - self._created_monotonic < NEW_KEY_UNKNOWN_SECONDS

    def revoke(self) -> None:
        with self._lock:
            if self._key is not None:
                revoke_stored_key(self._service, self._key.key_id)
                self._key = None


class AppBackend:
    """What /demo/session does: the account (once per process), then a session key, over gRPC."""

    def __init__(self, settings: DemoSettings):
        self.settings = settings
        self.service_key = ServiceKey(settings.service, settings.master_key)
        self._channel = grpc.insecure_channel(settings.grpc_target)
        self._stub = billing_service_pb2_grpc.BillingServiceStub(self._channel)
        self._account_ready = False

    def session_key(self) -> dict[str, Any]:
        deadline = time.monotonic() + BACKEND_START_WAIT_SECONDS
        while True:
            try:
                return self._session_key_once()
            except (grpc.RpcError, psycopg.Error) as error:
                if not self._starting_up(error) or time.monotonic() > deadline:
                    raise
                time.sleep(RETRY_PAUSE_SECONDS)

    def _session_key_once(self) -> dict[str, Any]:
        metadata = self.service_key.metadata()
        user_id = self.settings.user_id
        if not self._account_ready:
            self._stub.CreateAccount(accounts_pb2.CreateAccountRequest(user_id=user_id), metadata=metadata,
                                     timeout=GRPC_TIMEOUT_SECONDS)
            self._account_ready = True
        reply = self._stub.CreateSessionKey(
            keys_pb2.CreateSessionKeyRequest(user_id=user_id, ttl_seconds=SESSION_KEY_TTL_SECONDS),
            metadata=metadata, timeout=GRPC_TIMEOUT_SECONDS,
        )
        assert reply.user_id == user_id and reply.scope == str(Scope.USER), "a user key for the demo user only"
        return {"key_id": reply.key_id, "secret": reply.secret, "user_id": reply.user_id,
                "expires_at": reply.expires_at.ToJsonString()}

    def _starting_up(self, error: Exception) -> bool:
        """The database not up or not migrated yet, the server not listening yet, or our new key not yet copied."""
        if isinstance(error, psycopg.Error):
            return True
        assert isinstance(error, grpc.RpcError)
        code = error.code()
        return code == grpc.StatusCode.UNAVAILABLE or (
            code == grpc.StatusCode.UNAUTHENTICATED and self.service_key.maybe_unknown_yet()
        )

    def close(self) -> None:
        self._channel.close()
        self.service_key.revoke()


def _handler_class(backend: AppBackend) -> type[BaseHTTPRequestHandler]:
    settings = backend.settings
    static_root = settings.static_dir.resolve()

    class Handler(BaseHTTPRequestHandler):
        server_version = "billing-demo"

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path.startswith("/demo/") and not self._addressed_to_us():
                return
            if path == "/demo/config":
                self._json(200, {"billing_url": settings.billing_url, "user_id": settings.user_id,
                                 "currency": settings.currency})
            elif path.startswith("/demo/"):
                self._json(404, {"error": "NOT_FOUND"})
            else:
                self._static(path)

        def do_POST(self) -> None:
            if urlsplit(self.path).path != "/demo/session":
                self._json(404, {"error": "NOT_FOUND"})
                return
            if not self._addressed_to_us() or not self._from_our_pages():
                return
            try:
                self._json(200, backend.session_key())
            except (grpc.RpcError, psycopg.Error) as error:
                log.warning("no session key: %s", error)
                self._json(503, {"error": "UNAVAILABLE", "message": "the billing service did not answer"})

        def _port(self) -> int:
            address = self.server.server_address
            assert isinstance(address, tuple), "a TCP server"
            return int(address[1])

        def _addressed_to_us(self) -> bool:
            """Host names this server by a loopback name and its port; else 421 (DNS rebinding)."""
            host = (self.headers.get("Host") or "").strip().lower()
            if host in {f"{name}:{self._port()}" for name in LOOPBACK_NAMES}:
                return True
            log.warning("refused %s %s for Host %r", self.command, self.path, host[:100])
            self._json(421, {"error": "MISDIRECTED_REQUEST", "message": "address the demo as localhost or 127.0.0.1"})
            return False

        def _from_our_pages(self) -> bool:
            """An Origin header, when the browser sends one, is one of the demo's own; else 403."""
            origin = self.headers.get("Origin")
            if origin is None or origin in demo_origins(self._port()):
                return True
            log.warning("refused %s %s for Origin %r", self.command, self.path, origin[:100])
            self._json(403, {"error": "FORBIDDEN_ORIGIN", "message": "only the demo's own pages get a session"})
            return False

        def _static(self, path: str) -> None:
            target = (static_root / path.lstrip("/")).resolve()
            if not target.is_relative_to(static_root) or not target.is_file():
                # The app's own routes (/, /?purchased=true) are index.html; a missing asset is a 404.
                if Path(path).suffix:
                    self._send(404, b"not found", "text/plain; charset=utf-8")
                    return
                target = static_root / "index.html"
            if not target.is_file():
                self._send(503, b"The demo app is not built: run `make demo` (make run does).", "text/plain; charset=utf-8")
                return
            content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
            self._send(200, target.read_bytes(), content_type)

        def _json(self, status: int, body: dict[str, Any]) -> None:
            self._send(status, json.dumps(body).encode(), "application/json")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")  # session keys, and a rebuilt app on reload
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug(format, *args)

    return Handler


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="demo server: %(message)s")
    settings = DemoSettings.from_environment(Settings.from_environment())
    backend = AppBackend(settings)
    server = ThreadingHTTPServer((LOOPBACK, settings.port), _handler_class(backend))
    server.daemon_threads = True

    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        # Ctrl-C reaches every process of `make run`, whose SIGTERM follows: the first signal ends
        # serve_forever (shutdown() waits for it, so from another thread), the next ones are no-ops;
        # none raises into the cleanup below.
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("the demo app on http://localhost:%d (user %s)", settings.port, settings.user_id)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        try:
            backend.close()
        except psycopg.Error as error:
            log.warning("the service key was not revoked (it expires within a day): %s", error)


if __name__ == "__main__":
    main()
