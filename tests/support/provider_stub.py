"""An HTTP server answering the Stripe SDK as Stripe would, or as a broken Stripe or a proxy in
front of it would: canned answers per (method, path prefix), for the failures the stand-in does
not make (a 404 page that is not JSON, 401, 409, 429, 5xx)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest

JSON = "application/json"


def stripe_error(kind: str, message: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message} | ({"code": code} if code else {})}


class ProviderStub:
    """A customer with a saved card, and payments that succeed, unless `answer` says otherwise."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self._answers: list[tuple[str, str, int, bytes, str]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._reply()

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self._reply()

            def _reply(self) -> None:
                stub.requests.append((self.command, self.path))
                status, body, content_type = stub._answer_for(self.command, self.path)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Stripe-Should-Retry", "false")  # the SDK's retries would only add sleeps
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.api_base = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def answer(self, method: str, path_prefix: str, status: int, body: dict[str, Any] | str,
               content_type: str | None = None) -> None:
        """From now on, `method path_prefix...` is answered so (the newest rule first)."""
        raw = json.dumps(body).encode() if isinstance(body, dict) else body.encode()
        self._answers.insert(0, (method, path_prefix, status, raw, content_type or (JSON if isinstance(body, dict) else
                                                                                   "text/html")))

    def paths(self, method: str) -> list[str]:
        return [path for m, path in self.requests if m == method]

    def _answer_for(self, method: str, path: str) -> tuple[int, bytes, str]:
        for rule_method, prefix, status, body, content_type in self._answers:
            if method == rule_method and path.startswith(prefix):
                return status, body, content_type
        if method == "POST" and path.startswith("/v1/customers"):
            return 200, json.dumps({"id": "cus_stub", "object": "customer"}).encode(), JSON
        if method == "GET" and path.startswith("/v1/customers/"):
            customer = path.split("/")[3].split("?")[0]
            body = {"id": customer, "object": "customer", "invoice_settings": {"default_payment_method": "pm_stub"}}
            return 200, json.dumps(body).encode(), JSON
        if method == "POST" and path.startswith("/v1/payment_intents"):
            return 200, json.dumps({"id": "pi_stub", "object": "payment_intent", "status": "succeeded"}).encode(), JSON
        return 404, json.dumps(stripe_error("invalid_request_error", f"no stub for {method} {path}")).encode(), JSON

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def provider_stub() -> Iterator[ProviderStub]:
    stub = ProviderStub()
    try:
        yield stub
    finally:
        stub.close()
