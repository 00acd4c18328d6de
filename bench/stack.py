"""Starts the service as it runs in production for a benchmark: N server workers + Envoy."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from billing.adapters.db.migrate import upgrade_to_head
from billing.domain.auth import Scope
from devstack.envoy_config import ENVOY_TEMPLATE, envoy_environment, render_envoy_config
from billing.settings import DEFAULT_CORS_ORIGIN, NO_RATE_LIMIT
from testkit.processes import REPO_ROOT, VENV_BIN, free_port, health_serving, stop_process
from testkit.signing import MASTER, create_key

START_TIMEOUT_S = 40


@contextmanager
def running_stack(database_url: str, workers: int, logs: Path, envoy_concurrency: int = 1,
                  server_env: dict[str, str] | None = None, direct_url: str | None = None):
    """Yields (grpc_target, rest_base_url, pids of every server and Envoy process).

    grpc_target lists every worker's private port (comma-separated) when there are several,
    so the gRPC load generator balances over them as a client-side balancer would.
    server_env: more of the server's settings (a pooler's); direct_url: the database itself when
    database_url is a pooler's (the load generators' key is written there).
    """
    logs.mkdir(parents=True, exist_ok=True)
    sign_as_clients_do(direct_url or database_url)
    stripe_env = stripe_for_webhooks()
    grpc_port, rest_port = free_port(), free_port()
    worker_ports = [free_port() for _ in range(workers)] if workers > 1 else []
    env = os.environ | {
        "DATABASE_URL": database_url,
        "BILLING_GRPC_PORT": str(grpc_port),
        "BILLING_WORKERS": str(workers),
        "BILLING_WORKER_PORTS": ",".join(map(str, worker_ports)),
        "BILLING_MIGRATE_ON_START": "0",
        "BILLING_LOG_LEVEL": "WARNING",
        **stripe_env,
        **(server_env or {}),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "billing.entrypoints.server"], env=env, cwd=REPO_ROOT,
        stdout=open(logs / "server.log", "wb"), stderr=subprocess.STDOUT,
    )
    config = logs / "envoy.yaml"
    # No access log under load: it costs Envoy CPU the benchmark would count against the service.
    template = ENVOY_TEMPLATE.read_text()
    config.write_text(render_envoy_config(
        template, listen_port=rest_port, grpc_port=grpc_port, admin_socket=logs.resolve() / "envoy-admin.sock",
        cors_origin=DEFAULT_CORS_ORIGIN, admin_rest_port=free_port(), access_log=False,
        limits=NO_RATE_LIMIT,  # the load comes from 127.0.0.1: a per-IP limit would measure itself
    ))
    envoy = subprocess.Popen(
        [str(VENV_BIN / "envoy"), "-c", str(config), "--disable-hot-restart", "--log-level", "error",
         "--concurrency", str(envoy_concurrency)],
        cwd=REPO_ROOT, stdout=open(logs / "envoy.log", "wb"), stderr=subprocess.STDOUT,
        env=envoy_environment(MASTER.edge_token()),
    )
    try:
        target = f"127.0.0.1:{grpc_port}"
        deadline = time.monotonic() + START_TIMEOUT_S
        while not health_serving(target):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start; see {logs / 'server.log'}")
            time.sleep(0.3)
        time.sleep(1.0)  # every worker binds; Envoy's listener comes up
        load_target = ",".join(f"127.0.0.1:{port}" for port in worker_ports) or target
        yield load_target, f"http://127.0.0.1:{rest_port}", _children(server.pid) + [server.pid, envoy.pid]
    finally:
        stop_process(envoy)
        stop_process(server, timeout=20)


def sign_as_clients_do(database_url: str) -> None:
    """A service key for the load generators, in the environment they read: REST requests are
    signed (wrk's Lua, bench/loadgen.py), gRPC calls carry the key as a bearer token. The server
    inherits the master key (testkit.signing sets BILLING_MASTER_KEY)."""
    upgrade_to_head(database_url)  # datasets built before a migration get it (api_keys)
    key = create_key(database_url, Scope.SERVICE)
    os.environ.update(
        BENCH_KEY_ID=key.key_id, BENCH_KEY_SECRET=key.secret, BENCH_GRPC_AUTHORIZATION=key.bearer()[0][1],
    )


# A payment_intent.succeeded delivery needs no call to Stripe: the API base is a closed local
# port, so a call the benchmark did not mean to make fails at once instead of reaching Stripe.
UNREACHABLE_STRIPE_API = "http://127.0.0.1:9"


def stripe_for_webhooks() -> dict[str, str]:
    """The server's Stripe settings for the webhook scenario (bench/webhooks.py), which replace
    any in the environment: a test secret key, and a webhook signing secret new to each stack,
    left for the delivery generator in BENCH_STRIPE_WEBHOOK_SECRET (read from the environment,
    as the HMAC key is: an argument shows in ps)."""
    webhook_secret = "whsec_" + secrets.token_hex(24)
    os.environ["BENCH_STRIPE_WEBHOOK_SECRET"] = webhook_secret
    return {
        "STRIPE_SECRET_KEY": "sk_test_bench_" + secrets.token_hex(12),
        "STRIPE_WEBHOOK_SECRET": webhook_secret,
        "STRIPE_API_BASE": UNREACHABLE_STRIPE_API,
    }


def _children(pid: int) -> list[int]:
    import psutil

    return [child.pid for child in psutil.Process(pid).children(recursive=True)]
