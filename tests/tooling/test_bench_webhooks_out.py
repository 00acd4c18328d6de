"""bench/webhooks_out.py: the receiver answers and notes each delivery; the figures and targets."""

from __future__ import annotations

import json
import socket

from bench import report, webhooks_out


def post(url_port: int, body: bytes, close: bool = True) -> bytes:
    with socket.create_connection(("127.0.0.1", url_port)) as connection:
        connection.sendall(b"POST /hooks HTTP/1.1\r\nHost: x\r\nContent-Length: " + str(len(body)).encode()
                           + (b"\r\nConnection: close" if close else b"") + b"\r\n\r\n" + body)
        connection.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := connection.recv(4096):
            answer += chunk
        return answer


def test_the_receiver_answers_200_and_keeps_each_events_first_arrival():
    receiver = webhooks_out.Receiver()
    try:
        first = post(receiver.port, json.dumps({"id": "evt_a"}).encode())
        post(receiver.port, json.dumps({"id": "evt_a"}).encode())  # a redelivery: its first arrival counts
        post(receiver.port, json.dumps({"id": "evt_b"}).encode(), close=False)
        arrivals = receiver.arrivals()
    finally:
        receiver.close()
    assert first.startswith(b"HTTP/1.1 200 ")
    assert set(arrivals) == {"evt_a", "evt_b"} and receiver.count() == 3


def test_lag_drain_and_ratio_figures():
    created = {"a": 10.0, "b": 10.5, "c": 11.0}
    steady = webhooks_out.lag_figures(created, {"a": 10.01, "b": 10.52}, window_s=1.0)
    assert (steady["events"], steady["delivered"], steady["missing"]) == (3, 2, 1)
    assert steady["lag_p99_ms"] == 20.0
    drain = webhooks_out.drain_figures(created, {"a": 20.0, "b": 21.0, "c": 22.0})
    assert (drain["drain_seconds"], drain["events_per_s"]) == (2.0, 1.0)
    rounds = [({"rps": 950.0}, {"rps": 1000.0}), ({"rps": 900.0}, {"rps": 1000.0}), ({"rps": 990.0}, {"rps": 1000.0})]
    assert webhooks_out.consume_ratio(rounds) == 0.95


def outbound(p99_ms: float, missing: int = 0, ratio: float = 0.95) -> dict:
    steady = {"lag_p50_ms": 5.0, "lag_p99_ms": p99_ms, "lag_max_ms": p99_ms, "delivered_per_s": 200.0,
              "written_per_s": 200.0, "missing": missing}
    return {"rate": 200.0, "steady_seconds": 30.0, "steady": steady, "grants": {"errors": 0, "p99_ms": 9.0},
            "drain": {"events_per_s": 900.0, "backlog_events": 5000, "drain_seconds": 5.5, "missing": 0},
            "consume_rounds": [(950.0, 1000.0)], "consume_ratio": ratio, "consume_clean": True}


def test_the_targets_judge_the_p99_the_missing_events_and_the_consume_ratio():
    met = report.summarize(None, [], [], outbound=outbound(40.0))
    judged = {name: target["met"] for name, target in met.items() if "outbound" in name or "webhook endpoint" in name}
    assert list(judged.values()) == [True, True]
    assert not any(t["met"] for n, t in report.summarize(None, [], [], outbound=outbound(1100.0)).items() if "outbound" in n)
    assert not any(t["met"] for n, t in report.summarize(None, [], [], outbound=outbound(40.0, missing=1)).items()
                   if "outbound" in n)
    assert not any(t["met"] for n, t in report.summarize(None, [], [], outbound=outbound(40.0, ratio=0.85)).items()
                   if "webhook endpoint" in n)
    assert "commit-to-delivery p50 5.0 p99 40.0" in webhooks_out.line(outbound(40.0))
