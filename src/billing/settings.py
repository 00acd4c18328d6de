"""Configuration from the environment, read once at start; each default is written here once."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in ("1", "true", "yes", "on")


# The package is installed editable: the checkout holds its data files.
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CATALOG_PATH = REPO_ROOT / "catalog" / "catalog.json"
DEFAULT_CORS_ORIGIN = "http://localhost:3000"
DEFAULT_DEMO_PORT = 3000  # the demo app under `make run`: the default CORS origin's port
# A browser names a loopback server by either name, and each is an origin of its own.
LOOPBACK_NAMES = ("localhost", "127.0.0.1")
# gRPC and the internal REST listener are internal surfaces: this host only, unless a setting opens them.
LOOPBACK = "127.0.0.1"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
# BILLING_KEY_RATE_LIMIT_USER / _SERVICE / _ADMIN: calls per second per key and process.
DEFAULT_KEY_RATE_LIMITS = {"user": 20, "service": 5000, "admin": 1000}
DEFAULT_MASTER_KEY_PATH = REPO_ROOT / ".data" / "master.key"
# Written (mode 0600) by the local stack (devstack) when it starts the embedded PostgreSQL: where the
# `billing` commands find the database when DATABASE_URL is unset.
DEFAULT_LOCAL_DATABASE_URL_FILE = REPO_ROOT / ".data" / "database-url"


def local_database_url_file() -> Path:
    """BILLING_LOCAL_DATABASE_URL_FILE, else DEFAULT_LOCAL_DATABASE_URL_FILE."""
    return Path(os.environ.get("BILLING_LOCAL_DATABASE_URL_FILE") or DEFAULT_LOCAL_DATABASE_URL_FILE)
# The local Stripe stand-in of `billing-dev run` (devstack.clock): its files, one directory per port.
STANDIN_FILES = REPO_ROOT / ".data" / "stripe-standin"
DEFAULT_STANDIN_PORT = 12111
MIN_POOL_SIZE = 2
WALLET_BATCHER_CONNECTIONS = 1
LOG_FORMATS = ("json", "text")


def demo_port() -> int:
    """BILLING_DEMO_PORT: where `billing-dev run` serves the demo app (devstack.demo_server); 0: not at all."""
    return int(os.environ.get("BILLING_DEMO_PORT", str(DEFAULT_DEMO_PORT)))


def demo_origins(port: int) -> tuple[str, ...]:
    """The origins the demo app is served from on `port` (http://localhost:3000, http://127.0.0.1:3000)."""
    return tuple(f"http://{name}:{port}" for name in LOOPBACK_NAMES)


def cors_origins() -> tuple[str, ...]:
    """The browser origins of the app (Envoy's CORS): BILLING_CORS_ORIGIN, else the default. The demo's own
    origins are not among them: `billing-dev run` adds them when it serves the demo (with_demo_origins)."""
    configured = os.environ.get("BILLING_CORS_ORIGIN", "").strip()
    return (configured or DEFAULT_CORS_ORIGIN,)


def with_demo_origins(origins: tuple[str, ...], port: int) -> tuple[str, ...]:
    """`origins` and the demo app's two (by either loopback name) when it is served on `port` (0: not served)."""
    return tuple(dict.fromkeys(origins + (demo_origins(port) if port else ())))


@dataclass(frozen=True)
class EnvoyLimits:
    """Envoy's limits against hostile clients that are settings (render_envoy_config writes them).

    rate_limit_per_second: sustained requests per second per client IP (0: no rate limit, the
    filter is left out, as `make bench` runs); rate_limit_burst: the bucket's size (default twice
    the rate); max_connections: open connections the browser listener may hold, all clients
    together; internal_max_connections: the internal listener's own budget (it does not share the
    browser listener's); webhook_rate_limit_per_second / _burst: the Stripe webhook path's bucket
    per address, instead of the per-IP one (Stripe delivers from a handful of addresses).
    """

    rate_limit_per_second: int = 200
    rate_limit_burst: int = 400
    max_connections: int = 8192
    internal_max_connections: int = 1024
    webhook_rate_limit_per_second: int = 2000
    webhook_rate_limit_burst: int = 4000

    @classmethod
    def from_environment(cls) -> "EnvoyLimits":
        rate = int(os.environ.get("BILLING_RATE_LIMIT_PER_IP", str(cls.rate_limit_per_second)))
        burst = int(os.environ.get("BILLING_RATE_LIMIT_BURST", str(2 * rate)))
        webhook_rate = int(os.environ.get("BILLING_WEBHOOK_RATE_LIMIT_PER_IP", str(cls.webhook_rate_limit_per_second)))
        return cls(
            rate, burst,
            max_connections=int(os.environ.get("BILLING_MAX_CONNECTIONS", str(cls.max_connections))),
            internal_max_connections=int(
                os.environ.get("BILLING_INTERNAL_MAX_CONNECTIONS", str(cls.internal_max_connections))
            ),
            webhook_rate_limit_per_second=webhook_rate, webhook_rate_limit_burst=2 * webhook_rate,
        )

    def __post_init__(self) -> None:
        if self.rate_limit_per_second < 0 or self.max_connections < 1 or self.internal_max_connections < 1:
            raise ValueError(f"Envoy limits out of range: {self}")
        if self.rate_limit_per_second and self.rate_limit_burst < self.rate_limit_per_second:
            raise ValueError(f"BILLING_RATE_LIMIT_BURST must be at least the rate per second: {self}")
        if self.rate_limit_per_second and not 0 < self.webhook_rate_limit_per_second <= self.webhook_rate_limit_burst:
            raise ValueError(f"BILLING_WEBHOOK_RATE_LIMIT_PER_IP must be a positive rate: {self}")

    @property
    def total_max_connections(self) -> int:
        """Every listener's budget together: Envoy's global cap, a bound on its file descriptors."""
        return self.max_connections + self.internal_max_connections


NO_RATE_LIMIT = EnvoyLimits(rate_limit_per_second=0, rate_limit_burst=0)


@dataclass(frozen=True)
class StripeSettings:
    """STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET (two, comma-separated, during a rotation), and
    STRIPE_API_BASE (the local stand-in; unset: Stripe itself). None without a secret key."""

    secret_key: str
    webhook_secrets: tuple[str, ...]
    api_base: str | None

    @classmethod
    def from_environment(cls) -> "StripeSettings | None":
        secret_key = os.environ.get("STRIPE_SECRET_KEY", "").strip()
        if not secret_key:
            return None
        secrets = tuple(s.strip() for s in os.environ.get("STRIPE_WEBHOOK_SECRET", "").split(",") if s.strip())
        if not secrets:
            raise SystemExit("STRIPE_WEBHOOK_SECRET must be set with STRIPE_SECRET_KEY (whsec_..., two comma-separated while rotating)")
        return cls(secret_key, secrets, os.environ.get("STRIPE_API_BASE", "").strip() or None)

    def __repr__(self) -> str:  # secrets never reach a log line
        return f"StripeSettings(api_base={self.api_base!r}, webhook_secrets={len(self.webhook_secrets)})"

    @property
    def is_local(self) -> bool:
        """A test key against an API on this host (the stand-in), not Stripe itself."""
        host = urlsplit(self.api_base).hostname if self.api_base else None
        return host in LOOPBACK_HOSTS and not self.secret_key.startswith(("sk_live_", "rk_live_"))


@dataclass(frozen=True)
class Settings:
    database_url: str
    grpc_host: str
    grpc_port: int
    rest_port: int  # Envoy's REST listener (`billing-dev run`)
    admin_rest_port: int  # Envoy's internal listener: admin paths too, no CORS
    admin_rest_host: str
    cors_origins: tuple[str, ...]  # the app's browser origins (settings.cors_origins; `billing-dev run` adds the demo's)
    migrate_on_start: bool
    catalog_path: Path
    shutdown_grace_seconds: float
    log_level: str
    database_pool_size: int
    workers: int
    worker_ports: tuple[int, ...]  # optional: one private port per worker (BILLING_WORKER_PORTS=p1,p2)
    worker_port: int  # this worker's private port, 0 when none
    group_commit: bool  # concurrent consumes and balance reads share statements
    require_signatures: bool  # every call but the catalog must be signed by a usable key
    master_key_path: Path  # keys' secrets derive from it (BILLING_MASTER_KEY, hex, takes precedence)
    master_key_hex: str | None
    metrics_host: str  # Prometheus /metrics (BILLING_METRICS_HOST, loopback by default)
    metrics_port: int  # 0: no metrics endpoint; with BILLING_WORKERS=N, worker i serves metrics_port + i
    log_format: str  # "json" (one object per line) or "text" (for a terminal)
    request_timeout_seconds: float  # the server's bound on a call (then UNAVAILABLE); below Envoy's route timeout
    stripe: StripeSettings | None  # None: no payments (purchases answer PAYMENTS_NOT_CONFIGURED)
    checkout_success_url: str  # where Checkout returns the browser after paying (with ?purchased=true)
    checkout_cancel_url: str
    # Live balance streams (WatchBalance): at most this many open in the process, and per user;
    # a heartbeat after this long without a change.
    max_watchers: int = 5000
    max_watchers_per_user: int = 5
    watch_heartbeat_seconds: float = 15.0
    # Calls per second per key, by scope, in each process (burst: twice that); 0: no limit.
    # A user key is one person's browser; a service key carries an app backend's whole traffic.
    key_rate_limits: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_KEY_RATE_LIMITS))
    # Local and test use only (refused with real Stripe): the service's clock runs this far ahead of the wall
    # clock, plus the number of seconds in the file (`billing-dev clock advance` writes it under `make run`; without
    # real Stripe and without BILLING_CLOCK_OFFSET_FILE, that file when it exists: settings.clock_offset_file).
    clock_offset_seconds: int = 0
    clock_offset_file: Path | None = None

    @classmethod
    def from_environment(cls, database_url: str | None = None) -> "Settings":
        """database_url, when given, stands for DATABASE_URL (`billing-dev run` passes the embedded PostgreSQL's)."""
        database_url = database_url or configured_database_url()
        if not database_url:
            raise SystemExit("DATABASE_URL is not set (make run sets it to the embedded PostgreSQL)")
        stripe = StripeSettings.from_environment()
        return cls(
            database_url=normalize_database_url(database_url),
            grpc_host=os.environ.get("BILLING_GRPC_HOST", LOOPBACK),
            grpc_port=int(os.environ.get("BILLING_GRPC_PORT", "50051")),
            rest_port=int(os.environ.get("BILLING_REST_PORT", "8080")),
            admin_rest_port=int(os.environ.get("BILLING_ADMIN_REST_PORT", "8081")),
            admin_rest_host=os.environ.get("BILLING_ADMIN_REST_HOST", LOOPBACK),
            cors_origins=cors_origins(),
            migrate_on_start=_flag("BILLING_MIGRATE_ON_START", False),
            catalog_path=Path(os.environ.get("BILLING_CATALOG_PATH", str(DEFAULT_CATALOG_PATH))),
            shutdown_grace_seconds=float(os.environ.get("BILLING_SHUTDOWN_GRACE_SECONDS", "10")),
            log_level=os.environ.get("BILLING_LOG_LEVEL", "INFO"),
            database_pool_size=int(os.environ.get("BILLING_DB_POOL_SIZE", "16")),
            workers=int(os.environ.get("BILLING_WORKERS", "1")),
            worker_ports=tuple(int(p) for p in os.environ.get("BILLING_WORKER_PORTS", "").split(",") if p.strip()),
            worker_port=int(os.environ.get("BILLING_WORKER_PORT", "0")),
            group_commit=_flag("BILLING_GROUP_COMMIT", True),
            require_signatures=os.environ.get("BILLING_AUTHENTICATION", "signatures") != "off",
            master_key_path=Path(os.environ.get("BILLING_MASTER_KEY_FILE", str(DEFAULT_MASTER_KEY_PATH))),
            master_key_hex=os.environ.get("BILLING_MASTER_KEY") or None,
            metrics_host=os.environ.get("BILLING_METRICS_HOST", LOOPBACK),
            metrics_port=int(os.environ.get("BILLING_METRICS_PORT", "9464")),
            log_format=os.environ.get("BILLING_LOG_FORMAT", "json").strip().lower(),
            request_timeout_seconds=float(os.environ.get("BILLING_REQUEST_TIMEOUT_SECONDS", "10")),
            stripe=stripe,
            checkout_success_url=os.environ.get(
                "BILLING_CHECKOUT_SUCCESS_URL", f"{os.environ.get('BILLING_CORS_ORIGIN', DEFAULT_CORS_ORIGIN)}/?purchased=true"
            ),
            checkout_cancel_url=os.environ.get(
                "BILLING_CHECKOUT_CANCEL_URL", f"{os.environ.get('BILLING_CORS_ORIGIN', DEFAULT_CORS_ORIGIN)}/?purchase_canceled=true"
            ),
            max_watchers=int(os.environ.get("BILLING_MAX_WATCHERS", "5000")),
            max_watchers_per_user=int(os.environ.get("BILLING_MAX_WATCHERS_PER_USER", "5")),
            watch_heartbeat_seconds=float(os.environ.get("BILLING_WATCH_HEARTBEAT_SECONDS", "15")),
            key_rate_limits={
                scope: _calls_per_second(f"BILLING_KEY_RATE_LIMIT_{scope.upper()}", default)
                for scope, default in DEFAULT_KEY_RATE_LIMITS.items()
            },
            clock_offset_seconds=_seconds_ahead("BILLING_CLOCK_OFFSET_SECONDS"),
            clock_offset_file=clock_offset_file(stripe),
        )

    def __repr__(self) -> str:  # the master key never reaches a log line
        return f"Settings(database_url=..., grpc_port={self.grpc_port}, require_signatures={self.require_signatures})"

    def __post_init__(self) -> None:
        # Group commit keeps one connection of the pool for itself; the locking path and the
        # history reads need the rest.
        minimum = MIN_POOL_SIZE + (WALLET_BATCHER_CONNECTIONS if self.group_commit else 0)
        if self.database_pool_size < minimum:
            raise SystemExit(
                f"BILLING_DB_POOL_SIZE must be at least {minimum} (it is {self.database_pool_size})"
            )
        if self.log_format not in LOG_FORMATS:
            raise SystemExit(f"BILLING_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)} (it is {self.log_format!r})")
        if self.max_watchers < 1 or self.max_watchers_per_user < 1:
            raise SystemExit("BILLING_MAX_WATCHERS and BILLING_MAX_WATCHERS_PER_USER must be at least 1")
        if not 0 < self.watch_heartbeat_seconds <= 50:  # under Envoy's 60 s idle timeout of the stream route
            raise SystemExit(f"BILLING_WATCH_HEARTBEAT_SECONDS must be in (0, 50] (it is {self.watch_heartbeat_seconds})")
        if not 0 <= self.metrics_port <= 65535:
            raise SystemExit(f"BILLING_METRICS_PORT must be a port number or 0 (it is {self.metrics_port})")
        if (self.clock_offset_seconds or self.clock_offset_file) and self.stripe is not None and not self.stripe.is_local:
            raise SystemExit(
                "BILLING_CLOCK_OFFSET_SECONDS / BILLING_CLOCK_OFFSET_FILE move the service's clock: for local and "
                "test use only, refused with a real STRIPE_SECRET_KEY (Stripe's own clock cannot move with it; "
                "use the local stand-in: unset STRIPE_SECRET_KEY under `make run`)"
            )


def configured_database_url() -> str | None:
    """DATABASE_URL, normalized, or None when unset."""
    configured = os.environ.get("DATABASE_URL")
    return normalize_database_url(configured) if configured else None


def libpq_url(database_url: str) -> str:
    """The same database as a plain libpq URL (psycopg.connect, pgbench, psql)."""
    return normalize_database_url(database_url).replace("postgresql+psycopg://", "postgresql://", 1)


def normalize_database_url(url: str) -> str:
    """Accepts postgres:// and postgresql:// URLs too; the service always drives psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def clock_offset_file(stripe: StripeSettings | None) -> Path | None:
    """BILLING_CLOCK_OFFSET_FILE when set ("" for none). Unset, and without real Stripe: the local stand-in's
    offset file (`billing-dev clock advance` writes it) when it exists, so that a `billing tick` or a server
    started from a shell keeps the time of the server `billing-dev run` started."""
    configured = os.environ.get("BILLING_CLOCK_OFFSET_FILE")
    if configured is not None:
        return Path(configured) if configured.strip() else None
    if stripe is not None and not stripe.is_local:
        return None
    local = local_clock_offset_file()
    return local if local.exists() else None


def standin_port() -> int:
    """BILLING_STRIPE_STANDIN_PORT: where `billing-dev run` serves the local Stripe stand-in."""
    return int(os.environ.get("BILLING_STRIPE_STANDIN_PORT", str(DEFAULT_STANDIN_PORT)))


def standin_dir() -> Path:
    """The stand-in's files; one directory per port, so a second `billing-dev run` (a test's) has its own."""
    port = standin_port()
    return STANDIN_FILES if port == DEFAULT_STANDIN_PORT else STANDIN_FILES / f"port-{port}"


def local_clock_offset_file() -> Path:
    """The local clock's advance, written by `billing-dev clock advance` (devstack.clock)."""
    return standin_dir() / "clock-offset"


def _seconds_ahead(name: str) -> int:
    text = os.environ.get(name, "0").strip()
    if not text.isdigit():
        raise SystemExit(f"{name} must be a whole, non-negative number of seconds (got {text!r})")
    return int(text)


def _calls_per_second(name: str, default: int) -> int:
    text = os.environ.get(name, str(default)).strip()
    if not text.isdigit():
        raise SystemExit(f"{name} must be a whole number of calls per second, 0 for no limit (got {text!r})")
    return int(text)
