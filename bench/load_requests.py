"""The requests of the benchmark's scenarios, as bytes: protobuf built by hand for gRPC, HTTP/1.1
for REST (the C++ generator, bench/grpc_loadgen, builds the same bytes; a test compares them)."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import re
import time
from typing import Callable

SCENARIOS = ("consume", "balance", "batch", "single_check")
PROTOCOLS = ("grpc", "rest")
BATCH_SIZE = 50
BATCH_OPERATIONS = ("build", "plan", "export", "metadata_generation")
CONSUME_OPERATION = "build"
CONSUME_SECONDS = 1
ESTIMATE_SECONDS = 1

SERVICE = "/billing.v1.BillingService/"
GRPC_METHODS = {
    "consume": SERVICE + "Consume",
    "balance": SERVICE + "GetBalance",
    "batch": SERVICE + "CheckSufficientBatch",
    "single_check": SERVICE + "CheckSufficientBatch",
}
REST_PATHS = {
    "consume": "/v1/billing/consume",
    "balance": "/v1/billing/balance/",  # + user_id
    "batch": "/v1/billing/check-sufficient-batch",
    "single_check": "/v1/billing/check-sufficient-batch",
}
RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9_.]{1,64}")  # goes verbatim into JSON and protobuf keys


def batch_operations(count: int) -> list[tuple[str, int]]:
    """(operation, estimate_seconds) pairs cycling build/plan/export/metadata_generation."""
    return [(BATCH_OPERATIONS[i % len(BATCH_OPERATIONS)], ESTIMATE_SECONDS) for i in range(count)]


def scenario_operations(scenario: str) -> int:
    return {"batch": BATCH_SIZE, "single_check": 1}.get(scenario, 0)


def consume_json(user_id: str, idempotency_key: str) -> bytes:
    return json.dumps(
        {"user_id": user_id, "operation": CONSUME_OPERATION, "seconds": CONSUME_SECONDS, "idempotency_key": idempotency_key},
        separators=(",", ":"),
    ).encode()


def batch_json(user_id: str, count: int) -> bytes:
    operations = [{"operation": op, "estimate_seconds": s} for op, s in batch_operations(count)]
    return json.dumps({"userId": user_id, "operations": operations}, separators=(",", ":")).encode()


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # int32/int64 negatives are 10-byte varints
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def pb_bytes_field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (string, bytes or embedded message)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def pb_string_field(number: int, value: str) -> bytes:
    return pb_bytes_field(number, value.encode()) if value else b""  # proto3: "" is not written


def pb_varint_field(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value) if value else b""  # proto3: 0 is not written


def grpc_balance_request(user_id: str) -> bytes:
    """GetBalanceRequest{user_id}."""
    return pb_string_field(1, user_id)


def grpc_consume_request(user_id: str, idempotency_key: str) -> bytes:
    """ConsumeRequest{user_id, operation, seconds, idempotency_key}."""
    return (
        pb_string_field(1, user_id)
        + pb_string_field(2, CONSUME_OPERATION)
        + pb_varint_field(3, CONSUME_SECONDS)
        + pb_string_field(4, idempotency_key)
    )


def grpc_batch_request(user_id: str, count: int) -> bytes:
    """CheckSufficientBatchRequest{user_id, operations=[OperationEstimate{operation, estimate_seconds}...]}."""
    ops = b"".join(
        pb_bytes_field(2, pb_string_field(1, op) + pb_varint_field(2, s)) for op, s in batch_operations(count)
    )
    return pb_string_field(1, user_id) + ops


def grpc_request(scenario: str, user_id: str, idempotency_key: str = "") -> bytes:
    if scenario == "consume":
        return grpc_consume_request(user_id, idempotency_key)
    if scenario == "balance":
        return grpc_balance_request(user_id)
    return grpc_batch_request(user_id, scenario_operations(scenario))


def rest_request(scenario: str, host: str, user_id: str, idempotency_key: str = "") -> bytes:
    """The whole HTTP/1.1 request (head + body) the REST client sends."""
    if scenario == "balance":
        return f"GET {REST_PATHS['balance']}{user_id} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    body = consume_json(user_id, idempotency_key) if scenario == "consume" else batch_json(user_id, scenario_operations(scenario))
    head = (
        f"POST {REST_PATHS[scenario]} HTTP/1.1\r\nHost: {host}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def make_request_builder(
    protocol: str, scenario: str, host: str, accounts: int, offset: int, run_id: str, *, rng: random.Random | None = None
) -> Callable[[], bytes]:
    """A zero-argument function returning the next request's bytes (random account, fresh key).

    Same bytes as grpc_request / rest_request, from parts prebuilt once: the per-request work is a
    random number, an int->str, a counter and two or three bytes concatenations.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    if scenario not in SCENARIOS:
        raise ValueError(f"scenario must be one of {SCENARIOS}, got {scenario!r}")
    if accounts < 1:
        raise ValueError("accounts must be >= 1")
    if not RUN_ID_PATTERN.fullmatch(run_id):
        raise ValueError(f"run_id must be 1-64 of [A-Za-z0-9_.], got {run_id!r}")
    rand = (rng or random.Random()).random
    base = offset + 1
    key_prefix = f"{run_id}-"
    counter = iter(range(1, 1 << 62)).__next__

    if protocol == "grpc":
        if scenario == "balance":

            def build() -> bytes:
                uid = str(base + int(rand() * accounts)).encode()
                return b"\x0a" + bytes((len(uid),)) + uid

        elif scenario == "consume":
            middle = pb_string_field(2, CONSUME_OPERATION) + pb_varint_field(3, CONSUME_SECONDS) + b"\x22"

            def build() -> bytes:
                uid = str(base + int(rand() * accounts)).encode()
                key = (key_prefix + str(counter())).encode()
                return b"\x0a" + bytes((len(uid),)) + uid + middle + bytes((len(key),)) + key

        else:
            tail = grpc_batch_request("", scenario_operations(scenario))  # user_id "" is not written

            def build() -> bytes:
                uid = str(base + int(rand() * accounts)).encode()
                return b"\x0a" + bytes((len(uid),)) + uid + tail

        if len(str(offset + accounts)) > 127 or len(key_prefix) > 100:
            raise ValueError("user ids and run ids must be short (single-byte protobuf lengths)")
        return build

    if scenario == "balance":
        head = f"GET {REST_PATHS['balance']}".encode()
        tail = f" HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()

        def build() -> bytes:
            return head + str(base + int(rand() * accounts)).encode() + tail

        return build

    head = f"POST {REST_PATHS[scenario]} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: ".encode()
    if scenario == "consume":
        a, b = b'\r\n\r\n{"user_id":"', (
            f'","operation":"{CONSUME_OPERATION}","seconds":{CONSUME_SECONDS},"idempotency_key":"{key_prefix}'
        ).encode()
        fixed = len('{"user_id":"') + len(b) + len('"}')

        def build() -> bytes:
            uid = str(base + int(rand() * accounts)).encode()
            n = str(counter()).encode()
            return head + str(fixed + len(uid) + len(n)).encode() + a + uid + b + n + b'"}'

        return build

    sample = batch_json("", scenario_operations(scenario))  # {"userId":"","operations":[...]}
    a, b = b'\r\n\r\n{"userId":"', sample[len(b'{"userId":"') :]
    fixed = len(sample)

    def build() -> bytes:
        uid = str(base + int(rand() * accounts)).encode()
        return head + str(fixed + len(uid)).encode() + a + uid + b

    return build


def signing(build: Callable[[], bytes], key_id: str, secret: str) -> Callable[[], bytes]:
    """`build`'s HTTP/1.1 requests with the X-HMAC-* headers a client must send (README,
    "Signing requests"): the method, path and query and body as they will go on the wire."""
    key = secret.encode()
    key_header = f"\r\nX-HMAC-Key-Id: {key_id}\r\nX-HMAC-Timestamp: ".encode()

    def signed() -> bytes:
        raw = build()
        head, _, body = raw.partition(b"\r\n\r\n")
        method, path, _ = head.split(b" ", 2)
        stamp = str(int(time.time())).encode()
        canonical = b"%s\n%s\n%s\n%s" % (method, path, stamp, hashlib.sha256(body).hexdigest().encode())
        mac = hmac.new(key, canonical, hashlib.sha256).hexdigest().encode()
        return head + key_header + stamp + b"\r\nX-HMAC-Signature: " + mac + b"\r\n\r\n" + body

    return signed
