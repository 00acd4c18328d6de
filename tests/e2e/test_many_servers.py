"""Many servers behind one Envoy (issue 25): two server processes on one database of their own.

Envoy's cluster lists both, health-checked by the gRPC health service: one killed, the REST calls
go on succeeding once Envoy has marked it down (its admin /clusters says so), answered by the
survivor. A user key's limit holds across the two: each replica takes half of it (they count each
other in replica_heartbeats), so a burst through Envoy is accepted at most burst + rate x elapsed
times over both, not twice that. Two Envoys at the edge likewise share a client address's limit."""

from __future__ import annotations

import re
import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator

from billing.domain.auth import Scope
from billing.settings import EnvoyLimits
from tests.e2e.conftest import E2EStack
from tests.e2e.envoy_process import EnvoyProxy, admin_get, running_envoy
from tests.e2e.helpers import call, catalog_status, create_account
from tests.support.database import fresh_database
from testkit.processes import BillingServer, free_port, start_billing_server, stop_process
from testkit.signing import SigningKey, create_key
from testkit.waiting import wait_until

USER_RATE = 10  # BILLING_KEY_RATE_LIMIT_USER: calls per second per user key, both replicas together
USER_BURST = 2 * USER_RATE
SHARE_LEARNED_SECONDS = 40  # the older replica counts the newer at its next report (every ~10 s)
PER_IP_RATE = 10  # BILLING_RATE_LIMIT_PER_IP, both Envoys together
PER_IP_BURST = 2 * PER_IP_RATE
MARKED_DOWN_SECONDS = 30  # two failed health checks 2 s apart, or three failed calls


@contextmanager
def two_servers_behind_envoy(folder: Path, extra_env: dict[str, str] | None = None,
                             ) -> Iterator[tuple[E2EStack, list[BillingServer], str, SigningKey]]:
    """Yields the stack (REST through Envoy, signed with an admin key of this database), both
    servers, a user with an account, and a key of that user's own (USER scope)."""
    with fresh_database("billing_servers") as database_url, ExitStack() as stack:
        admin = create_key(database_url, Scope.ADMIN)
        user = f"servers-{uuid.uuid4().hex[:8]}"
        user_key = create_key(database_url, Scope.USER, user_id=user)  # before the servers: they load it at start
        servers = []
        for index in range(2):
            server = start_billing_server(database_url, folder / f"server-{index}", migrate=False, extra_env=extra_env)
            stack.callback(stop_process, server.process)
            servers.append(server)
        envoy = stack.enter_context(running_envoy(folder / "envoy", [("127.0.0.1", s.grpc_port) for s in servers]))
        e2e = E2EStack(f"http://127.0.0.1:{envoy.listen_port}", servers[0].grpc_target, database_url, servers[0],
                       envoy, admin)
        wait_until(lambda: all(flag == "healthy" for flag in health_flags(envoy, servers).values()),
                   "Envoy's first health checks pass on both servers", timeout=MARKED_DOWN_SECONDS)
        create_account(e2e.http, user)
        yield e2e, servers, user, user_key


def health_flags(envoy: EnvoyProxy, servers: list[BillingServer]) -> dict[int, str]:
    """Each server's health flags in Envoy's /clusters (`healthy`, or `/failed_active_hc`, ...), by port."""
    clusters = admin_get(envoy, "/clusters")
    flags = {int(port): flag for port, flag in
             re.findall(r"^billing_grpc::127\.0\.0\.1:(\d+)::health_flags::(\S+)$", clusters, re.MULTILINE)}
    return {server.grpc_port: flags.get(server.grpc_port, "absent") for server in servers}


def successes(envoy: EnvoyProxy, server: BillingServer) -> int:
    """The calls Envoy saw this server answer (its /clusters rq_success counter)."""
    found = re.search(rf"^billing_grpc::127\.0\.0\.1:{server.grpc_port}::rq_success::(\d+)$",
                      admin_get(envoy, "/clusters"), re.MULTILINE)
    return int(found.group(1)) if found else 0


def test_a_killed_server_is_marked_down_and_the_survivor_answers_every_call(tmp_path):
    with two_servers_behind_envoy(tmp_path) as (e2e, (doomed, survivor), user, _):
        balance = f"/v1/billing/balance/{user}"
        assert [call(e2e.http, "GET", balance)[0] for _ in range(20)] == [200] * 20
        assert successes(e2e.envoy, doomed) > 0 and successes(e2e.envoy, survivor) > 0  # both in the rotation

        doomed.process.send_signal(signal.SIGKILL)
        doomed.process.wait(timeout=10)
        flags = wait_until(lambda: (f := health_flags(e2e.envoy, [doomed, survivor]))[doomed.grpc_port] != "healthy"
                           and f, "Envoy marks the killed server down", timeout=MARKED_DOWN_SECONDS)
        assert flags[survivor.grpc_port] == "healthy", flags
        assert "failed_active_hc" in flags[doomed.grpc_port] or "failed_outlier_check" in flags[doomed.grpc_port]

        answered_before = successes(e2e.envoy, survivor)
        statuses = [call(e2e.http, "GET", balance)[0] for _ in range(30)]
        statuses += [call(e2e.http, "POST", "/v1/billing/accounts", {"user_id": f"after-{n}-{user}"})[0]
                     for n in range(10)]
        assert statuses == [200] * 40
        assert successes(e2e.envoy, survivor) - answered_before >= 40


def test_a_keys_limit_holds_over_both_replicas_together(tmp_path):
    """Each replica learns there are two (replica_heartbeats) and keeps half the key's rate and burst;
    a burst through Envoy, spread over both, is accepted at most USER_BURST + USER_RATE x elapsed
    times in all (each replica alone would allow that much: twice it together without the share)."""
    env = {"BILLING_KEY_RATE_LIMIT_USER": str(USER_RATE)}
    with two_servers_behind_envoy(tmp_path, env) as (e2e, servers, user, user_key):
        for server in servers:  # the last to start counts two at once; the first at its next report
            wait_until(lambda: "this replica's share is 1/2" in server.stderr_log.read_text()
                       + server.stdout_log.read_text(),
                       f"replica :{server.grpc_port} takes its half of the per-key limits",
                       timeout=SHARE_LEARNED_SECONDS, interval=0.5)
        balance = f"/v1/billing/balance/{user}"

        with ThreadPoolExecutor(max_workers=16) as pool:
            started = time.monotonic()
            statuses = list(pool.map(lambda _: call(e2e.http, "GET", balance, key=user_key)[0], range(120)))
            elapsed = time.monotonic() - started

        accepted, refused = statuses.count(200), statuses.count(429)
        assert accepted + refused == len(statuses), statuses
        assert refused > 0, statuses
        # A token bucket's bound over the burst's span: the two halves' bursts and rates add up to the key's.
        assert accepted <= USER_BURST + USER_RATE * elapsed, (accepted, refused, elapsed)
        assert accepted >= USER_BURST - 1, (accepted, refused, elapsed)  # both halves' bursts (less a fraction)


def test_two_envoys_share_a_client_addresss_limit(tmp_path):
    """Each Envoy lists both as its local cluster (BILLING_EDGE_PEERS) and keeps half of the per-IP
    bucket: a burst from one address spread over both is accepted at most burst + rate x elapsed
    times in all (each Envoy alone would allow that much)."""

    with fresh_database("billing_edges") as database_url, ExitStack() as stack:
        server = start_billing_server(database_url, tmp_path / "server", migrate=False)
        stack.callback(stop_process, server.process)
        ports = [free_port(), free_port()]
        peers = [("127.0.0.1", port) for port in ports]
        envoys = [stack.enter_context(running_envoy(
            tmp_path / f"envoy-{index}", [("127.0.0.1", server.grpc_port)], EnvoyLimits(PER_IP_RATE, PER_IP_BURST),
            listen_port=port, edge_peers=peers)) for index, port in enumerate(ports)]

        def catalog(n: int) -> int:  # unsigned: the catalog is public
            return catalog_status(envoys[n % 2].listen_port, timeout=30)

        with ThreadPoolExecutor(max_workers=16) as pool:
            started = time.monotonic()
            statuses = list(pool.map(catalog, range(120)))
            elapsed = time.monotonic() - started

    accepted, refused = statuses.count(200), statuses.count(429)
    assert accepted + refused == len(statuses), statuses
    assert accepted <= PER_IP_BURST + PER_IP_RATE * elapsed, (accepted, refused, elapsed)
    # More than one Envoy's half: both answered (their readiness probes spent a token or two).
    assert accepted > PER_IP_BURST // 2, (accepted, refused, elapsed)
