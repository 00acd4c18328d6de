"""Configuration from the environment, read once at start: the typed settings a process runs with.

The variables themselves (names, groups, defaults, meanings) are declared in environment_variables.py;
this module turns them into Settings, one small object per group (settings.server, .database, .edge,
.keys, .limits, .payments with its StripeSettings, .metrics, .webhooks, .clock), EnvoyLimits (the edge's limits,
which only `billing-dev run` reads), and the helpers built on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from billing.environment_variables import (  # noqa: F401 - re-exported: callers read them from settings
    REPO_ROOT, DEFAULT_CATALOG_PATH, DEFAULT_MASTER_KEY_PATH, DEFAULT_LOCAL_DATABASE_URL_FILE, STANDIN_FILES,
    LOOPBACK_NAMES, LOOPBACK, LOOPBACK_HOSTS, MIN_POOL_SIZE, WALLET_BATCHER_CONNECTIONS, LOG_FORMATS,
    KEY_SCOPES, BURST_SECONDS, TRUE_WORDS, NO_POOLER, TRANSACTION_POOLER, TRANSACTION_POOLER_PREPARED, POOLERS,
    Variable, SERVER, DATABASE, EDGE, KEYS, LIMITS, PAYMENTS, METRICS,
    WEBHOOKS, CLOCK, LOCAL, GROUPS, DEFAULT_CORS_ORIGIN, VARIABLES, DECLARED, value, is_set, text, default_int, _int,
    _float, _flag, DEFAULT_DEMO_PORT, DEFAULT_STANDIN_PORT, DEFAULT_REST_PORT, DEFAULT_KEY_RATE_LIMITS,
)


def demo_port() -> int:
    """BILLING_DEMO_PORT: where `billing-dev run` serves the demo app (devstack.demo_server); 0: not at all."""
    return _int("BILLING_DEMO_PORT")


def local_database_url_file() -> Path:
    """BILLING_LOCAL_DATABASE_URL_FILE: where the `billing` commands find the local stack's database."""
    return Path(text("BILLING_LOCAL_DATABASE_URL_FILE"))


def demo_origins(port: int) -> tuple[str, ...]:
    """The origins the demo app is served from on `port` (http://localhost:3000, http://127.0.0.1:3000)."""
    return tuple(f"http://{name}:{port}" for name in LOOPBACK_NAMES)


def cors_origins() -> tuple[str, ...]:
    """The browser origins of the app (Envoy's CORS): BILLING_CORS_ORIGIN, else the default. The demo's own
    origins are not among them: `billing-dev run` adds them when it serves the demo (with_demo_origins)."""
    return (text("BILLING_CORS_ORIGIN").strip() or DEFAULT_CORS_ORIGIN,)


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

    rate_limit_per_second: int = default_int("BILLING_RATE_LIMIT_PER_IP")
    rate_limit_burst: int = BURST_SECONDS * default_int("BILLING_RATE_LIMIT_PER_IP")
    max_connections: int = default_int("BILLING_MAX_CONNECTIONS")
    internal_max_connections: int = default_int("BILLING_INTERNAL_MAX_CONNECTIONS")
    webhook_rate_limit_per_second: int = default_int("BILLING_WEBHOOK_RATE_LIMIT_PER_IP")
    webhook_rate_limit_burst: int = BURST_SECONDS * default_int("BILLING_WEBHOOK_RATE_LIMIT_PER_IP")

    @classmethod
    def from_environment(cls) -> "EnvoyLimits":
        rate = _int("BILLING_RATE_LIMIT_PER_IP")
        burst = value("BILLING_RATE_LIMIT_BURST")
        webhook_rate = _int("BILLING_WEBHOOK_RATE_LIMIT_PER_IP")
        return cls(
            rate, BURST_SECONDS * rate if burst is None else int(burst),
            max_connections=_int("BILLING_MAX_CONNECTIONS"),
            internal_max_connections=_int("BILLING_INTERNAL_MAX_CONNECTIONS"),
            webhook_rate_limit_per_second=webhook_rate, webhook_rate_limit_burst=BURST_SECONDS * webhook_rate,
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


def webhook_secrets() -> tuple[str, ...]:
    """STRIPE_WEBHOOK_SECRET's secrets, in order (two, comma-separated, while rotating)."""
    return tuple(s.strip() for s in text("STRIPE_WEBHOOK_SECRET").split(",") if s.strip())


@dataclass(frozen=True)
class StripeSettings:
    """STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET (two, comma-separated, during a rotation), and
    STRIPE_API_BASE (the local stand-in; unset: Stripe itself). None without a secret key."""

    secret_key: str
    webhook_secrets: tuple[str, ...]
    api_base: str | None

    @classmethod
    def from_environment(cls) -> "StripeSettings | None":
        secret_key = text("STRIPE_SECRET_KEY").strip()
        if not secret_key:
            return None
        secrets = webhook_secrets()
        if not secrets:
            raise SystemExit("STRIPE_WEBHOOK_SECRET must be set with STRIPE_SECRET_KEY (whsec_..., two comma-separated while rotating)")
        return cls(secret_key, secrets, text("STRIPE_API_BASE").strip() or None)

    def __repr__(self) -> str:  # secrets never reach a log line
        return f"StripeSettings(api_base={self.api_base!r}, webhook_secrets={len(self.webhook_secrets)})"

    @property
    def is_local(self) -> bool:
        """A test key against an API on this host (the stand-in), not Stripe itself."""
        host = urlsplit(self.api_base).hostname if self.api_base else None
        return host in LOOPBACK_HOSTS and not self.secret_key.startswith(("sk_live_", "rk_live_"))


@dataclass(frozen=True)
class ServerSettings:
    """Server: the gRPC server, its processes, its catalog and its logs."""

    grpc_host: str
    grpc_port: int
    workers: int
    worker_ports: tuple[int, ...]  # optional: one private port per worker (BILLING_WORKER_PORTS=p1,p2)
    worker_port: int  # this worker's private port, 0 when none
    shutdown_grace_seconds: float
    request_timeout_seconds: float  # the server's bound on a call (then UNAVAILABLE); below Envoy's route timeout
    catalog_path: Path
    migrate_on_start: bool
    log_level: str
    log_format: str  # "json" (one object per line) or "text" (for a terminal)

    @classmethod
    def from_environment(cls) -> "ServerSettings":
        return cls(
            grpc_host=text("BILLING_GRPC_HOST"),
            grpc_port=_int("BILLING_GRPC_PORT"),
            workers=_int("BILLING_WORKERS"),
            worker_ports=tuple(int(p) for p in text("BILLING_WORKER_PORTS").split(",") if p.strip()),
            worker_port=_int("BILLING_WORKER_PORT"),
            shutdown_grace_seconds=_float("BILLING_SHUTDOWN_GRACE_SECONDS"),
            request_timeout_seconds=_float("BILLING_REQUEST_TIMEOUT_SECONDS"),
            catalog_path=Path(text("BILLING_CATALOG_PATH")),
            migrate_on_start=_flag("BILLING_MIGRATE_ON_START"),
            log_level=text("BILLING_LOG_LEVEL"),
            log_format=text("BILLING_LOG_FORMAT").strip().lower(),
        )

    def __post_init__(self) -> None:
        if self.log_format not in LOG_FORMATS:
            raise SystemExit(f"BILLING_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)} (it is {self.log_format!r})")


@dataclass(frozen=True)
class DatabaseSettings:
    """Database: where it is, what stands in front of it, and how many connections a server process keeps to it.

    url is what requests use (a pooler's, when one is configured); direct_url the PostgreSQL behind it, for
    what needs a session of its own across transactions (docs/decisions.md, "Pooling that cannot return
    wrong rows"): LISTEN, the migrations' and the legacy import's session advisory locks, session SETs."""

    url: str  # normalized to postgresql+psycopg:// (normalize_database_url); carries the password
    pool_size: int
    group_commit: bool  # concurrent consumes and balance reads share statements
    pooler: str = NO_POOLER  # BILLING_DB_POOLER: one of POOLERS
    direct_url: str = ""  # DATABASE_DIRECT_URL, normalized; "" stands for url
    # DATABASE_READ_URL: a hot standby for the reads that may use it (adapters/db/read_routing.py); None: none.
    read_url: str | None = None
    read_replica_wait_seconds: float = 0.02

    @classmethod
    def from_environment(cls, url: str) -> "DatabaseSettings":
        """url: DATABASE_URL or what stands for it (Settings.from_environment resolves it)."""
        read_url = text("DATABASE_READ_URL").strip()
        return cls(
            url=normalize_database_url(url),
            pool_size=_int("BILLING_DB_POOL_SIZE"),
            group_commit=_flag("BILLING_GROUP_COMMIT"),
            pooler=database_pooler(),
            direct_url=normalize_database_url(text("DATABASE_DIRECT_URL").strip()),
            read_url=normalize_database_url(read_url) if read_url else None,
            read_replica_wait_seconds=_float("BILLING_READ_REPLICA_WAIT_MS") / 1000,
        )

    def __repr__(self) -> str:  # the URL's password never reaches a log line
        return (f"DatabaseSettings(url=..., pool_size={self.pool_size}, group_commit={self.group_commit}, "
                f"pooler={self.pooler}, read_url={'...' if self.read_url else None})")

    @property
    def session_url(self) -> str:
        """Where a connection that keeps session state goes: the PostgreSQL itself, never the pooler."""
        return self.direct_url or self.url

    def __post_init__(self) -> None:
        if self.pooler not in POOLERS:
            raise SystemExit(f"BILLING_DB_POOLER must be one of {', '.join(POOLERS)} (it is {self.pooler!r})")
        if self.pooler != NO_POOLER and not self.direct_url:
            raise SystemExit(NO_DIRECT_URL)
        # Group commit keeps one connection of the pool for itself; the locking path and the
        # history reads need the rest.
        minimum = MIN_POOL_SIZE + (WALLET_BATCHER_CONNECTIONS if self.group_commit else 0)
        if self.pool_size < minimum:
            raise SystemExit(f"BILLING_DB_POOL_SIZE must be at least {minimum} (it is {self.pool_size})")
        if not 0 <= self.read_replica_wait_seconds <= 5:
            raise SystemExit(f"BILLING_READ_REPLICA_WAIT_MS must be in [0, 5000] (it is {self.read_replica_wait_seconds * 1000:g})")


@dataclass(frozen=True)
class EdgeSettings:
    """Edge (Envoy): its listeners and the app's browser origins. Envoy's limits are EnvoyLimits
    (read by `billing-dev run` alone, which renders them)."""

    rest_port: int  # Envoy's REST listener (`billing-dev run`)
    admin_rest_port: int  # Envoy's internal listener: admin paths too, no CORS
    admin_rest_host: str
    cors_origins: tuple[str, ...]  # the app's browser origins (settings.cors_origins; `billing-dev run` adds the demo's)
    grpc_upstreams: tuple[tuple[str, int], ...] = ()  # the gRPC servers behind Envoy; () when one runs here
    edge_peers: tuple[tuple[str, int], ...] = ()  # every Envoy of the edge (their per-IP limits' shares); () one

    @classmethod
    def from_environment(cls) -> "EdgeSettings":
        return cls(
            rest_port=_int("BILLING_REST_PORT"),
            admin_rest_port=_int("BILLING_ADMIN_REST_PORT"),
            admin_rest_host=text("BILLING_ADMIN_REST_HOST"),
            cors_origins=cors_origins(),
            grpc_upstreams=host_ports("BILLING_GRPC_UPSTREAMS", text("BILLING_GRPC_UPSTREAMS")),
            edge_peers=host_ports("BILLING_EDGE_PEERS", text("BILLING_EDGE_PEERS")),
        )


def host_ports(name: str, listed: str) -> tuple[tuple[str, int], ...]:
    """The variable `name`'s `host:port,host:port` (an IPv6 address in brackets: `[::1]:50051`)."""
    upstreams = []
    for item in (part.strip() for part in listed.split(",")):
        if not item:
            continue
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise SystemExit(f"{name} must be host:port,... (got {item!r})")
        upstreams.append((host.removeprefix("[").removesuffix("]"), int(port)))
    return tuple(upstreams)


@dataclass(frozen=True)
class KeySettings:
    """Keys and signatures."""

    require_signatures: bool  # every call but the catalog must be signed by a usable key
    master_key_path: Path  # keys' secrets derive from it (BILLING_MASTER_KEY, hex, takes precedence)
    master_key_hex: str | None

    @classmethod
    def from_environment(cls) -> "KeySettings":
        return cls(
            require_signatures=text("BILLING_AUTHENTICATION") != "off",
            master_key_path=Path(text("BILLING_MASTER_KEY_FILE")),
            master_key_hex=value("BILLING_MASTER_KEY") or None,
        )

    def __repr__(self) -> str:  # the master key never reaches a log line
        return f"KeySettings(require_signatures={self.require_signatures}, master_key_path={self.master_key_path!r})"


@dataclass(frozen=True)
class LimitSettings:
    """Limits. Calls per second per key, by scope, all replicas together (burst: twice that); 0: no limit.
    A user key is one person's browser; a service key carries an app backend's whole traffic.
    Live balance streams (WatchBalance): at most max_watchers open in the process, and
    max_watchers_per_user per user; a heartbeat after watch_heartbeat_seconds without a change."""

    key_rate_limits: dict[str, int]
    max_watchers: int
    max_watchers_per_user: int
    watch_heartbeat_seconds: float

    @classmethod
    def from_environment(cls) -> "LimitSettings":
        return cls(
            key_rate_limits={scope: _calls_per_second(f"BILLING_KEY_RATE_LIMIT_{scope.upper()}") for scope in KEY_SCOPES},
            max_watchers=_int("BILLING_MAX_WATCHERS"),
            max_watchers_per_user=_int("BILLING_MAX_WATCHERS_PER_USER"),
            watch_heartbeat_seconds=_float("BILLING_WATCH_HEARTBEAT_SECONDS"),
        )

    def __post_init__(self) -> None:
        if self.max_watchers < 1 or self.max_watchers_per_user < 1:
            raise SystemExit("BILLING_MAX_WATCHERS and BILLING_MAX_WATCHERS_PER_USER must be at least 1")
        if not 0 < self.watch_heartbeat_seconds <= 50:  # under Envoy's 60 s idle timeout of the stream route
            raise SystemExit(f"BILLING_WATCH_HEARTBEAT_SECONDS must be in (0, 50] (it is {self.watch_heartbeat_seconds})")


@dataclass(frozen=True)
class PaymentSettings:
    """Payments: Stripe (None: no payments, purchases answer PAYMENTS_NOT_CONFIGURED) and the app's pages
    Checkout returns the browser to."""

    stripe: StripeSettings | None
    checkout_success_url: str  # where Checkout returns the browser after paying (with ?purchased=true)
    checkout_cancel_url: str

    @classmethod
    def from_environment(cls, stripe: StripeSettings | None, origin: str) -> "PaymentSettings":
        """stripe: StripeSettings.from_environment(); origin: the app's (the default pages' base)."""
        return cls(
            stripe=stripe,
            checkout_success_url=_or(value("BILLING_CHECKOUT_SUCCESS_URL"), checkout_success_url(origin)),
            checkout_cancel_url=_or(value("BILLING_CHECKOUT_CANCEL_URL"), checkout_cancel_url(origin)),
        )


@dataclass(frozen=True)
class WebhookSettings:
    """Outbound webhooks: the sender of each server process (service/webhook_sender.py)."""

    send: bool  # this process runs a sender
    allow_private: bool  # private, loopback and link-local targets allowed (local use, tests)
    poll_seconds: float
    dispatch_batch: int
    claim_batch: int
    concurrency: int

    @classmethod
    def from_environment(cls) -> "WebhookSettings":
        return cls(
            send=_flag("BILLING_WEBHOOK_SENDER"),
            allow_private=_flag("BILLING_WEBHOOK_ALLOW_PRIVATE"),
            poll_seconds=_float("BILLING_WEBHOOK_POLL_SECONDS"),
            dispatch_batch=_int("BILLING_WEBHOOK_DISPATCH_BATCH"),
            claim_batch=_int("BILLING_WEBHOOK_CLAIM_BATCH"),
            concurrency=_int("BILLING_WEBHOOK_CONCURRENCY"),
        )

    def __post_init__(self) -> None:
        if not 0 < self.poll_seconds <= 60:
            raise SystemExit(f"BILLING_WEBHOOK_POLL_SECONDS must be in (0, 60] (it is {self.poll_seconds})")
        if min(self.dispatch_batch, self.claim_batch, self.concurrency) < 1:
            raise SystemExit("BILLING_WEBHOOK_DISPATCH_BATCH, _CLAIM_BATCH and _CONCURRENCY must be at least 1")


@dataclass(frozen=True)
class MetricsSettings:
    """Metrics: Prometheus' /metrics (loopback by default)."""

    host: str
    port: int  # 0: no metrics endpoint; with BILLING_WORKERS=N, worker i serves port + i

    @classmethod
    def from_environment(cls) -> "MetricsSettings":
        return cls(host=text("BILLING_METRICS_HOST"), port=_int("BILLING_METRICS_PORT"))

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise SystemExit(f"BILLING_METRICS_PORT must be a port number or 0 (it is {self.port})")


@dataclass(frozen=True)
class ClockSettings:
    """Clock. Local and test use only (refused with real Stripe, Settings checks): the service's clock runs
    offset_seconds ahead of the wall clock, plus the number of seconds in offset_file (`billing clock advance`
    writes it under `make run`; without real Stripe and without BILLING_CLOCK_OFFSET_FILE, that file when it
    exists: clock_offset_file)."""

    offset_seconds: int
    offset_file: Path | None

    @classmethod
    def from_environment(cls, stripe: StripeSettings | None) -> "ClockSettings":
        return cls(offset_seconds=_seconds_ahead("BILLING_CLOCK_OFFSET_SECONDS"), offset_file=clock_offset_file(stripe))


@dataclass(frozen=True)
class Settings:
    """The service's settings, one object per group of VARIABLES (environment_variables.py), whose defaults
    they take: settings.server.grpc_port, settings.database.url, settings.payments.stripe, ..."""

    server: ServerSettings
    database: DatabaseSettings
    edge: EdgeSettings
    keys: KeySettings
    limits: LimitSettings
    payments: PaymentSettings
    metrics: MetricsSettings
    clock: ClockSettings
    webhooks: WebhookSettings

    @classmethod
    def from_environment(cls, database_url: str | None = None) -> "Settings":
        """database_url, when given, stands for DATABASE_URL (`billing-dev run` passes the embedded PostgreSQL's)."""
        database_url = database_url or configured_database_url()
        if not database_url:
            raise SystemExit("DATABASE_URL is not set (make run sets it to the embedded PostgreSQL)")
        stripe = StripeSettings.from_environment()
        return cls(
            server=ServerSettings.from_environment(),
            database=DatabaseSettings.from_environment(database_url),
            edge=EdgeSettings.from_environment(),
            keys=KeySettings.from_environment(),
            limits=LimitSettings.from_environment(),
            payments=PaymentSettings.from_environment(stripe, cors_origins()[0]),
            metrics=MetricsSettings.from_environment(),
            clock=ClockSettings.from_environment(stripe),
            webhooks=WebhookSettings.from_environment(),
        )

    def __repr__(self) -> str:  # the master key and the database's password never reach a log line
        return f"Settings(database_url=..., grpc_port={self.server.grpc_port}, require_signatures={self.keys.require_signatures})"

    def __post_init__(self) -> None:
        stripe, clock = self.payments.stripe, self.clock
        if (clock.offset_seconds or clock.offset_file) and stripe is not None and not stripe.is_local:
            raise SystemExit(
                "BILLING_CLOCK_OFFSET_SECONDS / BILLING_CLOCK_OFFSET_FILE move the service's clock: for local and "
                "test use only, refused with a real STRIPE_SECRET_KEY (Stripe's own clock cannot move with it; "
                "use the local stand-in: unset STRIPE_SECRET_KEY under `make run`)"
            )


def checkout_success_url(origin: str) -> str:
    """BILLING_CHECKOUT_SUCCESS_URL's default: the app's page; ?purchased=true is the contract's cue to retry."""
    return f"{origin}/?purchased=true"


def checkout_cancel_url(origin: str) -> str:
    """BILLING_CHECKOUT_CANCEL_URL's default."""
    return f"{origin}/?purchase_canceled=true"


def configured_database_url() -> str | None:
    """DATABASE_URL, normalized, or None when unset (callers then use the embedded PostgreSQL)."""
    configured = value("DATABASE_URL")
    return normalize_database_url(configured) if configured else None


# Behind a pooler, DATABASE_URL cannot stand for the database itself: LISTEN would hear nothing, the
# migrations' lock would not hold. So a pooler needs DATABASE_DIRECT_URL.
NO_DIRECT_URL = "BILLING_DB_POOLER names a pooler: set DATABASE_DIRECT_URL to the PostgreSQL behind it"


def database_pooler() -> str:
    """BILLING_DB_POOLER: what DATABASE_URL reaches (NO_POOLER, TRANSACTION_POOLER, ...; DatabaseSettings checks it)."""
    return text("BILLING_DB_POOLER").strip().lower() or NO_POOLER


def direct_database_url(database_url: str) -> str:
    """DATABASE_DIRECT_URL (normalized) when set, else database_url, unless that is a pooler's (refused):
    the PostgreSQL for work that keeps session state."""
    direct = text("DATABASE_DIRECT_URL").strip()
    if not direct and database_pooler() != NO_POOLER:
        raise SystemExit(NO_DIRECT_URL)
    return normalize_database_url(direct or database_url)


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
    offset file (`billing clock advance` writes it) when it exists, so that a `billing tick` or a server
    started from a shell keeps the time of the server `billing-dev run` started."""
    configured = value("BILLING_CLOCK_OFFSET_FILE")
    if configured is not None:
        return Path(configured) if configured.strip() else None
    if stripe is not None and not stripe.is_local:
        return None
    local = local_clock_offset_file()
    return local if local.exists() else None


def standin_port() -> int:
    """BILLING_STRIPE_STANDIN_PORT: where `billing-dev run` serves the local Stripe stand-in."""
    return _int("BILLING_STRIPE_STANDIN_PORT")


def standin_dir() -> Path:
    """The stand-in's files; one directory per port, so a second `billing-dev run` (a test's) has its own."""
    port = standin_port()
    return STANDIN_FILES if port == DEFAULT_STANDIN_PORT else STANDIN_FILES / f"port-{port}"


def local_clock_offset_file() -> Path:
    """The local clock's advance, written by `billing-dev clock advance` (devstack.clock)."""
    return standin_dir() / "clock-offset"


def _or(configured: str | None, derived: str) -> str:
    return derived if configured is None else configured


def _seconds_ahead(name: str) -> int:
    given = text(name).strip()
    if not given.isdigit():
        raise SystemExit(f"{name} must be a whole, non-negative number of seconds (got {given!r})")
    return int(given)


def _calls_per_second(name: str) -> int:
    given = text(name).strip()
    if not given.isdigit():
        raise SystemExit(f"{name} must be a whole number of calls per second, 0 for no limit (got {given!r})")
    return int(given)
