"""Every line the server process writes is one JSON object (issue 19, item 7): gRPC core's own
text, and what an unauthenticated peer puts in it (a GOAWAY's debug data), arrives wrapped and
escaped in a record's message, never as a line of its own."""

from __future__ import annotations

import json
import socket
import struct

import pytest

from testkit.processes import start_billing_server, stop_process

FORGED = b'{"level":"INFO","logger":"billing.entrypoints.server","message":"forged","request_id":null}'
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def _frame(kind: int, payload: bytes, flags: int = 0, stream: int = 0) -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def _send_goaway(target: str, debug_data: bytes) -> None:
    """An HTTP/2 client that says hello and leaves with a GOAWAY carrying `debug_data`, unsigned."""
    host, port = target.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        settings, goaway = _frame(0x4, b""), _frame(0x7, struct.pack(">II", 0, 0x2) + debug_data)
        connection.sendall(PREFACE + settings + goaway)
        try:
            while connection.recv(65536):  # until the server closes: it has read the GOAWAY
                pass
        except OSError:
            pass


@pytest.fixture
def chatty_server(database_url, tmp_path):
    """gRPC core at its most verbose: it writes to fd 2 on every connection."""
    server = start_billing_server(database_url, tmp_path, migrate=False,
                                  extra_env={"GRPC_VERBOSITY": "debug", "GRPC_TRACE": "http,api"})
    try:
        yield server
    finally:
        stop_process(server.process)


def test_grpc_cores_text_and_a_peers_goaway_data_are_json_lines_with_the_forgery_escaped(chatty_server):
    for _ in range(3):
        _send_goaway(chatty_server.grpc_target, b"bye\n" + FORGED + b"\nE0101 00:00:00.000000 1 x.cc:1] " + FORGED)
    stop_process(chatty_server.process)  # its exit drains what is still in the pipe

    raw = chatty_server.stderr_log.read_bytes()
    lines = raw.decode("utf-8").splitlines()
    assert len(lines) > 10, "gRPC core wrote its trace"
    records = []
    for line in lines:
        records.append(json.loads(line))  # every line parses
        assert isinstance(records[-1], dict) and {"timestamp", "level", "logger", "message"} <= set(records[-1])
    assert not any(record.get("message") == "forged" for record in records), "no forged record"
    assert any(FORGED.decode() in record["message"] for record in records), "the debug data, escaped in a message"
    assert any(record["logger"] == "stderr" for record in records), "gRPC core's lines are wrapped"
    assert all(line.strip() != FORGED.decode() for line in lines)
