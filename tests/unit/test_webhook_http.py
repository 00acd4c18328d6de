"""The webhook HTTP transport: SSRF refusals (loopback, 169.254.169.254, 10.0.0.1, IPv4 in IPv6, a
redirect to them never followed), one resolution (the connection goes to the vetted address), the
timeout, the bounded answer, and the request a receiver gets (verified with standardwebhooks)."""

from __future__ import annotations

import asyncio
import base64
from datetime import datetime, timezone

import pytest
from standardwebhooks.webhooks import Webhook

from billing.adapters.clock import SystemClock
from billing.adapters.webhook_http import HttpWebhookTransport, RefusedTarget, refused_address_reason, vetted_addresses
from billing.domain.delivery_outcomes import RESPONSE_EXCERPT_BYTES, canonical_body
from billing.service.webhook_sender_ports import OutgoingWebhook

SECRET = "whsec_" + base64.b64encode(b"s" * 32).decode()
BODY = canonical_body({"id": "evt_1", "type": "credit.granted", "data": {}})


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.8.9.10", "::1", "169.254.169.254", "fe80::1", "10.0.0.1", "172.16.5.4", "192.168.1.1",
    "100.64.0.1", "fc00::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "0.0.0.0", "::", "224.0.0.1",
    "ff02::1", "192.0.2.1", "240.0.0.1",
])
def test_addresses_inside_are_refused(address):
    assert refused_address_reason(address, allow_private=False) is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address):
    assert refused_address_reason(address, allow_private=False) is None


def test_the_opt_in_allows_private_but_never_multicast_or_unspecified():
    for address in ("127.0.0.1", "10.0.0.1", "169.254.169.254", "::1"):
        assert refused_address_reason(address, allow_private=True) is None
    for address in ("0.0.0.0", "224.0.0.1", "::"):
        assert refused_address_reason(address, allow_private=True) is not None


async def test_a_name_is_refused_when_any_of_its_addresses_is_inside():
    async def rebinding(host, port):
        return ["93.184.216.34", "169.254.169.254"]

    with pytest.raises(RefusedTarget, match="169.254.169.254"):
        await vetted_addresses("https://hooks.example.com/x", False, rebinding)


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "gopher://x", "http:///nohost",
                                 "https://user:pw@example.com/"])
async def test_only_http_and_https_urls_with_a_host(url):
    async def public(host, port):
        return ["93.184.216.34"]

    with pytest.raises(RefusedTarget):
        await vetted_addresses(url, False, public)


class Receiver:
    """A tiny HTTP server on loopback answering each request with `answer` (raw bytes)."""

    def __init__(self, answer: bytes, delay: float = 0.0):
        self.answer = answer
        self.delay = delay
        self.requests: list[tuple[bytes, bytes]] = []

    async def __aenter__(self) -> "Receiver":
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc) -> None:
        self.server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
        body = await reader.readexactly(length)
        self.requests.append((head, body))
        await asyncio.sleep(self.delay)
        writer.write(self.answer)
        await writer.drain()
        writer.close()


def _transport(allow_private: bool, resolved: list[str] | None = None, timeout: float = 2.0) -> HttpWebhookTransport:
    calls = resolved if resolved is not None else []

    async def resolver(host, port):
        calls.append(host)
        return ["127.0.0.1"] if host in ("127.0.0.1", "receiver.test") else ["93.184.216.34"]

    return HttpWebhookTransport(SystemClock(), allow_private=allow_private, timeout_seconds=timeout, resolver=resolver)


def _webhook(url: str, secrets=(SECRET,)) -> OutgoingWebhook:
    return OutgoingWebhook(url, "evt_1", BODY, tuple(secrets))


async def test_loopback_is_refused_without_the_opt_in_and_nothing_connects():
    async with Receiver(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n") as receiver:
        result = await _transport(False).send(_webhook(f"http://127.0.0.1:{receiver.port}/hook"))
        await asyncio.sleep(0.05)
    assert result.status_code is None and "loopback" in (result.error or "")
    assert receiver.requests == []


async def test_a_redirect_to_the_metadata_address_is_not_followed():
    resolved: list[str] = []
    answer = b"HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/latest/meta-data/\r\nContent-Length: 0\r\n\r\n"
    async with Receiver(answer) as receiver:
        result = await _transport(True, resolved).send(_webhook(f"http://receiver.test:{receiver.port}/hook"))
    assert result.status_code == 302 and not result.succeeded  # a failed attempt, retried on the schedule
    assert len(receiver.requests) == 1
    assert resolved == ["receiver.test"]  # 169.254.169.254 was never looked at, let alone connected to


async def test_the_receiver_gets_one_signed_post_on_the_vetted_address():
    async with Receiver(b"HTTP/1.1 204 No Content\r\n\r\n") as receiver:
        result = await _transport(True).send(_webhook(f"http://receiver.test:{receiver.port}/in?x=1",
                                                      secrets=(SECRET, "whsec_" + base64.b64encode(b"o" * 32).decode())))
    assert result.status_code == 204 and result.succeeded and result.error is None
    [(head, body)] = receiver.requests
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /in?x=1 HTTP/1.1"
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    assert headers["host"] == f"receiver.test:{receiver.port}"
    assert headers["content-type"] == "application/json"
    assert body == BODY
    assert Webhook(SECRET).verify(body, headers)["id"] == "evt_1"
    assert abs(int(headers["webhook-timestamp"]) - datetime.now(timezone.utc).timestamp()) < 5


async def test_the_answer_is_read_only_up_to_the_excerpt():
    big = b"y" * 1_000_000
    answer = b"HTTP/1.1 500 Oops\r\nContent-Length: %d\r\n\r\n" % len(big) + big
    async with Receiver(answer) as receiver:
        result = await _transport(True).send(_webhook(f"http://receiver.test:{receiver.port}/"))
    assert result.status_code == 500 and len(result.excerpt) == RESPONSE_EXCERPT_BYTES


async def test_a_chunked_answer_gives_its_excerpt():
    answer = b"HTTP/1.1 400 Bad\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    async with Receiver(answer) as receiver:
        result = await _transport(True).send(_webhook(f"http://receiver.test:{receiver.port}/"))
    assert (result.status_code, result.excerpt) == (400, "hello world")


async def test_a_receiver_that_never_answers_times_out():
    async with Receiver(b"HTTP/1.1 200 OK\r\n\r\n", delay=5) as receiver:
        result = await _transport(True, timeout=0.3).send(_webhook(f"http://receiver.test:{receiver.port}/"))
    assert result.status_code is None and "timeout" in (result.error or "") and 250 <= result.latency_ms < 2000


async def test_a_refused_connection_and_a_garbled_answer_are_errors():
    async with Receiver(b"garbage\r\n\r\n") as receiver:
        garbled = await _transport(True).send(_webhook(f"http://receiver.test:{receiver.port}/"))
        port = receiver.port
    closed = await _transport(True).send(_webhook(f"http://receiver.test:{port}/"))
    assert garbled.status_code is None and garbled.error
    assert closed.status_code is None and "connection failed" in (closed.error or "")


@pytest.mark.parametrize("address", [
    "2002:7f00:1::1", "2002:a9fe:a9fe::1", "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b:1::a00:1",
    "::7f00:1", "fec0::1", "::1",
])
def test_the_sender_refuses_ipv4_hidden_in_ipv6_as_the_creation_check_does(address):
    """Review of issue 22: 6to4, NAT64, IPv4-compatible and site-local forms passed the sender's
    check while the creation check refused them; one classifier now serves both."""
    from billing.adapters.webhook_http import refused_address_reason
    from billing.adapters.webhook_targets import refused_target_reason

    assert refused_address_reason(address, allow_private=False) is not None
    assert refused_target_reason(f"https://[{address}]/hook", False, lambda host: [address]) is not None


async def test_an_interim_answer_is_skipped_for_the_final_one():
    """Review of issue 22: `103 Early Hints` then `200 OK` is a success (RFC 9110: clients skip 1xx)."""
    import asyncio

    from billing.adapters.webhook_http import _read_answer

    reader = asyncio.StreamReader()
    reader.feed_data(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
                     b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    reader.feed_eof()
    status, body = await _read_answer(reader)
    assert status == 200 and body == b"ok"
