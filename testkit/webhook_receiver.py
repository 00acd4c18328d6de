"""A webhook receiver for the outbound-event tests (issue 22): a real HTTP server on loopback that
verifies every delivery's signature with `standardwebhooks` and answers as the test says.

`answer(event_id, attempt)` -> an HTTP status, or DROP to close the connection without answering;
`attempt` counts the requests this receiver saw for that id (1 = the first). Every request is kept
(`received`): the id from the payload, the exact bytes, whether the signature verified and the
`webhook-id` header equals the payload's id, what was answered, and when."""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook

DROP = "drop"
Answer = int | str


class _Server(ThreadingHTTPServer):
    # The sender opens a connection per delivery (Connection: close), up to 32 at once. With
    # socketserver's listen backlog of 5, a busy VM overflowed the accept queue: the kernel dropped
    # the handshake and the sender's retransmitted it 1 s later (TCP's initial retransmission
    # timeout), the whole of the ~1 s p99 test_webhook_sending.py once printed (TcpExt ListenOverflows
    # and TCPSynRetrans moved with it). A receiver in production listens with a backlog in the hundreds.
    request_queue_size = 1024


@dataclass(frozen=True)
class Received:
    id: str
    body: bytes
    payload: dict[str, Any]
    verified: bool  # the signature verifies with the endpoint's secret and webhook-id == payload id
    answered: Answer
    attempt: int
    at: float  # time.time() on arrival


class WebhookReceiver:
    def __init__(self, answer: Callable[[str, int], Answer], secret: str = ""):
        self.answer = answer
        self.secret = secret  # the endpoint's; may be set once the endpoint is created
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.attempts: dict[str, int] = defaultdict(int)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                at = time.time()
                try:
                    payload = Webhook(receiver.secret).verify(body, dict(self.headers.items()))
                    verified = self.headers["webhook-id"] == payload["id"]
                except Exception:
                    payload, verified = json.loads(body), False
                with receiver.lock:
                    receiver.attempts[payload["id"]] += 1
                    attempt = receiver.attempts[payload["id"]]
                    decision = receiver.answer(payload["id"], attempt)
                    receiver.received.append(Received(payload["id"], body, payload, verified, decision, attempt, at))
                if decision == DROP:
                    self.close_connection = True
                    self.connection.close()
                    return
                self.send_response(int(decision))
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def requests(self) -> list[Received]:
        with self.lock:
            return list(self.received)

    def delivered(self) -> set[str]:
        """The ids answered 2xx at least once."""
        with self.lock:
            return {r.id for r in self.received if r.answered == 200}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
