"""One address holding thousands of idle connections no longer shuts the door on everyone (issue 19,
item 4), tested against the mechanisms rather than a budget larger than the attack: Envoy runs with
SMALL budgets (browser 1,000, internal 200) so that each defence has to do its part.

- Listener budgets: an address holding 5,000 zero-byte connections on the browser listener, and
  reopening every one Envoy closes, for longer than the 5 s cut; the internal listener stays fast.
  The browser listener itself is full then (Envoy has no per-address budget, docs/decisions.md):
  it refuses new connections at once, it does not leave them hanging.
- The 5 s cut of connections that send nothing: an address opening silent connections at a rate
  that would fill the browser budget within the test without the cut; the browser listener stays
  fast throughout.
- reduce_timeouts: keep-alive connections gone idle are closed within seconds when the connection
  pressure is high, and kept when it is low (also while the internal listener is busy: see
  docs/decisions.md on the global count).

File descriptors: the attacker's sockets and Envoy's ends of them each take one. The test raises
its soft RLIMIT_NOFILE to the hard limit before starting Envoy and the attacker (both inherit it),
and skips when the hard limit cannot hold them."""

from __future__ import annotations

import dataclasses
import http.client as httpclient
import json
import os
import resource
import select
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.helpers import catalog_status

from devstack.envoy_config import ENVOY_TEMPLATE, envoy_environment, render_envoy_config
from billing.settings import DEFAULT_CORS_ORIGIN, EnvoyLimits
from testkit.processes import REPO_ROOT, VENV_BIN, free_port, stop_process
from testkit.signing import MASTER

# Small budgets: 5,000 held connections are five times the browser listener's.
LIMITS = EnvoyLimits(rate_limit_per_second=0, rate_limit_burst=0, max_connections=1000, internal_max_connections=200)
IDLE_CONNECTIONS = 5000
ATTACK_SECONDS = 12.0  # past the 5 s cut: every held connection is cut and reopened at least once
SILENT_CUT_SECONDS = 5.0  # listener_filters_timeout in envoy.yaml
P99_BOUND_SECONDS = 0.050  # the issue's acceptance point
IDLE_TIMEOUTS = "http.billing_rest.downstream_cx_idle_timeout"
FILES_NEEDED = 2 * IDLE_CONNECTIONS + 1000

# Holds `count` connections from `source` that send nothing; one the server closes is opened
# again at once, as an attacker keeping the budget full would. Prints the count once it holds them all.
HOLDING_ATTACKER = r"""
import selectors, socket, struct, sys
source, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
selector = selectors.DefaultSelector()
def open_one():
    sock = socket.socket()
    # Closed with a reset when the test ends it: no TIME_WAIT left on thousands of local ports.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    selector.register(sock, selectors.EVENT_READ)
for _ in range(count):
    open_one()
print(count, flush=True)
while True:
    for key, _ in selector.select():
        selector.unregister(key.fileobj)
        key.fileobj.close()
        open_one()
"""

# Opens `rate` connections a second from `source` that send nothing and keeps each until the
# server closes it. Without the 5 s cut it would hold rate x seconds of them.
OPENING_ATTACKER = r"""
import selectors, socket, struct, sys, time
source, port, rate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
selector = selectors.DefaultSelector()
print("started", flush=True)
started, opened = time.monotonic(), 0
while True:
    while opened < (time.monotonic() - started) * rate:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.bind((source, 0))
        sock.connect(("127.0.0.1", port))
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
        opened += 1
    for key, _ in selector.select(timeout=0.01):
        selector.unregister(key.fileobj)
        key.fileobj.close()
"""


@dataclass(frozen=True)
class FloodEnvoy:
    browser: int
    internal: int
    admin_socket: Path

    def stats(self) -> dict[str, float]:
        """Envoy's counters and gauges (from its admin socket), by name."""
        out = subprocess.run(["curl", "-sf", "--unix-socket", str(self.admin_socket), "http://admin/stats?format=json"],
                             capture_output=True, text=True, check=True, timeout=10).stdout
        return {s["name"]: s["value"] for s in json.loads(out)["stats"] if "value" in s}

    def listener_stat(self, port: int, name: str) -> float:
        return sum(v for k, v in self.stats().items() if k.endswith(f"_{port}.{name}") and ".worker_" not in k)


@pytest.fixture(scope="module")
def flood_envoy(e2e, tmp_path_factory) -> Iterator[FloodEnvoy]:
    yield from _envoy_with(e2e, tmp_path_factory, LIMITS)


@pytest.fixture(scope="module")
def default_envoy(e2e, tmp_path_factory) -> Iterator[FloodEnvoy]:
    """The connection budgets as shipped (no per-IP rate limit: the measuring client is one address)."""
    yield from _envoy_with(e2e, tmp_path_factory, dataclasses.replace(EnvoyLimits(), rate_limit_per_second=0,
                                                                          rate_limit_burst=0))


def _envoy_with(e2e, tmp_path_factory, limits: EnvoyLimits) -> Iterator[FloodEnvoy]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < FILES_NEEDED:
        pytest.skip(f"the hard open file limit ({hard}) cannot hold {IDLE_CONNECTIONS} connections on both ends")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    folder: Path = tmp_path_factory.mktemp("flood-envoy")
    try:
        # A port free a moment ago can be taken before Envoy binds it: then it starts again on others.
        for _ in range(3):
            envoy, proc = _start_envoy(e2e, folder, limits)
            if _listening(envoy, proc):
                break
            stop_process(proc)
            assert "Address already in use" in (folder / "envoy.log").read_text()
        else:
            pytest.fail("Envoy found no free ports in 3 attempts")
        try:
            yield envoy
        finally:
            stop_process(proc)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _start_envoy(e2e, folder: Path, limits: EnvoyLimits) -> tuple[FloodEnvoy, subprocess.Popen]:
    envoy = FloodEnvoy(browser=free_port(), internal=free_port(), admin_socket=folder / "admin.sock")
    config = folder / "envoy.yaml"
    # No per-IP rate limit: the measuring clients send thousands of requests from one address.
    config.write_text(render_envoy_config(
        ENVOY_TEMPLATE.read_text(), listen_port=envoy.browser, grpc_port=e2e.server.grpc_port,
        admin_socket=envoy.admin_socket, admin_rest_port=envoy.internal, cors_origin=DEFAULT_CORS_ORIGIN,
        access_log=False, limits=limits,
    ))
    with open(folder / "envoy.log", "wb") as log:
        proc = subprocess.Popen([str(VENV_BIN / "envoy"), "-c", str(config), "--disable-hot-restart",
                                 "--log-level", "error"], cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
                                env=envoy_environment(MASTER.edge_token()))
    return envoy, proc


def _listening(envoy: FloodEnvoy, proc: subprocess.Popen) -> bool:
    deadline = time.monotonic() + 15
    while not all(_answers(port) for port in (envoy.browser, envoy.internal)):
        if proc.poll() is not None:
            return False
        assert time.monotonic() < deadline, "Envoy did not listen within 15 s"
        time.sleep(0.1)
    return True


def _answers(port: int) -> bool:
    try:
        return _get(port) == 200
    except OSError:
        return False


def _get(port: int) -> int:
    return catalog_status(port)


def _timed_get(port: int) -> tuple[float, int | str]:
    """(seconds, status) of one fresh-connection request; a refused connection's status is the error."""
    started = time.perf_counter()
    try:
        status: int | str = _get(port)
    except OSError as error:  # reset or closed before the response: Envoy refused the connection
        status = type(error).__name__
    return time.perf_counter() - started, status


def _p99(seconds: list[float]) -> float:
    return sorted(seconds)[max(0, int(len(seconds) * 0.99) - 1)]


@contextmanager
def _attacker(script: str, port: int, argument: int) -> Iterator[subprocess.Popen]:
    # Lowest CPU priority: a real attacker runs on its own machine, not on the two cores that Envoy,
    # the server and the measuring client share here.
    proc = subprocess.Popen([sys.executable, "-c", script, "127.0.0.2", str(port), str(argument)],
                            stdout=subprocess.PIPE, text=True, preexec_fn=lambda: os.nice(19))
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() in (str(argument), "started")
        yield proc
        assert proc.poll() is None  # it was still at it
    finally:
        proc.kill()
        proc.wait()


def _measure_for(seconds: float, *ports: int) -> dict[int, list[tuple[float, int | str]]]:
    """Fresh-connection requests to the ports in turn for `seconds`: (seconds, status) per request."""
    taken: dict[int, list[tuple[float, int | str]]] = {port: [] for port in ports}
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        for port in ports:
            taken[port].append(_timed_get(port))
    return taken


def test_a_connection_that_sends_nothing_is_closed_after_5_seconds(flood_envoy):
    """A zero-byte connection lived the full 60 s idle timeout; now 5 s (listener_filters_timeout)."""
    with socket.create_connection(("127.0.0.1", flood_envoy.browser), timeout=30) as sock:
        started = time.monotonic()
        assert sock.recv(1) == b""
        lived = time.monotonic() - started
    assert SILENT_CUT_SECONDS - 1 < lived < SILENT_CUT_SECONDS + 2, lived


def _idle_keep_alive(port: int, source: str = "127.0.0.1") -> socket.socket:
    """A connection that sent one request (Envoy's own 404: no server work) and then goes idle."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    sock.sendall(b"GET /not-served HTTP/1.1\r\nhost: billing\r\n\r\n")
    return sock


def _silent(port: int) -> socket.socket:
    """A connection that sends nothing (Envoy cuts it after 5 s)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.bind(("127.0.0.3", 0))
    sock.connect(("127.0.0.1", port))
    return sock


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether Envoy closes the connection within `seconds` (its response before that is skipped)."""
    until = time.monotonic() + seconds
    while (left := until - time.monotonic()) > 0:
        if not select.select([sock], [], [], left)[0]:
            return False
        try:
            if sock.recv(65536) == b"":
                return True
        except ConnectionResetError:
            return True
    return False


def test_idle_keep_alive_connections_are_shed_within_seconds_under_pressure_and_kept_without(flood_envoy):
    """reduce_timeouts: from 50 % of the browser budget in use the 60 s idle timeout shrinks, to
    1 s at 90 %. A probe connection gone idle lives on at low pressure; with 95 % of the budget held
    by idle keep-alive connections it is closed within seconds, though the internal listener is
    busy meanwhile (its connections once drove the count reduce_timeouts reads to 0). The pressure
    comes from silent connections (cut after 5 s, no idle timeout): idle ones would be shed
    themselves and take the pressure with them."""
    probe = _idle_keep_alive(flood_envoy.browser)
    crowd: list[socket.socket] = []
    try:
        assert not _closed_within(probe, 3.0), "an idle keep-alive connection was closed at low pressure"
        assert flood_envoy.stats()[IDLE_TIMEOUTS] == 0
        crowd = [_silent(flood_envoy.browser) for _ in range(LIMITS.max_connections * 95 // 100 - 1)]
        statuses = [_get(flood_envoy.internal) for _ in range(300)]
        assert statuses == [200] * 300
        started = time.monotonic()
        while flood_envoy.stats()[IDLE_TIMEOUTS] == 0:
            assert time.monotonic() - started < 3.0, "the idle probe's timeout did not fire under connection pressure"
            time.sleep(0.1)
        fired = time.monotonic() - started
        # Envoy counts the timeout at once but the close reached the client only seconds later in
        # every run (around when the silent crowd was cut): the bound is on the count, and the
        # connection is gone within the silent cut's 5 s plus a margin, far from the 60 s.
        assert _closed_within(probe, 8.0), "the idle probe was not closed under connection pressure"
        print(f"\nidle probe timed out {fired:.1f} s after the pressure rose, closed {time.monotonic() - started:.1f} s")
    finally:
        probe.close()
        for sock in crowd:
            sock.close()


def test_silent_connections_opened_past_the_budget_are_cut_so_the_browser_listener_stays_fast(flood_envoy):
    """An address opening 150 silent connections a second would hold 1,800 after 12 s, past the
    browser budget (1,000), if each lived the 60 s idle timeout; the 5 s cut keeps it near 750. A
    new client's p99 on the browser listener stays under 50 ms from the 7th second on, when the
    budget would be full without the cut."""
    rate = 150
    assert rate * ATTACK_SECONDS > LIMITS.max_connections > rate * (SILENT_CUT_SECONDS + 1)
    cut_before = flood_envoy.listener_stat(flood_envoy.browser, "downstream_pre_cx_timeout")
    with _attacker(OPENING_ATTACKER, flood_envoy.browser, rate):
        _measure_for(LIMITS.max_connections / rate, flood_envoy.browser)  # until the budget would be full
        taken = _measure_for(ATTACK_SECONDS - LIMITS.max_connections / rate, flood_envoy.browser)[flood_envoy.browser]
        cut = flood_envoy.listener_stat(flood_envoy.browser, "downstream_pre_cx_timeout") - cut_before
    refused = [status for _, status in taken if status != 200]
    p99 = _p99([seconds for seconds, _ in taken])
    print(f"\nbrowser p99 {p99 * 1000:.1f} ms over {len(taken)} new clients, {cut:.0f} silent connections cut")
    assert refused == []
    assert cut >= rate * (ATTACK_SECONDS - SILENT_CUT_SECONDS - 1)
    assert p99 < P99_BOUND_SECONDS, p99


def test_one_address_holding_5000_silent_connections_leaves_the_internal_listener_fast(flood_envoy):
    """5,000 held connections, each one Envoy closes (past the budget at once, within budget after
    5 s) opened again at once, for 12 s. The internal listener's p99 stays under 50 ms throughout.
    The browser listener is full: Envoy has no per-address budget, and whatever slot the 5 s cut
    frees the attacker's reconnects take first; a new client there is refused at once (no hang)."""
    cut_before = flood_envoy.listener_stat(flood_envoy.browser, "downstream_pre_cx_timeout")
    with _attacker(HOLDING_ATTACKER, flood_envoy.browser, IDLE_CONNECTIONS):
        taken = _measure_for(ATTACK_SECONDS, flood_envoy.internal, flood_envoy.browser)
        cut = flood_envoy.listener_stat(flood_envoy.browser, "downstream_pre_cx_timeout") - cut_before
    internal, browser = taken[flood_envoy.internal], taken[flood_envoy.browser]
    p99 = {"internal": _p99([s for s, _ in internal]), "browser (answered or refused)": _p99([s for s, _ in browser])}
    served = sum(status == 200 for _, status in browser)
    print(f"\np99 over {len(internal)} new clients each with {IDLE_CONNECTIONS} silent connections held: {p99}; "
          f"browser listener served {served}, {cut:.0f} silent connections cut")
    assert [status for _, status in internal] == [200] * len(internal)
    assert cut >= LIMITS.max_connections  # the budget was cut after 5 s and refilled
    assert all(seconds < P99_BOUND_SECONDS for seconds in p99.values()), p99


def test_issue_19_one_address_holding_5000_idle_connections_leaves_both_listeners_fast(default_envoy):
    """Issue 19, item 4, as written, with the budgets as shipped: one address holds 5,000 idle
    connections (each one Envoy cuts opened again at once) while another client's p99 stays under
    50 ms on both listeners, every request answered."""
    assert EnvoyLimits().max_connections > IDLE_CONNECTIONS
    with _attacker(HOLDING_ATTACKER, default_envoy.browser, IDLE_CONNECTIONS):
        taken = _measure_for(ATTACK_SECONDS, default_envoy.internal, default_envoy.browser)
    p99 = {name: _p99([s for s, _ in taken[port]])
           for name, port in (("internal", default_envoy.internal), ("browser", default_envoy.browser))}
    print(f"\np99 with {IDLE_CONNECTIONS} idle connections held by one address, budgets as shipped: {p99}")
    for port in (default_envoy.internal, default_envoy.browser):
        assert [status for _, status in taken[port]] == [200] * len(taken[port])
    assert all(seconds < P99_BOUND_SECONDS for seconds in p99.values()), p99
