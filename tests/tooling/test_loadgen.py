"""The pure parts of the load generators: percentiles, request bytes, HTTP framing, wrk output."""

from __future__ import annotations

import json
import random

import pytest

from bench import load_requests, load_stats, loadgen
from bench.wrk_runner import parse_wrk_output, wrk_command
from billing.v1 import billing_service_pb2, consumption_pb2
from testkit import http1_client

# ------------------------------------------------------------------ percentiles


def test_percentile_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert load_stats.percentile(values, 50) == 50
    assert load_stats.percentile(values, 90) == 90
    assert load_stats.percentile(values, 99) == 99
    assert load_stats.percentile(values, 99.9) == 100
    assert load_stats.percentile(values, 100) == 100
    assert load_stats.percentile(values, 0) == 1
    thousand = [float(v) for v in range(1, 1001)]
    assert load_stats.percentile(thousand, 99.9) == 999
    assert load_stats.percentile([7.0], 99.9) == 7.0
    assert load_stats.percentile([], 50) == 0.0


def test_latency_summary_in_milliseconds():
    latencies = [0.004, 0.001, 0.003, 0.002]  # seconds, unsorted
    summary = load_stats.latency_summary(latencies)
    assert summary == {"p50_ms": 2.0, "p90_ms": 4.0, "p99_ms": 4.0, "p999_ms": 4.0, "max_ms": 4.0}
    assert load_stats.latency_summary([])["max_ms"] == 0.0


# ------------------------------------------------------------------ request bodies


def test_grpc_bytes_are_the_messages():
    consume = consumption_pb2.ConsumeRequest.FromString(load_requests.grpc_consume_request("17", "run-1"))
    assert consume == consumption_pb2.ConsumeRequest(user_id="17", operation="build", seconds=1, idempotency_key="run-1")
    balance = billing_service_pb2.GetBalanceRequest.FromString(load_requests.grpc_balance_request("200"))
    assert balance == billing_service_pb2.GetBalanceRequest(user_id="200")
    batch = consumption_pb2.CheckSufficientBatchRequest.FromString(load_requests.grpc_batch_request("3", 50))
    assert batch.user_id == "3" and len(batch.operations) == 50
    assert [op.operation for op in batch.operations[:5]] == ["build", "plan", "export", "metadata_generation", "build"]
    assert {op.estimate_seconds for op in batch.operations} == {1}
    expected = consumption_pb2.CheckSufficientBatchRequest(
        user_id="3",
        operations=[consumption_pb2.OperationEstimate(operation=op, estimate_seconds=s) for op, s in load_requests.batch_operations(50)],
    )
    assert load_requests.grpc_batch_request("3", 50) == expected.SerializeToString()


def test_rest_bodies():
    assert json.loads(load_requests.consume_json("5", "k-1")) == {
        "user_id": "5", "operation": "build", "seconds": 1, "idempotency_key": "k-1",
    }  # fmt: skip
    batch = json.loads(load_requests.batch_json("5", 50))
    assert batch["userId"] == "5" and len(batch["operations"]) == 50
    assert batch["operations"][3] == {"operation": "metadata_generation", "estimate_seconds": 1}
    assert json.loads(load_requests.batch_json("5", 1))["operations"] == [{"operation": "build", "estimate_seconds": 1}]


def _split_http(request: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = request.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return lines[0], headers, body


def test_rest_request_framing():
    line, headers, body = _split_http(load_requests.rest_request("consume", "h:1", "9", "r-3"))
    assert line == "POST /v1/billing/consume HTTP/1.1"
    assert headers["host"] == "h:1" and headers["content-type"] == "application/json"
    assert int(headers["content-length"]) == len(body) and json.loads(body)["idempotency_key"] == "r-3"
    line, headers, body = _split_http(load_requests.rest_request("balance", "h:1", "42"))
    assert line == "GET /v1/billing/balance/42 HTTP/1.1" and body == b"" and "content-length" not in headers
    line, headers, body = _split_http(load_requests.rest_request("single_check", "h:1", "42"))
    assert line == "POST /v1/billing/check-sufficient-batch HTTP/1.1"
    assert int(headers["content-length"]) == len(body) and len(json.loads(body)["operations"]) == 1


@pytest.mark.parametrize("protocol", load_requests.PROTOCOLS)
@pytest.mark.parametrize("scenario", load_requests.SCENARIOS)
def test_fast_builders_match_the_reference_builders(protocol, scenario):
    accounts, offset, run_id = 1000, 5000, "abc123"
    build = load_requests.make_request_builder(protocol, scenario, "h:1", accounts, offset, run_id, rng=random.Random(7))
    reference = random.Random(7)
    seen_keys = set()
    for n in range(1, 300):
        user_id = str(offset + 1 + int(reference.random() * accounts))
        key = f"{run_id}-{n}" if scenario == "consume" else ""
        if protocol == "grpc":
            expected = load_requests.grpc_request(scenario, user_id, key)
        else:
            expected = load_requests.rest_request(scenario, "h:1", user_id, key)
        assert build() == expected
        assert offset + 1 <= int(user_id) <= offset + accounts
        seen_keys.add(key)
    if scenario == "consume":
        assert len(seen_keys) == 299


def test_builder_rejects_bad_input():
    with pytest.raises(ValueError):
        load_requests.make_request_builder("grpc", "nope", "h:1", 10, 0, "r")
    with pytest.raises(ValueError):
        load_requests.make_request_builder("rest", "balance", "h:1", 0, 0, "r")


# ------------------------------------------------------------------ HTTP/1.1 response framing


def test_parse_content_length_response():
    reply = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
    for cut in range(len(reply)):
        assert http1_client.parse_http_response(reply[:cut]) is None
    assert http1_client.parse_http_response(reply) == (200, b"{}", len(reply), True)
    assert http1_client.parse_http_response(bytearray(reply + b"HTTP/1.1")) == (200, b"{}", len(reply), True)
    closing = b"HTTP/1.1 402 Payment Required\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc"
    assert http1_client.parse_http_response(closing) == (402, b"abc", len(closing), False)


def test_parse_chunked_response():
    reply = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n"
    for cut in range(len(reply)):
        assert http1_client.parse_http_response(reply[:cut]) is None
    assert http1_client.parse_http_response(reply) == (200, b"abcde", len(reply), True)
    with_trailer = reply[:-2] + b"grpc-status: 0\r\n\r\n"
    assert http1_client.parse_http_response(with_trailer) == (200, b"abcde", len(with_trailer), True)


def test_parse_bodyless_and_broken_responses():
    not_modified = b"HTTP/1.1 304 Not Modified\r\netag: x\r\n\r\n"
    assert http1_client.parse_http_response(not_modified) == (304, b"", len(not_modified), True)
    with pytest.raises(http1_client.ProtocolError):
        http1_client.parse_http_response(b"SSH-2.0-OpenSSH\r\n\r\n")
    with pytest.raises(http1_client.ProtocolError):
        http1_client.parse_http_response(b"HTTP/1.1 200 OK\r\nserver: x\r\n\r\nbody until close")


# ------------------------------------------------------------------ config


def test_config_validation_and_defaults():
    cfg = loadgen.LoadConfig(protocol="rest", target="http://127.0.0.1:8080/", scenario="balance", accounts=10, duration_s=1, concurrency=8)
    cfg.validate()
    assert cfg.host_port() == ("127.0.0.1", 8080) and cfg.mode == "closed" and cfg.resolved_connections() == 8
    open_loop = loadgen.LoadConfig(protocol="grpc", target="localhost:1", scenario="batch", accounts=1, duration_s=1, rate=100)
    assert open_loop.mode == "open" and open_loop.resolved_connections() == loadgen.DEFAULT_GRPC_CHANNELS
    with pytest.raises(ValueError):
        loadgen.LoadConfig(protocol="grpc", target="x:1", scenario="batch", accounts=1, duration_s=1).validate()
    with pytest.raises(SystemExit):
        loadgen.parse_args(["--protocol", "grpc", "--target", "x:1", "--scenario", "batch", "--accounts", "1",
                            "--duration", "1", "--concurrency", "2", "--rate", "5"])  # fmt: skip


# ------------------------------------------------------------------ wrk


WRK_STDOUT = """Running 5s test @ http://127.0.0.1:18080/
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    10.29ms    2.11ms  40.12ms   90.00%
  7771 requests in 5.00s, 2.71MB read
Requests/sec:   1553.90
Transfer/sec:    554.46KB
WRK_JSON {"requests":7771,"errors":0,"duration_s":5.001,"rps":1553.9,"p50_ms":9.870,"p90_ms":12.1,"p99_ms":18.0,"p999_ms":30.5,"max_ms":40.12}
"""


def test_parse_wrk_output():
    result = parse_wrk_output(WRK_STDOUT)
    assert result["requests"] == 7771 and result["errors"] == 0 and result["p999_ms"] == 30.5
    with pytest.raises(ValueError, match="no WRK_JSON"):
        parse_wrk_output("Running 5s test\nunable to connect to 127.0.0.1:1 Connection refused\n")
    with pytest.raises(ValueError, match="bad WRK_JSON"):
        parse_wrk_output("WRK_JSON {not json\n")


def test_wrk_command():
    cmd = wrk_command("wrk", "http://127.0.0.1:8080", "batch", 5, 2, 32, 10)
    assert cmd[:9] == ["wrk", "-t", "2", "-c", "32", "-d", "5s", "--timeout", "10s"]
    assert cmd[9] == "-s" and cmd[10].endswith("bench/wrk/batch.lua") and cmd[11] == "http://127.0.0.1:8080/"
    with pytest.raises(ValueError):
        wrk_command("wrk", "http://x", "batch", 5, 4, 2, 10)


def test_run_id_must_be_safe_in_json_and_keys():
    with pytest.raises(ValueError):
        load_requests.make_request_builder("rest", "consume", "h:1", 10, 0, 'a"b')
    cfg = loadgen.LoadConfig(protocol="rest", target="h:1", scenario="consume", accounts=1, duration_s=1, concurrency=1, run_id="x y")
    with pytest.raises(ValueError):
        cfg.validate()
