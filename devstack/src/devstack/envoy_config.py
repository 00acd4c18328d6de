"""Renders envoy.yaml for a run: ports, the CORS origin and the limits against hostile clients.

Envoy's YAML has no environment substitution, so envoy.yaml carries the default
ports and origin on lines tagged with a trailing marker comment, and this module
rewrites exactly those values. `billing-dev run` passes its Settings (BILLING_REST_PORT,
BILLING_GRPC_PORT, BILLING_CORS_ORIGIN) and the admin socket's path and writes the
result to .data/envoy.yaml; Envoy must still start from the repo root (relative
paths to gen/billing_descriptor.pb and envoy/billing_response.lua). The limits
(per-IP rate limit, connection budgets, the webhook's bucket: settings.EnvoyLimits) come
from the caller, or from the environment when it passes none (`billing-dev run`).

The gRPC servers Envoy balances over are a list (grpc_upstreams: (host, port) pairs, one
`# grpc_endpoint` item each), health-checked and ejected on errors by envoy.yaml's cluster;
grpc_port alone means one server on 127.0.0.1. edge_peers lists every Envoy of the edge (one
`# edge_peer` item each, Envoy's local cluster): each keeps its share of the per-IP limits.

The edge token is not rendered: Envoy reads it from its own environment
(envoy_environment), so the admin interface's config dump cannot show it.

The operator console's files (clients/console/dist, `make console`) are direct responses Envoy reads
at start, and a missing file would stop Envoy from starting: a route whose file is missing answers
503 "not built" instead (render_envoy_config's console_root).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Mapping

from billing.settings import REPO_ROOT, EnvoyLimits

ENVOY_TEMPLATE = REPO_ROOT / "envoy.yaml"

_PORT_VALUE = r"(port_value:\s*)\d+(\s*\}?\s*#\s*MARKER\b)"
_NUMBER_VALUE = r"(:\s*)\d+(\s*#\s*MARKER\b)"
_FRACTION_VALUE = r"(:\s*)[0-9.]+(\s*#\s*MARKER\b)"
# The list item `- name: ...  # rate_limit` (an HTTP filter) and every line indented deeper than its dash.
_RATE_LIMIT_FILTER = re.compile(r"^( *)- name:[^\n]*#\s*rate_limit\b[^\n]*\n(?:\1  [^\n]*\n)*", re.MULTILINE)
# The run of `- exact: "..."  # cors_origin` list items: one per allowed origin.
_CORS_ORIGINS = re.compile(r"^( *)- exact:[^\n]*#\s*cors_origin\b[^\n]*\n(?:\1- exact:[^\n]*#\s*cors_origin\b[^\n]*\n)*",
                           re.MULTILINE)
_ADMIN_SOCKET = r'(path:\s*)"[^"]*"(,\s*mode:\s*\d+\s*\}\s*#\s*admin_socket\b)'
# The Stripe webhook route's `typed_per_filter_config:  # webhook_rate_limit` and every line indented deeper.
_WEBHOOK_RATE_LIMIT_BLOCK = re.compile(
    r"^( *)typed_per_filter_config:[^\n]*#\s*webhook_rate_limit\b[^\n]*\n(?:\1 [^\n]*\n)*", re.MULTILINE
)
_ADMIN_REST_HOST = r'(address:\s*)[0-9a-fA-F.:]+(,\s*port_value:\s*\d+\s*\}\s*#\s*admin_rest_port\b)'
# `direct_response: {status: 200, body: {filename: clients/console/dist/...}}  # console_file`
_CONSOLE_FILE = re.compile(
    r"direct_response: \{status: 200, body: \{filename: (clients/console/dist/[A-Za-z0-9_.-]+)\}\}(\s*#\s*console_file\b)"
)
CONSOLE_NOT_BUILT = "the operator console is not built: run make console, then start again"
# A cluster's `- endpoint:  # MARKER` list item and every line indented deeper than its dash
# (grpc_endpoint: the gRPC servers; edge_peer: the edge's Envoys), and its address line.
_ENDPOINT_ITEM = r"^( *)- endpoint:[^\n]*#\s*MARKER\b[^\n]*\n(?:\1  [^\n]*\n)*"
_ENDPOINT_ADDRESS = r"(\{address:\s*)[0-9a-fA-F.:]+(,\s*port_value:\s*)\d+(\s*\}\s*#\s*MARKER\b)"
_CLUSTER_TYPE = r"(type:\s*)[A-Z_]+(\s*#\s*MARKER\b)"
_HOST_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*")
# The `access_log:` key tagged `# access_log` and every line indented deeper than it.
_ACCESS_LOG_BLOCK = re.compile(r"^( *)access_log:[^\n]*#\s*access_log\b[^\n]*\n(?:\1[ -][^\n]*\n)*", re.MULTILINE)


EDGE_TOKEN_VARIABLE = "BILLING_EDGE_TOKEN"
# sun_path holds 108 bytes with its terminating NUL; some systems allow fewer.
SOCKET_PATH_BYTES_MAX = 100


def envoy_environment(edge_token: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment to start Envoy with: base (default os.environ) plus the edge token, which
    envoy.yaml reads as %ENVIRONMENT(BILLING_EDGE_TOKEN)% (never written into the config)."""

    if not edge_token.isalnum():
        raise ValueError("edge_token must be letters and digits")
    return dict(os.environ if base is None else base) | {EDGE_TOKEN_VARIABLE: edge_token}


def _replace_once(pattern: str, replacement: str, text: str, what: str) -> str:
    new_text, count = re.subn(pattern, lambda m: m.group(1) + replacement + m.group(2), text)
    if count != 1:
        raise ValueError(f"envoy template: expected exactly one `# {what}` line, found {count}")
    return new_text


def _check_socket_path(path: Path) -> str:
    text = str(path)
    if not Path(text).is_absolute() or len(text.encode()) > SOCKET_PATH_BYTES_MAX or '"' in text:
        raise ValueError(f"admin_socket must be an absolute path of at most {SOCKET_PATH_BYTES_MAX} bytes, got {text!r}")
    return text


def _check_port(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise ValueError(f"{name} must be a TCP port (1-65535), got {value!r}")
    return value


def render_envoy_config(
    template_text: str,
    *,
    listen_port: int,
    grpc_port: int | None = None,
    grpc_upstreams: Sequence[tuple[str, int]] = (),
    edge_peers: Sequence[tuple[str, int]] = (),
    admin_socket: Path,
    cors_origin: str | Sequence[str],
    admin_rest_port: int,
    admin_rest_host: str = "127.0.0.1",
    access_log: bool = True,
    limits: EnvoyLimits | None = None,
    console_root: Path = REPO_ROOT,
) -> str:
    """Returns template_text with the marked ports, admin socket, CORS origin and limits replaced.

    grpc_upstreams: the gRPC servers, (host, port) each, a host an IP address or a DNS name (a name
    makes the cluster STRICT_DNS: every address it resolves to is a server); or grpc_port alone:
    one server on 127.0.0.1.
    edge_peers: every Envoy of the edge, this one included, (host, port) each (the port is not used:
    the list is Envoy's local cluster, whose size divides the per-IP limits); () means this one alone.
    admin_socket: where Envoy's admin interface listens (a unix socket, mode 0600), an absolute path.
    access_log=False drops the per-request access log (benchmarks: it costs Envoy CPU).
    limits=None reads them from the environment (EnvoyLimits.from_environment); a rate of 0
    drops the per-IP rate limit filter.
    console_root: where the console's file paths (relative, as Envoy reads them from the repo root) are
    checked; a route whose file is missing answers 503 (not built) rather than failing Envoy's start.
    """
    limits = EnvoyLimits.from_environment() if limits is None else limits
    origins = _checked_origins(cors_origin)
    text = template_text
    ports = (("listen_port", listen_port), ("admin_rest_port", admin_rest_port))
    for marker, value in ports:
        port = _check_port(marker, value)
        text = _replace_once(_PORT_VALUE.replace("MARKER", marker), str(port), text, marker)
    text = _endpoints(text, _checked_upstreams(grpc_port, grpc_upstreams), "grpc_endpoint", "grpc_port",
                      "grpc_cluster_type")
    peers = _checked_hosts("edge_peers", edge_peers or [("127.0.0.1", listen_port)])
    text = _endpoints(text, peers, "edge_peer", "edge_peer_port", "edge_cluster_type")
    text = _replace_once(_ADMIN_SOCKET, json.dumps(_check_socket_path(admin_socket)), text, "admin_socket")
    numbers: list[tuple[str, int]] = [
        ("max_connections", limits.max_connections),
        ("internal_max_connections", limits.internal_max_connections),
        ("total_max_connections", limits.total_max_connections),
    ]
    # reduce_timeouts reads the global count (both listeners): its thresholds are 50 % and 90 % of
    # the browser listener's budget, as fractions of the total.
    browser_share = limits.max_connections / limits.total_max_connections
    for marker, fraction in (("idle_scaling_threshold", 0.5), ("idle_saturation_threshold", 0.9)):
        text = _replace_once(_FRACTION_VALUE.replace("MARKER", marker), f"{fraction * browser_share:.4f}", text, marker)
    if limits.rate_limit_per_second:
        numbers += [
            ("rate_limit_per_second", limits.rate_limit_per_second), ("rate_limit_burst", limits.rate_limit_burst),
            ("webhook_rate_limit_per_second", limits.webhook_rate_limit_per_second),
            ("webhook_rate_limit_burst", limits.webhook_rate_limit_burst),
        ]
    else:
        for block, marker in ((_RATE_LIMIT_FILTER, "rate_limit"), (_WEBHOOK_RATE_LIMIT_BLOCK, "webhook_rate_limit")):
            text, count = block.subn("", text)
            if count != 1:
                raise ValueError(f"envoy template: expected exactly one `# {marker}` block, found {count}")
    for marker, value in numbers:
        text = _replace_once(_NUMBER_VALUE.replace("MARKER", marker), str(value), text, marker)
    if not re.fullmatch(r"[0-9a-fA-F.:]+", admin_rest_host):
        raise ValueError(f"admin_rest_host must be an IP address, got {admin_rest_host!r}")
    text = _replace_once(_ADMIN_REST_HOST, admin_rest_host, text, "admin_rest_port")
    if not access_log:
        text, count = _ACCESS_LOG_BLOCK.subn("", text)
        if count != 1:
            raise ValueError(f"envoy template: expected exactly one `# access_log` block, found {count}")
    text = _console_files(text, console_root)
    return _replace_cors_origins(text, origins)


def _checked_upstreams(grpc_port: int | None, upstreams: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    if (grpc_port is None) == (not upstreams):
        raise ValueError("give grpc_port (one server on 127.0.0.1) or grpc_upstreams, not both")
    return _checked_hosts("grpc_upstreams", [("127.0.0.1", grpc_port)] if grpc_port is not None else upstreams)


def _checked_hosts(name: str, pairs: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    checked = []
    for host, port in pairs:
        if not (_is_ip(host) or _HOST_NAME.fullmatch(host)):
            raise ValueError(f"{name}: a host must be an IP address or a DNS name, got {host!r}")
        checked.append((host, _check_port(name, port)))
    if len(set(checked)) != len(checked):
        raise ValueError(f"{name} lists a host twice: {checked}")
    return checked


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _endpoints(text: str, hosts: list[tuple[str, int]], item_marker: str, port_marker: str,
               type_marker: str) -> str:
    """One `# item_marker` list item per host, each the template's item with its address and port; the
    cluster resolves names (STRICT_DNS) when a host is not an IP address."""
    address = re.compile(_ENDPOINT_ADDRESS.replace("MARKER", port_marker))

    def one_item_each(match: re.Match[str]) -> str:
        rendered = []
        for host, port in hosts:
            item, count = address.subn(lambda m: f"{m.group(1)}{host}{m.group(2)}{port}{m.group(3)}", match.group(0))
            if count != 1:
                raise ValueError(f"envoy template: the `# {item_marker}` item needs one `# {port_marker}` address")
            rendered.append(item)
        return "".join(rendered)

    text, count = re.subn(_ENDPOINT_ITEM.replace("MARKER", item_marker), one_item_each, text, flags=re.MULTILINE)
    if count != 1:
        raise ValueError(f"envoy template: expected exactly one `# {item_marker}` item, found {count}")
    cluster_type = "STATIC" if all(_is_ip(host) for host, _ in hosts) else "STRICT_DNS"
    return _replace_once(_CLUSTER_TYPE.replace("MARKER", type_marker), cluster_type, text, type_marker)


def _console_files(text: str, root: Path) -> str:
    def built_or_503(match: re.Match[str]) -> str:
        if (root / match.group(1)).is_file():
            return match.group(0)
        return (f"direct_response: {{status: 503, body: {{inline_string: {json.dumps(CONSOLE_NOT_BUILT)}}}}}"
                f"{match.group(2)}")

    text, count = _CONSOLE_FILE.subn(built_or_503, text)
    if count == 0:
        raise ValueError("envoy template: expected the `# console_file` routes, found none")
    return text


def _checked_origins(cors_origin: str | Sequence[str]) -> list[str]:
    origins = [cors_origin] if isinstance(cors_origin, str) else list(cors_origin)
    checked = [origin.strip() for origin in origins]
    if not checked or any(not origin or any(ch.isspace() for ch in origin) for origin in checked):
        raise ValueError(f"cors_origin must be origins like https://app.example.com, got {cors_origin!r}")
    return checked


def _replace_cors_origins(text: str, origins: list[str]) -> str:
    def one_line_each(match: re.Match[str]) -> str:
        # A JSON string is a valid YAML double-quoted scalar.
        return "".join(f"{match.group(1)}- exact: {json.dumps(origin)}  # cors_origin\n" for origin in origins)

    text, count = _CORS_ORIGINS.subn(one_line_each, text)
    if count != 1:
        raise ValueError(f"envoy template: expected one run of `# cors_origin` lines, found {count}")
    return text
