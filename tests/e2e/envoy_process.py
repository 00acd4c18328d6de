"""Envoy started for a test: envoy.yaml rendered for free ports in front of the given gRPC servers.

The session's Envoy (conftest.envoy_proxy) and the tests with servers of their own (many servers
behind one Envoy) start it the same way; `admin_get` reads its admin interface (a unix socket)."""

from __future__ import annotations

import http.client as httpclient
import socket
import subprocess
import time
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from billing.settings import DEFAULT_DEMO_PORT, NO_RATE_LIMIT, EnvoyLimits, demo_origins
from testkit.processes import REPO_ROOT, VENV_BIN, free_port, start_failed, stop_process
from testkit.signing import MASTER

ENVOY = VENV_BIN / "envoy"
ENVOY_START_TIMEOUT = 15.0


@dataclass(frozen=True)
class EnvoyProxy:
    listen_port: int
    admin_socket: Path  # Envoy's admin interface (unix socket, mode 0600)
    config_path: Path
    log: Path
    admin_rest_port: int  # the internal listener (admin paths)


def _listener_answers(port: int) -> bool:
    conn = httpclient.HTTPConnection("127.0.0.1", port, timeout=1.0)
    try:
        conn.request("GET", "/v1/billing/__e2e_ready")
        conn.getresponse().read()
        return True
    except OSError:
        return False
    finally:
        conn.close()


@contextmanager
def running_envoy(folder: Path, upstreams: Sequence[tuple[str, int]], limits: EnvoyLimits = NO_RATE_LIMIT,
                  listen_port: int = 0, edge_peers: Sequence[tuple[str, int]] = ()) -> Iterator[EnvoyProxy]:
    """Envoy in front of `upstreams` ((host, port) each), CORS as `billing-dev run` renders it by default;
    edge_peers: the edge's Envoys, this one too (on listen_port), when there are several."""
    from devstack.envoy_config import ENVOY_TEMPLATE, envoy_environment, render_envoy_config

    folder.mkdir(parents=True, exist_ok=True)
    listen_port = listen_port or free_port()
    proxy = EnvoyProxy(listen_port, folder / "admin.sock", folder / "envoy.yaml", folder / "envoy.log", free_port())
    proxy.config_path.write_text(render_envoy_config(
        ENVOY_TEMPLATE.read_text(),
        listen_port=listen_port,
        grpc_upstreams=upstreams,
        edge_peers=edge_peers,
        admin_socket=proxy.admin_socket,
        cors_origin=demo_origins(DEFAULT_DEMO_PORT),
        admin_rest_port=proxy.admin_rest_port,
        limits=limits,
    ))
    argv = [str(ENVOY), "-c", str(proxy.config_path), "--disable-hot-restart", "--log-level", "warn",
            "--file-flush-interval-msec", "1000"]  # as `billing-dev run` starts it
    with open(proxy.log, "wb") as log:
        # cwd: the config names gen/billing_descriptor.pb and envoy/*.lua relative to the repo root.
        proc = subprocess.Popen(argv, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
                                env=envoy_environment(MASTER.edge_token()))
    try:
        deadline = time.monotonic() + ENVOY_START_TIMEOUT
        while not _listener_answers(listen_port):
            if proc.poll() is not None:
                start_failed("envoy", proc, f"exited with code {proc.returncode}", [proxy.log])
            if time.monotonic() > deadline:
                start_failed("envoy", proc, f"listener :{listen_port} silent for {ENVOY_START_TIMEOUT:.0f}s",
                              [proxy.log])
            time.sleep(0.1)
        yield proxy
    finally:
        stop_process(proc)


class _UnixHTTPConnection(httpclient.HTTPConnection):
    def __init__(self, path: Path):
        super().__init__("localhost", timeout=5.0)
        self._path = str(path)

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def admin_get(proxy: EnvoyProxy, path: str) -> str:
    """GET on Envoy's admin interface, e.g. /clusters."""
    conn = _UnixHTTPConnection(proxy.admin_socket)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read().decode()
        assert response.status == 200, (response.status, body)
        return body
    finally:
        conn.close()
