"""Outbound webhooks over HTTP/1.1 (service/ports.py WebhookTransport): signed as Standard Webhooks
with the `standardwebhooks` package, sent by a small asyncio client that never lets a URL reach
inside the network.

- Only http and https. The host is resolved here, once; every address it resolves to must be public
  (refused_address_reason: private, loopback, link-local, multicast, unspecified, reserved, shared
  and documentation ranges, IPv4 inside IPv6 included) unless allow_private (BILLING_WEBHOOK_ALLOW_PRIVATE,
  local use and tests). The connection goes to the vetted address itself: nothing resolves the name
  again, so a DNS answer that changes between the check and the connection (rebinding) cannot steer it.
- TLS with the default context (certificates and the host name verified: server_hostname is the URL's host).
- One POST, `Connection: close`, a total timeout (15 s) over connecting, sending and reading; at most
  HEAD_BYTES_MAX of status line and headers and RESPONSE_EXCERPT_BYTES of body are read, the rest is
  never read. A 3xx is an answer like any other non-2xx: its Location is never followed.
- Signing: webhook-id (the event's id), webhook-timestamp (the wall clock at this attempt: receivers
  check it against theirs), webhook-signature `v1,<base64>`, one per secret, space-separated (the
  endpoint's secret, then the previous one while a rotation lasts). The body is the same bytes at
  every attempt (domain/outbound.py canonical_body).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import time
from datetime import datetime, timezone
from typing import Awaitable, Callable
from urllib.parse import urlsplit

from standardwebhooks.webhooks import Webhook

from billing.adapters.webhook_targets import non_global_kind
from billing.domain.delivery_outcomes import RESPONSE_EXCERPT_BYTES, AttemptResult, excerpt_of
from billing.service.ports import Clock
from billing.service.webhook_sender_ports import OutgoingWebhook

TIMEOUT_SECONDS = 15.0
HEAD_BYTES_MAX = 16 * 1024
USER_AGENT = "billing-webhooks/1"
SCHEMES = {"http": 80, "https": 443}

Resolver = Callable[[str, int], Awaitable[list[str]]]


class RefusedTarget(Exception):
    """The URL may not be sent to (its scheme, its form or an address it resolves to)."""


def refused_address_reason(address: str, allow_private: bool) -> str | None:
    """Why an IP address is no place to send a webhook to, or None. allow_private lets private,
    loopback and link-local addresses through (local use, tests); multicast and unspecified never."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    kind = non_global_kind(ip)  # the same classifier as the check at an endpoint's creation
    if kind is None:
        return None
    if kind in ("multicast", "unspecified"):
        return f"{address} is the unspecified address" if kind == "unspecified" else f"{address} is a multicast address"
    if allow_private:
        return None
    return f"{address} is a {kind} address"


async def resolve(host: str, port: int) -> list[str]:
    """Every address the name resolves to (an IP literal: itself)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def vetted_addresses(url: str, allow_private: bool, resolver: Resolver = resolve) -> tuple[str, int, list[str]]:
    """(host, port, addresses) for a URL every address of which may be sent to; RefusedTarget otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise RefusedTarget(f"only http and https URLs (not {parts.scheme or 'none'!r})")
    host = parts.hostname
    if not host:
        raise RefusedTarget("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise RefusedTarget("credentials in the URL")
    try:
        port = parts.port or SCHEMES[parts.scheme]
    except ValueError as error:
        raise RefusedTarget(f"bad port: {error}") from error
    try:
        addresses = await resolver(host, port)
    except (OSError, UnicodeError) as error:
        raise RefusedTarget(f"cannot resolve {host}: {error}") from error
    if not addresses:
        raise RefusedTarget(f"{host} resolves to no address")
    for address in addresses:
        reason = refused_address_reason(address, allow_private)
        if reason is not None:
            raise RefusedTarget(f"{host}: {reason}")
    return host, port, addresses


def signature_headers(webhook: OutgoingWebhook, timestamp_seconds: int) -> dict[str, str]:
    """Standard Webhooks' three headers for this body, signed with each secret."""
    moment = datetime.fromtimestamp(timestamp_seconds, timezone.utc)
    signatures = " ".join(Webhook(secret).sign(webhook.event_id, moment, webhook.body) for secret in webhook.secrets)
    return {"webhook-id": webhook.event_id, "webhook-timestamp": str(timestamp_seconds),
            "webhook-signature": signatures}


class HttpWebhookTransport:
    def __init__(self, wall_clock: Clock, allow_private: bool = False, timeout_seconds: float = TIMEOUT_SECONDS,
                 resolver: Resolver = resolve, ssl_context: ssl.SSLContext | None = None):
        self._wall_clock = wall_clock
        self._allow_private = allow_private
        self._timeout = timeout_seconds
        self._resolver = resolver
        self._ssl = ssl_context

    async def send(self, webhook: OutgoingWebhook) -> AttemptResult:
        started = time.monotonic()

        def elapsed_ms() -> int:
            return int((time.monotonic() - started) * 1000)

        try:
            async with asyncio.timeout(self._timeout):
                host, port, addresses = await vetted_addresses(webhook.url, self._allow_private, self._resolver)
                status, excerpt = await self._post(webhook, host, port, addresses)
        except RefusedTarget as refused:
            return AttemptResult(None, elapsed_ms(), error=f"refused target: {refused}")
        except TimeoutError:
            return AttemptResult(None, elapsed_ms(), error=f"timeout after {self._timeout:g} s")
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError, ValueError) as failure:
            return AttemptResult(None, elapsed_ms(), error=f"connection failed: {failure!r}")
        return AttemptResult(status, elapsed_ms(), excerpt_of(excerpt))

    async def _post(self, webhook: OutgoingWebhook, host: str, port: int, addresses: list[str]) -> tuple[int, bytes]:
        parts = urlsplit(webhook.url)
        tls = (self._ssl or ssl.create_default_context()) if parts.scheme == "https" else None
        reader, writer = await _connect(addresses, port, tls, host)
        try:
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            default_port = SCHEMES[parts.scheme]
            host_header = _host_header(host) + ("" if port == default_port else f":{port}")
            headers = {
                "Host": host_header, "User-Agent": USER_AGENT, "Content-Type": "application/json",
                "Content-Length": str(len(webhook.body)), "Connection": "close",
            } | signature_headers(webhook, int(self._wall_clock.now().timestamp()))
            if _has_control(target, space=True) or any(_has_control(v, space=False) for v in headers.values()):
                raise ValueError("a control character or a space in the request's target or headers")
            head = f"POST {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
            writer.write(head.encode("latin-1") + webhook.body)
            await writer.drain()
            return await _read_answer(reader)
        finally:
            # Aborted, not closed gracefully: a graceful close waits for the peer (TLS close_notify, up to
            # asyncio's 30 s; a full send buffer, unbounded) after the 15 s budget was spent (review).
            writer.transport.abort()


async def _connect(addresses: list[str], port: int, tls: ssl.SSLContext | None,
                   host: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """The first vetted address that accepts the connection (by IP: no second resolution)."""
    failure: BaseException | None = None
    for address in addresses:
        try:
            return await asyncio.open_connection(
                address, port, ssl=tls, server_hostname=host if tls is not None else None,
                limit=HEAD_BYTES_MAX,
            )
        except (OSError, ssl.SSLError) as error:
            failure = error
    assert failure is not None
    raise failure


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """The status code and at most RESPONSE_EXCERPT_BYTES of the body (Content-Length, chunked or
    up to the end); never more than HEAD_BYTES_MAX of head."""
    read = 0  # interim (1xx) heads count against the same budget as the final one
    while True:
        head = b""
        while True:
            line = await reader.readline()
            if not line:
                raise asyncio.IncompleteReadError(head, None)
            head += line
            read += len(line)
            if read > HEAD_BYTES_MAX:
                raise ValueError("the answer's head is too long")
            if line in (b"\r\n", b"\n") and b"\n" in head[:-len(line)]:
                break
        lines = head.decode("latin-1").split("\r\n" if b"\r\n" in head else "\n")
        status_line = lines[0].split(" ", 2)
        if len(status_line) < 2 or not status_line[0].startswith("HTTP/1.") or not status_line[1].isdigit():
            raise ValueError(f"not an HTTP/1 answer: {lines[0][:80]!r}")
        status = int(status_line[1])
        if not 100 <= status < 200:
            break  # an interim answer (100 Continue, 103 Early Hints) is skipped, as RFC 9110 says
    fields = {}
    for field in lines[1:]:
        name, _, value = field.partition(":")
        fields[name.strip().lower()] = value.strip()
    body = b""
    try:
        if "chunked" in fields.get("transfer-encoding", "").lower():
            while len(body) < RESPONSE_EXCERPT_BYTES:
                size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    break
                body += await reader.readexactly(min(size, RESPONSE_EXCERPT_BYTES - len(body)))
                if len(body) >= RESPONSE_EXCERPT_BYTES:
                    break
                await reader.readline()
        elif "content-length" in fields:
            wanted = min(int(fields["content-length"]), RESPONSE_EXCERPT_BYTES)
            body = await reader.readexactly(wanted)
        elif status not in (204, 304) and not 100 <= status < 200:
            while len(body) < RESPONSE_EXCERPT_BYTES:
                chunk = await reader.read(RESPONSE_EXCERPT_BYTES - len(body))
                if not chunk:
                    break
                body += chunk
    except (asyncio.IncompleteReadError, ValueError, OSError):
        pass  # the status decides; the excerpt is what came
    return status, body


def _host_header(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _has_control(text: str, space: bool) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 or (space and c == " ") for c in text)
