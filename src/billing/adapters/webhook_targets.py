"""Where a webhook may be sent: the URL rules and the address check against SSRF (issue 22).

`refused_target_reason(url, allow_private)` is None for a URL the service may send to, else why not
(a sentence naming `url`). It is used when an endpoint is created (the admin surface answers 400 with
it) and by the sender before each delivery, since a name may resolve elsewhere later. Rules:
- http or https only, a host, at most 2048 characters, no user or password in it;
- unless allow_private (BILLING_WEBHOOK_ALLOW_PRIVATE=1): no target on a private, loopback,
  link-local, multicast, unspecified, reserved or otherwise non-global address, whether the URL
  names it (127.0.0.1, [::1], 169.254.169.254, 10.0.0.1, ::ffff:127.0.0.1) or a name resolves to
  it (every address the name resolves to must be global; a name that does not resolve is refused).

`resolve` is injectable for tests: host -> the IP addresses (text) it resolves to; the default asks
the system resolver (blocking: call it from a thread in async code, see WebhookTargetPolicy).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Callable, Iterable
from urllib.parse import SplitResult, urlsplit

URL_LENGTH_MAX = 2048
SCHEMES = ("http", "https")
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def system_resolve(host: str) -> list[str]:
    """Every address `host` resolves to (empty when it does not resolve)."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        return []
    return [str(info[4][0]) for info in infos]


def refused_target_reason(
    url: str, allow_private: bool, resolve: Callable[[str], Iterable[str]] = system_resolve,
) -> str | None:
    parts, reason = _parse(url)
    if reason is not None or parts is None:
        return reason
    if allow_private:
        return None
    host = parts.hostname or ""
    literal = _literal_address(host)
    if literal is not None:
        why = _non_global(literal)
        return None if why is None else f"url: {host} is {_a(why)} address (BILLING_WEBHOOK_ALLOW_PRIVATE=1 allows it)"
    try:
        resolved = [ipaddress.ip_address(a.split("%", 1)[0]) for a in resolve(host)]
    except ValueError:
        return f"url: {host} resolves to something that is not an IP address"
    if not resolved:
        return f"url: {host} does not resolve"
    for address in resolved:
        why = _non_global(address)
        if why is not None:
            return f"url: {host} resolves to {address}, {_a(why)} address (BILLING_WEBHOOK_ALLOW_PRIVATE=1 allows it)"
    return None


def _parse(url: str) -> tuple[SplitResult | None, str | None]:
    if not url:
        return None, "url is required"
    if len(url) > URL_LENGTH_MAX:
        return None, f"url is longer than {URL_LENGTH_MAX} characters"
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7f for c in url):
        return None, "url may not contain spaces or control characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError:
        return None, "url is not a valid URL"
    if parts.scheme.lower() not in SCHEMES:
        return None, "url must be an http or https URL"
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        return None, "url may not carry credentials (user:password@)"
    if not parts.hostname:
        return None, "url must name a host"
    return parts, None


def _literal_address(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    # Forms the resolver would take as an IPv4 address (2130706433, 0x7f.1, 127.1): refused as not
    # plainly written, whatever they point at.
    try:
        packed = socket.inet_aton(host)
    except (OSError, ValueError):
        return None
    return ipaddress.IPv4Address(packed)


def _a(kind: str) -> str:
    return ("an " if kind[0] in "aeiou" else "a ") + kind


# IPv6 forms that carry an IPv4 address a gateway may reach (NAT64, well-known and local-use
# prefixes; IPv4-compatible ::a.b.c.d): judged by that address. Site-local fec0::/10 is deprecated
# but still routed by some networks: refused.
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_SITE_LOCAL = ipaddress.IPv6Network("fec0::/10")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    mapped = address.ipv4_mapped or address.sixtofour
    if mapped is not None:
        return mapped
    if address.teredo is not None:
        return address.teredo[1]  # the client's own address: never a place to send to
    if any(address in network for network in _NAT64) or (address in _IPV4_COMPATIBLE and not address.is_loopback):
        return ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    return None


def non_global_kind(address: Address) -> str | None:
    """None for an address a webhook may go to, else what kind it is (the creation check's and the
    sender's, adapters/webhook_http.py: one classifier)."""
    return _non_global(address)


def _non_global(address: Address) -> str | None:
    if isinstance(address, ipaddress.IPv6Address):
        if address in _SITE_LOCAL:
            return "site-local"
        embedded = _embedded_ipv4(address)
        if embedded is not None and not address.is_unspecified:
            kind = _non_global(embedded)
            return kind if kind is not None or address.teredo is None else "Teredo"
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address.is_private:
        return "private"
    if address.is_reserved or not address.is_global:
        return "non-global"
    return None


class WebhookTargetPolicy:
    """The service's port for the check (service/ports.py WebhookTargets): the rules above with the
    process's setting, the resolution off the event loop."""

    def __init__(self, allow_private: bool, resolve: Callable[[str], Iterable[str]] = system_resolve):
        self.allow_private = allow_private
        self._resolve = resolve

    async def refused_reason(self, url: str) -> str | None:
        if self.allow_private:
            return refused_target_reason(url, True, self._resolve)
        return await asyncio.to_thread(refused_target_reason, url, False, self._resolve)
