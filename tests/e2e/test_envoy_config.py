"""envoy.yaml loads in Envoy (validate mode: no ports bound, no upstream needed)."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from devstack.envoy_config import (
    CONSOLE_NOT_BUILT, EDGE_TOKEN_VARIABLE, ENVOY_TEMPLATE, envoy_environment, render_envoy_config,
)
from billing.settings import DEFAULT_CORS_ORIGIN, EnvoyLimits

REPO_ROOT = Path(__file__).resolve().parents[2]
ENVOY = REPO_ROOT / ".venv" / "bin" / "envoy"
CONSOLE_FILES = ("index.html", "console.js", "console.css", "favicon.svg")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _validate(config_path) -> subprocess.CompletedProcess:
    # cwd: the descriptor set and the Lua file are relative to the repo root.
    return subprocess.run(
        [str(ENVOY), "--mode", "validate", "-c", str(config_path), "--disable-hot-restart",
         "--log-level", "warn"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
    )


def test_rendered_config_validates(tmp_path):
    config = tmp_path / "envoy.yaml"
    config.write_text(render_envoy_config(
        ENVOY_TEMPLATE.read_text(),
        listen_port=free_port(), grpc_port=free_port(), admin_socket=tmp_path / "admin.sock",
        admin_rest_port=free_port(), cors_origin="https://app.example.com",
    ))
    result = _validate(config)
    assert result.returncode == 0, result.stdout + result.stderr


def test_checked_in_config_validates():
    # envoy.yaml names the console's built files (clients/console/dist), which Envoy reads when it loads.
    missing = [name for name in CONSOLE_FILES if not (REPO_ROOT / "clients" / "console" / "dist" / name).is_file()]
    if missing and os.environ.get("BILLING_REQUIRE_BROWSER") != "1":  # `make test` builds the console first
        pytest.skip(f"clients/console/dist lacks {missing} (make console builds it)")
    result = _validate(ENVOY_TEMPLATE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_render_rewrites_exactly_the_marked_values():
    template = ENVOY_TEMPLATE.read_text()
    assert f'exact: "{DEFAULT_CORS_ORIGIN}"' in template
    rendered = render_envoy_config(
        template, listen_port=18080, grpc_port=15051, admin_socket=Path("/run/b/admin.sock"),
        cors_origin=["https://a.example", "http://b:1"], admin_rest_port=18081, admin_rest_host="0.0.0.0",
        limits=EnvoyLimits(7, 9, max_connections=11, internal_max_connections=5, webhook_rate_limit_per_second=13,
                           webhook_rate_limit_burst=17),
    )
    assert "port_value: 18080}  # listen_port" in rendered
    assert "port_value: 15051}  # grpc_port" in rendered
    assert "{address: 127.0.0.1, port_value: 18080}  # edge_peer_port" in rendered  # this Envoy alone at the edge
    assert 'pipe: {path: "/run/b/admin.sock", mode: 384}  # admin_socket' in rendered
    assert '- exact: "https://a.example"  # cors_origin\n' in rendered
    assert '- exact: "http://b:1"  # cors_origin\n' in rendered
    assert "{address: 0.0.0.0, port_value: 18081}  # admin_rest_port" in rendered
    assert "connection_limit: 11  # max_connections" in rendered
    assert "connection_limit: 5  # internal_max_connections" in rendered
    assert "max_active_downstream_connections: 16  # total_max_connections" in rendered
    # reduce_timeouts from 50 % to 90 % of the browser listener's 11, as fractions of the total 16
    assert "scaling_threshold: 0.3438  # idle_scaling_threshold" in rendered
    assert "saturation_threshold: 0.6188  # idle_saturation_threshold" in rendered
    assert "max_tokens: 17  # webhook_rate_limit_burst" in rendered
    assert "tokens_per_fill: 13  # webhook_rate_limit_per_second" in rendered
    changed = [(a, b) for a, b in zip(template.splitlines(), rendered.splitlines()) if a != b]
    assert len(changed) == 16 and len(template.splitlines()) == len(rendered.splitlines())


def test_the_edge_token_is_never_rendered_into_the_config():
    """Envoy reads it from its environment: the admin interface's config dump cannot show it."""
    assert "edge_token" not in render_envoy_config.__kwdefaults__
    assert "%ENVIRONMENT(BILLING_EDGE_TOKEN)%" in ENVOY_TEMPLATE.read_text()
    assert envoy_environment("abc123", {})[EDGE_TOKEN_VARIABLE] == "abc123"
    with pytest.raises(ValueError):
        envoy_environment("a b", {})


@pytest.mark.parametrize("kwargs", [
    {"listen_port": 0}, {"grpc_port": 70000}, {"admin_socket": Path("relative.sock")},
    {"admin_socket": Path("/" + "a" * 120)}, {"cors_origin": ""},
    {"cors_origin": "http://a http://b"}, {"cors_origin": []}, {"cors_origin": ["http://a", " "]},
    {"admin_rest_port": 0}, {"admin_rest_host": "example.com"},
])
def test_render_rejects_bad_values(kwargs):
    args = {"listen_port": 8080, "grpc_port": 50051, "admin_socket": Path("/tmp/a.sock"),
            "cors_origin": DEFAULT_CORS_ORIGIN, "admin_rest_port": 8081}
    with pytest.raises(ValueError):
        render_envoy_config(ENVOY_TEMPLATE.read_text(), **{**args, **kwargs})


def test_render_requires_the_markers():
    with pytest.raises(ValueError, match="listen_port"):
        render_envoy_config(
            "admin: {}\n", listen_port=1, grpc_port=2, admin_socket=Path("/a.sock"), cors_origin="http://x",
            admin_rest_port=4
        )


def test_console_files_not_built_render_as_503_and_the_config_still_loads(tmp_path):
    rendered = render_envoy_config(
        ENVOY_TEMPLATE.read_text(), listen_port=free_port(), grpc_port=free_port(), admin_socket=tmp_path / "admin.sock",
        admin_rest_port=free_port(), cors_origin="https://app.example.com", console_root=tmp_path / "no-build",
    )
    assert "filename: clients/console/dist" not in rendered
    assert rendered.count(CONSOLE_NOT_BUILT) == len(CONSOLE_FILES)
    config = tmp_path / "envoy.yaml"
    config.write_text(rendered)
    result = _validate(config)
    assert result.returncode == 0, result.stdout + result.stderr


def test_console_files_built_are_served_from_the_repo_root(tmp_path):
    dist = tmp_path / "clients" / "console" / "dist"
    dist.mkdir(parents=True)
    for name in CONSOLE_FILES:
        (dist / name).write_text("x")
    rendered = render_envoy_config(
        ENVOY_TEMPLATE.read_text(), listen_port=18080, grpc_port=15051, admin_socket=Path("/run/b/admin.sock"),
        admin_rest_port=18081, cors_origin="https://a.example", console_root=tmp_path,
    )
    for name in CONSOLE_FILES:
        assert f"body: {{filename: clients/console/dist/{name}}}}}  # console_file" in rendered
    assert CONSOLE_NOT_BUILT not in rendered


def test_many_grpc_servers_are_one_health_checked_cluster_and_the_config_loads(tmp_path):
    upstreams = [("127.0.0.1", 15051), ("10.0.0.7", 50051), ("::1", 15052)]
    rendered = render_envoy_config(
        ENVOY_TEMPLATE.read_text(), listen_port=free_port(), grpc_upstreams=upstreams,
        admin_socket=tmp_path / "admin.sock", admin_rest_port=free_port(), cors_origin="https://app.example.com",
    )
    for host, port in upstreams:
        assert f"socket_address: {{address: {host}, port_value: {port}}}  # grpc_port" in rendered
    assert rendered.count("- endpoint:  # grpc_endpoint") == 3
    assert "type: STATIC  # grpc_cluster_type" in rendered
    assert "grpc_health_check: {service_name: billing.v1.BillingService}" in rendered
    config = tmp_path / "envoy.yaml"
    config.write_text(rendered)
    result = _validate(config)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_service_name_envoy_checks_is_the_one_the_server_reports():
    from billing.entrypoints.server import SERVICE_NAME

    assert f"grpc_health_check: {{service_name: {SERVICE_NAME}}}" in ENVOY_TEMPLATE.read_text()


def test_servers_named_by_dns_make_the_cluster_resolve_them(tmp_path):
    rendered = render_envoy_config(
        ENVOY_TEMPLATE.read_text(), listen_port=free_port(), grpc_upstreams=[("billing-server.billing.svc", 50051)],
        admin_socket=tmp_path / "admin.sock", admin_rest_port=free_port(), cors_origin="https://app.example.com",
    )
    assert "type: STRICT_DNS  # grpc_cluster_type" in rendered
    assert "{address: billing-server.billing.svc, port_value: 50051}  # grpc_port" in rendered


@pytest.mark.parametrize("kwargs", [
    {"grpc_port": None}, {"grpc_upstreams": [("127.0.0.1", 1)]},  # neither; both
    {"grpc_port": None, "grpc_upstreams": [("127.0.0.1", 1), ("127.0.0.1", 1)]},
    {"grpc_port": None, "grpc_upstreams": [("bad host", 1)]}, {"grpc_port": None, "grpc_upstreams": [("h", 0)]},
])
def test_render_rejects_bad_upstreams(kwargs):
    args = {"listen_port": 8080, "grpc_port": 50051, "admin_socket": Path("/tmp/a.sock"),
            "cors_origin": DEFAULT_CORS_ORIGIN, "admin_rest_port": 8081}
    with pytest.raises(ValueError):
        render_envoy_config(ENVOY_TEMPLATE.read_text(), **{**args, **kwargs})


def test_the_edges_envoys_are_its_local_cluster_and_the_per_ip_buckets_take_their_share(tmp_path):
    peers = [("10.0.0.1", 8080), ("10.0.0.2", 8080)]
    rendered = render_envoy_config(
        ENVOY_TEMPLATE.read_text(), listen_port=free_port(), grpc_port=free_port(), edge_peers=peers,
        admin_socket=tmp_path / "admin.sock", admin_rest_port=free_port(), cors_origin="https://app.example.com",
        limits=EnvoyLimits(10, 20),
    )
    for host, port in peers:
        assert f"{{address: {host}, port_value: {port}}}  # edge_peer_port" in rendered
    assert "local_cluster_name: billing_edge" in rendered
    assert rendered.count("local_cluster_rate_limit: {}") == 2  # the per-IP bucket and the Stripe webhook's
    config = tmp_path / "envoy.yaml"
    config.write_text(rendered)
    result = _validate(config)
    assert result.returncode == 0, result.stdout + result.stderr
