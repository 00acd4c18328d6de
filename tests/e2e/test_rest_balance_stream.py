"""Live balance through Envoy: GET /v1/billing/balance/{user_id}/stream as Server-Sent Events."""

from __future__ import annotations

import http.client as httpclient
import json
import time
import uuid

import pytest

from billing.v1 import billing_service_pb2_grpc, consumption_pb2

from tests.e2e.helpers import assert_error, call, create_account, new_user
from testkit.signing import SigningKey, signed_channel

READ_TIMEOUT_SECONDS = 5.0
FAN_OUT_SECONDS_MAX = 1.0


class EventStream:
    """One open stream: its status and headers, then its events (`data:` JSON) one at a time."""

    def __init__(self, e2e, path: str, key: SigningKey | None):
        self._connection = httpclient.HTTPConnection("127.0.0.1", e2e.envoy.listen_port, timeout=READ_TIMEOUT_SECONDS)
        headers = key.rest_headers("GET", path) if key is not None else {}
        self._connection.request("GET", path, headers=headers)
        self._response = self._connection.getresponse()
        self.status = self._response.status
        self.headers = {name.lower(): value for name, value in self._response.getheaders()}

    def error_body(self) -> dict:
        return json.loads(self._response.read())

    def next_event(self) -> dict:
        data = []
        while True:
            line = self._response.readline()
            assert line, "the stream ended"
            line = line.rstrip(b"\r\n")
            if not line:
                if data:
                    return json.loads(b"\n".join(data))
                continue
            if line.startswith(b"data:"):
                data.append(line[5:].lstrip())

    def next_balance(self) -> dict:
        while True:
            event = self.next_event()
            if not event.get("heartbeat"):
                return event

    def close(self) -> None:
        self._connection.close()


def _stream_path(user_id: str, since_version: int | None = None) -> str:
    path = f"/v1/billing/balance/{user_id}/stream"
    return path if since_version is None else f"{path}?since_version={since_version}"


@pytest.fixture()
def watched_user(e2e):
    user_id = new_user()
    create_account(e2e.http, user_id)
    return user_id


def test_a_signed_stream_is_event_stream_and_starts_with_the_get_balance_answer(e2e, watched_user):
    stream = EventStream(e2e, _stream_path(watched_user), e2e.admin_key)
    try:
        assert stream.status == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        first = stream.next_event()
        _, _, balance = call(e2e.http, "GET", f"/v1/billing/balance/{watched_user}")
        assert first["heartbeat"] is False
        assert int(first["version"]) > 0
        assert first["balance"] == balance
    finally:
        stream.close()


def test_a_quiet_stream_sends_heartbeats_through_envoy(e2e, watched_user):
    from tests.e2e.conftest import E2E_HEARTBEAT_SECONDS

    stream = EventStream(e2e, _stream_path(watched_user), e2e.admin_key)
    try:
        stream.next_balance()
        started = time.monotonic()
        assert stream.next_event() == {"version": "0", "heartbeat": True}
        assert time.monotonic() - started < E2E_HEARTBEAT_SECONDS + 1.0
    finally:
        stream.close()


def test_a_consume_over_grpc_reaches_the_stream_within_a_second(e2e, watched_user):
    stream = EventStream(e2e, _stream_path(watched_user), e2e.admin_key)
    try:
        before = stream.next_balance()
        with signed_channel(e2e.grpc_target) as channel:
            stub = billing_service_pb2_grpc.BillingServiceStub(channel)
            started = time.monotonic()
            stub.Consume(consumption_pb2.ConsumeRequest(
                user_id=watched_user, operation="build", seconds=60, idempotency_key=uuid.uuid4().hex
            ))
        after = stream.next_balance()
        assert time.monotonic() - started < FAN_OUT_SECONDS_MAX
        assert int(after["version"]) > int(before["version"])
        assert after["balance"]["totals"]["total_seconds"] == before["balance"]["totals"]["total_seconds"] - 60
    finally:
        stream.close()


def test_a_resumed_stream_sends_only_what_the_client_has_not_seen(e2e, watched_user):
    stream = EventStream(e2e, _stream_path(watched_user), e2e.admin_key)
    current = stream.next_balance()
    stream.close()
    version = int(current["version"])
    up_to_date = EventStream(e2e, _stream_path(watched_user, since_version=version), e2e.admin_key)
    try:
        assert up_to_date.status == 200
        assert up_to_date.next_event() == {"version": "0", "heartbeat": True}
    finally:
        up_to_date.close()
    behind = EventStream(e2e, _stream_path(watched_user, since_version=version - 1), e2e.admin_key)
    try:
        assert behind.next_event() == current
    finally:
        behind.close()


def test_an_unsigned_stream_is_401_json(e2e, watched_user):
    stream = EventStream(e2e, _stream_path(watched_user), None)
    try:
        assert_error(stream.status, stream.error_body(), 401, "UNAUTHENTICATED")
    finally:
        stream.close()


def test_a_user_key_watches_its_own_balance_only(e2e, session_keys, watched_user):
    create_account(e2e.http, session_keys.user_id)
    own = EventStream(e2e, _stream_path(session_keys.user_id), session_keys.user)
    try:
        assert own.status == 200
        assert own.next_event()["heartbeat"] is False
    finally:
        own.close()
    other = EventStream(e2e, _stream_path(watched_user), session_keys.user)
    try:
        assert_error(other.status, other.error_body(), 403, "PERMISSION_DENIED")
    finally:
        other.close()


def test_a_negative_since_version_is_400_naming_the_field(e2e, watched_user):
    stream = EventStream(e2e, _stream_path(watched_user, since_version=-1), e2e.admin_key)
    try:
        assert_error(stream.status, stream.error_body(), 400, "INVALID_ARGUMENT", field="since_version")
    finally:
        stream.close()


def test_more_streams_of_one_user_than_allowed_is_429_with_retry_after(e2e, watched_user):
    streams = []
    try:
        for _ in range(5):  # BILLING_MAX_WATCHERS_PER_USER's default
            streams.append(EventStream(e2e, _stream_path(watched_user), e2e.admin_key))
            assert streams[-1].next_event()
        refused = EventStream(e2e, _stream_path(watched_user), e2e.admin_key)
        streams.append(refused)
        assert refused.headers.get("retry-after")
        assert_error(refused.status, refused.error_body(), 429, "TOO_MANY_WATCHERS", field="user_id")
    finally:
        for stream in streams:
            stream.close()
