"""A keep-alive HTTP/1.1 pool for the REST fuzz (test_fuzz.py): raw bytes out, so a case can be
anything a socket can carry; (status, head, body) back."""

from __future__ import annotations

import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from testkit.http1_client import ProtocolError, parse_http_response
from tests.e2e.fuzz_values import HttpCase

STREAM_READ_TIMEOUT = 3.0  # an SSE reply that has not ended by then is an open stream


class Connection:
    def __init__(self, port: int):
        self.port = port
        self.sock: socket.socket | None = None

    def exchange(self, request: bytes, stream: bool = False) -> tuple[int, bytes, bytes]:
        """(status, head, body); reconnects once if the kept-alive socket was closed under us.
        stream: an SSE request, whose valid reply never ends: read with a short timeout."""
        for attempt in (0, 1):
            if self.sock is None:
                self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=20)
            self.sock.settimeout(STREAM_READ_TIMEOUT if stream else 20)
            try:
                return self._exchange(request)
            except (ConnectionError, ProtocolError, EOFError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _exchange(self, request: bytes) -> tuple[int, bytes, bytes]:
        assert self.sock is not None
        try:
            self.sock.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass  # Envoy answered and closed before reading everything (431, 413): read the reply
        buffer = bytearray()
        while True:
            parsed = parse_http_response(buffer)
            if parsed is not None:
                status, body, used, keep_alive = parsed
                head = bytes(buffer[:buffer.find(b"\r\n\r\n")]).lower()
                if not keep_alive or used != len(buffer):
                    self.close()
                return status, head, body
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    raise
                self.close()  # a reply that does not end (an open stream): its head is enough
                status = int(bytes(buffer[:buffer.find(b"\r\n")]).split()[1])
                return status, bytes(buffer[:end]).lower(), b"<no end within %.0f s>" % STREAM_READ_TIMEOUT
            if not chunk:
                raise EOFError("connection closed before a full reply")
            buffer += chunk

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


class Pool:
    """Admin paths go to the internal listener, as a backend sends them; the rest to the browser's."""

    def __init__(self, ports: tuple[int, int], size: int, prepare: Callable[[HttpCase], HttpCase]):
        self.prepare = prepare  # signs a case just before it is sent
        self.local = threading.local()
        self.ports = ports
        self.executor = ThreadPoolExecutor(size)
        self.connections: list[Connection] = []

    def _connection(self, internal: bool) -> Connection:
        if not hasattr(self.local, "conns"):
            self.local.conns = [Connection(port) for port in self.ports]
            self.connections.extend(self.local.conns)
        return self.local.conns[1 if internal else 0]

    def send_all(self, cases: list[HttpCase]) -> list[tuple[HttpCase, int, bytes, bytes]]:
        def one(case: HttpCase):
            wire = self.prepare(case).wire()
            stream = case.target.split(b"?")[0].endswith(b"/stream")
            return (case, *self._connection(case.target.startswith(b"/v1/billing/admin/")).exchange(wire, stream))

        return list(self.executor.map(one, cases))

    def close(self) -> None:
        self.executor.shutdown()
        for conn in self.connections:
            conn.close()
