"""`billing-dev run`: the service as `make run` starts it, each process supervised.

The embedded PostgreSQL (unless DATABASE_URL is set), the gRPC server, Envoy with the REST
transcoder in front, the local Stripe stand-in (without STRIPE_SECRET_KEY) and the demo app.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from billing.adapters.key_secrets import MasterKey
from billing import settings as declared
from billing.settings import text as setting_text
from billing.settings import (
    DEFAULT_REST_PORT, REPO_ROOT, EnvoyLimits, Settings, configured_database_url, demo_port, libpq_url, local_database_url_file,
    with_demo_origins,
)
from devstack import clock, embedded_postgres
from devstack.envoy_config import ENVOY_TEMPLATE, envoy_environment, render_envoy_config
from devstack.supervised_postgres import SupervisedPostgres

DEV_DATABASE = "billing"


def database_url() -> str:
    """DATABASE_URL when set; else the embedded PostgreSQL (started if needed) and its `billing`
    database, announced in LOCAL_DATABASE_URL_FILE for the `billing` commands."""
    configured = configured_database_url()
    if configured:
        return configured
    server_url = embedded_postgres.start(REPO_ROOT / embedded_postgres.DEFAULT_DATA_DIR)
    ensure_database(server_url, DEV_DATABASE)
    url = server_url.rsplit("/", 1)[0] + f"/{DEV_DATABASE}"
    _announce(url)
    return url


def standby_url(primary_url: str) -> str | None:
    """EMBEDDED_PG_STANDBY=1 (and the embedded primary): its hot standby, made and started if needed, as
    the server's DATABASE_READ_URL (the `billing` database, replicated). None otherwise."""
    if not declared._flag("EMBEDDED_PG_STANDBY"):
        return None
    if configured_database_url():
        print("billing-dev run: EMBEDDED_PG_STANDBY is for the embedded PostgreSQL; with DATABASE_URL set, "
              "name a standby in DATABASE_READ_URL", file=sys.stderr, flush=True)
        return None
    primary_dir = REPO_ROOT / embedded_postgres.DEFAULT_DATA_DIR
    server_url = embedded_postgres.start_standby(primary_dir)
    return server_url.rsplit("/", 1)[0] + "/" + primary_url.rsplit("/", 1)[1]


def _announce(url: str) -> None:
    """Only the checkout's own database is announced: a stack on another data directory (a test's
    own `billing-dev run`) must not take over what the developer's `billing` commands use, unless
    it names its own announcement file."""
    if declared.is_set("EMBEDDED_PG_DATA_DIR") and not declared.is_set("BILLING_LOCAL_DATABASE_URL_FILE"):
        return
    announced = local_database_url_file()
    announced.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(announced, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(url + "\n")


def forget_database() -> None:
    local_database_url_file().unlink(missing_ok=True)


def ensure_database(server_url: str, name: str) -> None:
    with psycopg.connect(libpq_url(server_url), autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{name}"')


def envoy_upstreams(settings: Settings) -> tuple[tuple[str, int], ...]:
    """BILLING_GRPC_UPSTREAMS, else each worker's own port (Envoy checks and ejects each worker
    alone), else the server's port."""
    if settings.edge.grpc_upstreams:
        return settings.edge.grpc_upstreams
    ports = settings.server.worker_ports or (settings.server.grpc_port,)
    return tuple(("127.0.0.1", port) for port in ports)


def run() -> int:
    """The service as `make run` starts it: the gRPC server and Envoy's REST in front, as Settings say,
    the Stripe stand-in without STRIPE_SECRET_KEY, and the demo app unless BILLING_DEMO_PORT is 0.

    Each is supervised: one that dies (a crash, `kill -9`) is started again after a backoff
    (RESTART_FIRST_SECONDS, doubling to RESTART_DELAY_SECONDS_MAX; back to the first after a run of
    RESTART_RESET_AFTER_SECONDS). SIGINT/SIGTERM stop them all and end the command. The server
    migrates the database when it answers (BILLING_MIGRATE_ON_START, on unless set to 0), so
    `billing-dev run` starts, and keeps running, while the database is down.
    """
    settings = Settings.from_environment(database_url=database_url())
    suffix = "" if settings.edge.rest_port == DEFAULT_REST_PORT else f"-{settings.edge.rest_port}"
    config_path = REPO_ROOT / ".data" / f"envoy{suffix}.yaml"
    # Envoy's admin interface: a unix socket only this user may open (mode 0600), never a TCP port.
    # `curl --unix-socket .data/envoy-admin.sock http://localhost/stats/prometheus`
    admin_socket = REPO_ROOT / ".data" / f"envoy-admin{suffix}.sock"
    config_path.parent.mkdir(parents=True, exist_ok=True)
    limits = EnvoyLimits.from_environment()
    config_path.write_text(
        render_envoy_config(
            ENVOY_TEMPLATE.read_text(),
            listen_port=settings.edge.rest_port,
            grpc_upstreams=envoy_upstreams(settings),
            edge_peers=settings.edge.edge_peers,
            admin_socket=admin_socket,
            cors_origin=envoy_cors_origins(settings),
            admin_rest_port=settings.edge.admin_rest_port,
            admin_rest_host=settings.edge.admin_rest_host,
            limits=limits,
        )
    )
    raise_open_file_limit(limits.total_max_connections + ENVOY_SPARE_FILES)
    master_key = MasterKey.load(settings.keys.master_key_path, settings.keys.master_key_hex)
    envoy_env = envoy_environment(master_key.edge_token())
    # The server reads the same environment; only the database URL may have been resolved here.
    read_url = standby_url(settings.database.url)
    env = os.environ | {
        "DATABASE_URL": settings.database.url,
        **({"DATABASE_READ_URL": read_url} if read_url else {}),
        "BILLING_MIGRATE_ON_START": os.environ.get("BILLING_MIGRATE_ON_START", "1"),
        # Local receivers of outbound webhooks listen on this host (refused elsewhere: SSRF).
        "BILLING_WEBHOOK_ALLOW_PRIVATE": os.environ.get("BILLING_WEBHOOK_ALLOW_PRIVATE", "1"),
    }
    venv_bin = Path(sys.executable).parent
    children: list[Supervised | SupervisedPostgres] = [
        Supervised(
            "envoy", [str(venv_bin / "envoy"), "-c", str(config_path), "--log-level", "warn", "--disable-hot-restart",
             "--file-flush-interval-msec", "1000"],
            envoy_env,
        ),
    ]
    payments = "Stripe (STRIPE_SECRET_KEY)"
    if settings.payments.stripe is None:
        standin, stripe_env = _stripe_standin(settings)
        children.append(standin)
        env |= stripe_env
        payments = (f"the local Stripe stand-in on {stripe_env['STRIPE_API_BASE']} (no STRIPE_SECRET_KEY; "
                    "`billing-dev stripe-secret` prints its webhook secret, `billing-dev clock advance 31d` lives through a month)")
    children.insert(0, Supervised("billing server", [sys.executable, "-m", "billing.entrypoints.server"], env))
    if not configured_database_url():
        children.insert(0, _supervised_postgres(settings.database.url))
        if read_url:
            children.insert(1, _supervised_postgres(read_url, embedded_postgres.standby_data_dir(
                REPO_ROOT / embedded_postgres.DEFAULT_DATA_DIR), name="embedded PostgreSQL standby"))
    demo = ""
    if demo_port():
        # The demo app and its app backend (devstack.demo_server); env carries the stand-in's settings too.
        children.append(Supervised("demo server", [sys.executable, "-m", "devstack.demo_server"], env))
        demo = f" The demo app: http://localhost:{demo_port()}."
    for child in children:
        child.start()
    print(f"billing: gRPC on :{settings.server.grpc_port}, "
          f"REST on http://localhost:{settings.edge.rest_port}/v1/billing/..., "
          f"database {_without_password(settings.database.url)}"
          f"{f' (reads on the standby {_without_password(read_url)} once it has caught up)' if read_url else ''}, "
          f"payments through {payments}.{demo} Ctrl-C stops.",
          flush=True)

    stopping: list[int] = []

    def stop(signum: int = signal.SIGTERM, *_: object) -> None:
        stopping.append(signum)
        for child in children:
            child.signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while not stopping:
        for child in children:
            child.supervise()
        time.sleep(0.2)
    for child in children:
        child.wait(timeout=settings.server.shutdown_grace_seconds + 5)
    if suffix:
        config_path.unlink(missing_ok=True)  # one per REST port (tests run several): not left behind
        admin_socket.unlink(missing_ok=True)
    return max(child.exit_code_after_stop() for child in children)


def envoy_cors_origins(settings: Settings) -> tuple[str, ...]:
    """The origins the Envoy of `billing-dev run` allows: the app's, and the demo's while `billing-dev run` serves it
    (BILLING_DEMO_PORT not 0): a production origin set in BILLING_CORS_ORIGIN alone brings in no demo."""
    return with_demo_origins(settings.edge.cors_origins, demo_port())


# Files Envoy holds besides its downstream connections: upstream connections, listeners, logs.
ENVOY_SPARE_FILES = 256


def raise_open_file_limit(needed: int) -> None:
    """Raises this process's soft RLIMIT_NOFILE to its hard limit (children inherit it): Envoy holds
    one descriptor per connection, and a soft limit of 1024 (common) would refuse connections long
    before the connection budgets do. Says so when even the hard limit is below what they need."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    if soft != resource.RLIM_INFINITY and soft < needed:
        print(f"billing-dev run: the open file limit ({soft}) is below Envoy's connection budgets plus spare ({needed}); "
              "lower BILLING_MAX_CONNECTIONS / BILLING_INTERNAL_MAX_CONNECTIONS or raise `ulimit -Hn`",
              file=sys.stderr, flush=True)


STANDIN_SECRET_KEY = "sk_test_local_standin"


def _stripe_standin(settings: Settings) -> tuple["Supervised", dict[str, str]]:
    """Without STRIPE_SECRET_KEY, `make run` takes payments offline: the local stand-in serves the
    Stripe API the server calls and a checkout page, and delivers signed webhooks to Envoy's
    public listener (as Stripe would). Its state, webhook secret (unless STRIPE_WEBHOOK_SECRET is set)
    and the local clock's advance are kept in .data/stripe-standin/ (devstack.clock)."""
    port = clock.standin_port()
    secret = clock.local_webhook_secret()
    api_base = f"http://127.0.0.1:{port}"
    argv = [
        sys.executable, "-m", "devstack.standin.stripe_standin", "--port", str(port),
        "--webhook-url", f"http://127.0.0.1:{settings.edge.rest_port}/v1/billing/webhooks/stripe",
        "--public-base-url", f"http://localhost:{port}", "--state", str(clock.state_file()),
    ]
    # The server checks every secret set (two while rotating); the stand-in signs with the first.
    stripe_env = {"STRIPE_SECRET_KEY": STANDIN_SECRET_KEY, "STRIPE_API_BASE": api_base,
                  "STRIPE_WEBHOOK_SECRET": setting_text("STRIPE_WEBHOOK_SECRET").strip() or secret,
                  "BILLING_CLOCK_OFFSET_FILE": str(clock.clock_offset_file())}
    # The secret goes by environment (an argument would show in ps).
    return Supervised("stripe stand-in", argv, os.environ | {"STRIPE_WEBHOOK_SECRET": secret}), stripe_env


RESTART_FIRST_SECONDS = 0.5
RESTART_DELAY_SECONDS_MAX = 10.0
RESTART_RESET_AFTER_SECONDS = 30.0


def _supervised_postgres(url: str, data_dir: Path | None = None, name: str | None = None) -> SupervisedPostgres:
    """The embedded PostgreSQL `database_url()` started (or its standby), restarted on its port when it dies."""
    from sqlalchemy.engine import make_url

    port = make_url(url).port
    assert port is not None, "the embedded PostgreSQL's URL names its port"
    supervised = SupervisedPostgres(data_dir or REPO_ROOT / embedded_postgres.DEFAULT_DATA_DIR, port,
                                    first_delay=RESTART_FIRST_SECONDS, max_delay=RESTART_DELAY_SECONDS_MAX,
                                    reset_after=RESTART_RESET_AFTER_SECONDS)
    if name:
        supervised.name = name
    return supervised


class Supervised:
    """One child of `billing-dev run`, started again when it dies unasked."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str] | None):
        self.name, self._argv, self._env = name, argv, env
        self.process: subprocess.Popen | None = None
        self._started_at = 0.0
        self._delay = 0.0
        self._restart_at: float | None = None
        self.restarts = 0

    def start(self) -> None:
        self.process = subprocess.Popen(self._argv, env=self._env, cwd=REPO_ROOT)
        self._started_at = time.monotonic()
        self._restart_at = None

    def supervise(self) -> None:
        now = time.monotonic()
        if self._restart_at is not None:
            if now >= self._restart_at:
                self.restarts += 1
                print(f"billing-dev run: restarting {self.name} (restart {self.restarts})", file=sys.stderr, flush=True)
                self.start()
            return
        assert self.process is not None
        code = self.process.poll()
        if code is None:
            return
        ran = now - self._started_at
        self._delay = RESTART_FIRST_SECONDS if ran >= RESTART_RESET_AFTER_SECONDS or not self._delay else min(
            self._delay * 2, RESTART_DELAY_SECONDS_MAX
        )
        self._restart_at = now + self._delay
        print(f"billing-dev run: {self.name} (pid {self.process.pid}) exited with code {code} after {ran:.1f}s; "
              f"restarting in {self._delay:.1f}s", file=sys.stderr, flush=True)

    def signal(self, signum: int) -> None:
        self._restart_at = None
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signum)

    def wait(self, timeout: float) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def exit_code_after_stop(self) -> int:
        """0 for a child that we stopped and that exited cleanly or of that signal."""
        code = 0 if self.process is None else self.process.returncode
        return 0 if code is None or code in (0, -signal.SIGTERM, -signal.SIGINT) else abs(code)


def _without_password(url: str) -> str:
    """For printing: user:password@ -> user:***@."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    return f"{scheme}{sep}{credentials.split(':', 1)[0]}:***@{host}"


