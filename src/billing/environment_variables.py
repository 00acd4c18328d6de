"""Every environment variable the service and its local stack read, declared once: its name, its
group, its default (written nowhere else: the typed settings and the other modules take it from here)
and what it means, with the readers that go through the table (a name not declared is a KeyError).
docs/configuration.md is generated from VARIABLES (tools/gen_config_doc.py, `make gen`);
tests/unit/test_configuration_doc.py fails when it is stale or when a module reads a variable the table
does not declare.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# The package is installed editable: the checkout holds its data files.
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CATALOG_PATH = REPO_ROOT / "catalog" / "catalog.json"
DEFAULT_MASTER_KEY_PATH = REPO_ROOT / ".data" / "master.key"
# Written (mode 0600) by the local stack (devstack) when it starts the embedded PostgreSQL: where the
# `billing` commands find the database when DATABASE_URL is unset.
DEFAULT_LOCAL_DATABASE_URL_FILE = REPO_ROOT / ".data" / "database-url"
# The local Stripe stand-in of `billing-dev run` (devstack.clock): its files, one directory per port.
STANDIN_FILES = REPO_ROOT / ".data" / "stripe-standin"
# A browser names a loopback server by either name, and each is an origin of its own.
LOOPBACK_NAMES = ("localhost", "127.0.0.1")
# gRPC and the internal REST listener are internal surfaces: this host only, unless a setting opens them.
LOOPBACK = "127.0.0.1"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
MIN_POOL_SIZE = 2
WALLET_BATCHER_CONNECTIONS = 1
LOG_FORMATS = ("json", "text")
KEY_SCOPES = ("user", "service", "admin")
# A rate limit's bucket holds this many seconds of its rate, unless a setting says otherwise.
BURST_SECONDS = 2
TRUE_WORDS = ("1", "true", "yes", "on")
# BILLING_DB_POOLER: PostgreSQL itself, a transaction-mode pooler, or one that keeps prepared statements.
NO_POOLER, TRANSACTION_POOLER, TRANSACTION_POOLER_PREPARED = "none", "transaction", "transaction-prepared"
POOLERS = (NO_POOLER, TRANSACTION_POOLER, TRANSACTION_POOLER_PREPARED)


@dataclass(frozen=True)
class Variable:
    """One environment variable. default: the text used when it is unset (None: no value); shown: the
    default as the documentation states it, when the text alone would mislead (derived or a checkout path).
    local_only: read by the local tooling (`billing-dev run`, the stand-in, the demo, the embedded PostgreSQL)
    and tests, never by a deployed service."""

    name: str
    group: str
    kind: str
    default: str | None
    meaning: str
    local_only: bool = False
    shown: str | None = None

    @property
    def documented_default(self) -> str:
        if self.shown is not None:
            return self.shown
        return "(unset)" if self.default is None else f"`{self.default}`" if self.default else "(none)"


SERVER = "Server"
DATABASE = "Database"
EDGE = "Edge (Envoy)"
KEYS = "Keys and signatures"
LIMITS = "Limits"
PAYMENTS = "Payments (Stripe)"
METRICS = "Metrics"
WEBHOOKS = "Outbound webhooks"
CLOCK = "Clock (local and test use)"
LOCAL = "Local stack (`make run`)"
GROUPS = (SERVER, DATABASE, EDGE, KEYS, LIMITS, PAYMENTS, METRICS, WEBHOOKS, CLOCK, LOCAL)

DEFAULT_CORS_ORIGIN = "http://localhost:3000"

VARIABLES: tuple[Variable, ...] = (
    # Server
    Variable("BILLING_GRPC_HOST", SERVER, "host", LOOPBACK,
             "The address the gRPC server listens on (loopback: Envoy on this host is its only client)."),
    Variable("BILLING_GRPC_PORT", SERVER, "port", "50051", "The gRPC server's port."),
    Variable("BILLING_WORKERS", SERVER, "count", "1",
             "Server processes sharing the gRPC port (SO_REUSEPORT); more than 1 runs a supervisor."),
    Variable("BILLING_WORKER_PORTS", SERVER, "ports", "",
             "Optional, comma-separated: one private gRPC port per worker (p1,p2,...), in worker order."),
    Variable("BILLING_WORKER_PORT", SERVER, "port", "0",
             "Set by the supervisor: this worker's private port from BILLING_WORKER_PORTS (0: none)."),
    Variable("BILLING_SHUTDOWN_GRACE_SECONDS", SERVER, "seconds", "10",
             "How long a stopping server lets calls in flight finish."),
    Variable("BILLING_REQUEST_TIMEOUT_SECONDS", SERVER, "seconds", "10",
             "The server's bound on a call (then UNAVAILABLE); below Envoy's route timeout."),
    Variable("BILLING_CATALOG_PATH", SERVER, "path", str(DEFAULT_CATALOG_PATH), "The catalog of plans and packages.",
             shown="`catalog/catalog.json` in the checkout"),
    Variable("BILLING_MIGRATE_ON_START", SERVER, "flag", "0",
             "Apply the database migrations when the server starts (`billing-dev run` turns it on unless set)."),
    Variable("BILLING_LOG_LEVEL", SERVER, "level", "INFO", "The log level (DEBUG, INFO, WARNING, ...)."),
    Variable("BILLING_LOG_FORMAT", SERVER, "json|text", "json",
             "`json`: one object per line; `text`: for a terminal."),
    # Database
    Variable("DATABASE_URL", DATABASE, "URL", None,
             "The PostgreSQL database (postgres://, postgresql:// or postgresql+psycopg://). Required by the "
             "server; `billing-dev run`, `billing-dev migrate` and the tests start the embedded PostgreSQL without "
             "it, and the `billing` commands then use the one the local stack announced."),
    Variable("BILLING_LOCAL_DATABASE_URL_FILE", DATABASE, "path", str(DEFAULT_LOCAL_DATABASE_URL_FILE),
             "Where the local stack announces its database's URL (mode 0600), for the `billing` commands "
             "without DATABASE_URL.", local_only=True, shown="`.data/database-url` in the checkout"),
    Variable("BILLING_DB_POOLER", DATABASE, "|".join(POOLERS), NO_POOLER,
             "What DATABASE_URL reaches. `none`: PostgreSQL itself (or a session-mode pooler). `transaction`: a "
             "transaction-mode pooler (pgbouncer `pool_mode = transaction`): no server-side prepared statements "
             "(another client's statement would answer), no startup `options` (set statement_timeout and timezone "
             "as the role's defaults), and what needs a session (LISTEN, migrations, the legacy import, the change "
             "notifier) goes to DATABASE_DIRECT_URL. `transaction-prepared`: the same with prepared statements "
             "kept, only for pgbouncer >= 1.21 with `max_prepared_statements` > 0 (Debian 12's 1.18 is not)."),
    Variable("DATABASE_DIRECT_URL", DATABASE, "URL", None,
             "The PostgreSQL behind the pooler, for what needs a session of its own: LISTEN (live balances), "
             "migrations' advisory lock, the legacy import, the change notifier. Required with a pooler.",
             shown="DATABASE_URL (without a pooler)"),

    Variable("DATABASE_READ_URL", DATABASE, "URL", None,
             "A hot standby of DATABASE_URL that balance, usage and history reads may use once it has replayed "
             "every commit that returned before the read began (else they read DATABASE_URL; a lagging or dead "
             "standby only costs them that). One standby, not an address balancing several: the replay check "
             "and the reads must reach the same server. Unset: every read goes to DATABASE_URL. `billing-dev run` "
             "sets it with EMBEDDED_PG_STANDBY=1."),
    Variable("BILLING_READ_REPLICA_WAIT_MS", DATABASE, "milliseconds", "20",
             "How long a read waits for the standby (DATABASE_READ_URL) to replay what it must see before it "
             "reads DATABASE_URL instead."),
    Variable("BILLING_DB_POOL_SIZE", DATABASE, "count", "16",
             "Connections in the pool of each server process (at least 3 with group commit, else 2)."),
    Variable("BILLING_GROUP_COMMIT", DATABASE, "flag", "1",
             "Concurrent consumes and balance reads share statements (one connection of the pool is kept for it)."),
    # Edge (Envoy)
    Variable("BILLING_REST_PORT", EDGE, "port", "8080",
             "Envoy's public REST listener (the browser's, with CORS).", local_only=True),
    Variable("BILLING_ADMIN_REST_PORT", EDGE, "port", "8081",
             "Envoy's internal REST listener: the admin paths too, no CORS.", local_only=True),
    Variable("BILLING_ADMIN_REST_HOST", EDGE, "host", LOOPBACK,
             "The address of Envoy's internal listener.", local_only=True),
    Variable("BILLING_GRPC_UPSTREAMS", EDGE, "host:port,...", "",
             "The gRPC servers Envoy balances over (health-checked, ejected on errors); empty: the workers' "
             "BILLING_WORKER_PORTS, else BILLING_GRPC_PORT, on 127.0.0.1.", local_only=True),
    Variable("BILLING_EDGE_PEERS", EDGE, "host:port,...", "",
             "Every Envoy of the edge, this one too (a headless Service's name lists them all): each keeps its "
             "share of the per-IP limits; empty: this Envoy alone.", local_only=True),
    Variable("BILLING_CORS_ORIGIN", EDGE, "URL", DEFAULT_CORS_ORIGIN,
             "The app's browser origin (Envoy's CORS; `billing-dev run` adds the demo's own origins); also the base "
             "of the default checkout return pages."),
    Variable("BILLING_RATE_LIMIT_PER_IP", EDGE, "per second", "200",
             "Sustained requests per second per client address, all the edge's Envoys together (0: no rate limit).",
             local_only=True),
    Variable("BILLING_RATE_LIMIT_BURST", EDGE, "requests", None,
             "The per-address bucket's size (at least the rate).", local_only=True,
             shown="twice BILLING_RATE_LIMIT_PER_IP"),
    Variable("BILLING_WEBHOOK_RATE_LIMIT_PER_IP", EDGE, "per second", "2000",
             "The Stripe webhook path's rate per address (its bucket: twice that), instead of the per-address one.",
             local_only=True),
    Variable("BILLING_MAX_CONNECTIONS", EDGE, "count", "8192",
             "Connections the browser listener may hold, all clients together.", local_only=True),
    Variable("BILLING_INTERNAL_MAX_CONNECTIONS", EDGE, "count", "1024",
             "The internal listener's own connection budget.", local_only=True),
    Variable("BILLING_EDGE_TOKEN", EDGE, "token", None,
             "Read by Envoy, not the service: the token its routes add (derived from the master key; `billing-dev run` "
             "sets it).", local_only=True, shown="derived from the master key"),
    # Keys and signatures
    Variable("BILLING_AUTHENTICATION", KEYS, "signatures|off", "signatures",
             "`signatures`: every call but the catalog is signed by a usable key; `off`: none is checked."),
    Variable("BILLING_MASTER_KEY", KEYS, "hex", None,
             "The master key the keys' secrets derive from, in hex; takes precedence over the file."),
    Variable("BILLING_MASTER_KEY_FILE", KEYS, "path", str(DEFAULT_MASTER_KEY_PATH),
             "The master key's file (made on first use).", shown="`.data/master.key` in the checkout"),
    Variable("BILLING_KEY_SECRET", KEYS, "text", None,
             "`billing keys`: the default of --secret (the secret of a key being added)."),
    # Limits
    *(Variable(f"BILLING_KEY_RATE_LIMIT_{scope.upper()}", LIMITS, "per second", default,
               f"Calls per second per {scope} key, all replicas together: each takes its share (burst: twice "
               "that); 0: no limit.")
      for scope, default in zip(KEY_SCOPES, ("20", "5000", "1000"))),
    Variable("BILLING_MAX_WATCHERS", LIMITS, "count", "5000", "Live balance streams (WatchBalance) open in a process."),
    Variable("BILLING_MAX_WATCHERS_PER_USER", LIMITS, "count", "5", "Live balance streams open per user, per process."),
    Variable("BILLING_WATCH_HEARTBEAT_SECONDS", LIMITS, "seconds", "15",
             "A balance stream's heartbeat after this long without a change; in (0, 50], under Envoy's idle timeout."),
    # Payments (Stripe)
    Variable("STRIPE_SECRET_KEY", PAYMENTS, "key", None,
             "Stripe's secret key; unset: no payments (`billing-dev run` starts the local stand-in instead)."),
    Variable("STRIPE_WEBHOOK_SECRET", PAYMENTS, "whsec_...", None,
             "The webhook signing secret, required with STRIPE_SECRET_KEY; two, comma-separated, while rotating."),
    Variable("STRIPE_API_BASE", PAYMENTS, "URL", None, "Another Stripe API (the local stand-in); unset: Stripe itself."),
    Variable("BILLING_CHECKOUT_SUCCESS_URL", PAYMENTS, "URL", None,
             "Where Checkout returns the browser after paying.", shown="BILLING_CORS_ORIGIN + `/?purchased=true`"),
    Variable("BILLING_CHECKOUT_CANCEL_URL", PAYMENTS, "URL", None,
             "Where Checkout returns the browser when the buyer cancels.",
             shown="BILLING_CORS_ORIGIN + `/?purchase_canceled=true`"),
    # Outbound webhooks
    Variable("BILLING_WEBHOOK_SENDER", WEBHOOKS, "flag", "1",
             "Send outbound events from this server process (every replica's sender shares the work through the "
             "database; 0: this process sends none)."),
    Variable("BILLING_WEBHOOK_ALLOW_PRIVATE", WEBHOOKS, "flag", "0",
             "Webhook endpoints may target private, loopback and link-local addresses (literal or resolved); off: "
             "such URLs are refused when an endpoint is created and before each delivery (against SSRF). The local "
             "stack and the tests turn it on. Multicast and unspecified addresses are never sent to."),
    Variable("BILLING_WEBHOOK_POLL_SECONDS", WEBHOOKS, "seconds", "0.2",
             "How often the sender looks for events and due deliveries when nothing woke it (a committed change "
             "wakes it at once)."),
    Variable("BILLING_WEBHOOK_DISPATCH_BATCH", WEBHOOKS, "count", "500",
             "Outbox events turned into deliveries per statement (whole accounts: a batch may take more)."),
    Variable("BILLING_WEBHOOK_CLAIM_BATCH", WEBHOOKS, "count", "100", "Deliveries claimed per statement."),
    Variable("BILLING_WEBHOOK_CONCURRENCY", WEBHOOKS, "count", "32",
             "Webhook requests in flight per server process."),
    # Metrics
    Variable("BILLING_METRICS_HOST", METRICS, "host", LOOPBACK, "The address of Prometheus' /metrics endpoint."),
    Variable("BILLING_METRICS_PORT", METRICS, "port", "9464",
             "/metrics' port (0: none); with BILLING_WORKERS=N, worker i serves this port + i."),
    # Clock
    Variable("BILLING_CLOCK_OFFSET_SECONDS", CLOCK, "seconds", "0",
             "The service's clock runs this far ahead of the wall clock (refused with real Stripe).", local_only=True),
    Variable("BILLING_CLOCK_OFFSET_FILE", CLOCK, "path", None,
             "A file holding more seconds ahead (`billing clock advance` writes it); \"\": none.", local_only=True,
             shown="the stand-in's `clock-offset` file when it exists and Stripe is not real"),
    # Local stack
    Variable("BILLING_DEMO_PORT", LOCAL, "port", "3000", "Where `billing-dev run` serves the demo app (0: not at all).",
             local_only=True),
    Variable("BILLING_DEMO_USER", LOCAL, "text", "demo-user", "The demo app's signed-in user.", local_only=True),
    Variable("BILLING_DEMO_CURRENCY", LOCAL, "currency", "USD", "The demo app's currency.", local_only=True),
    Variable("BILLING_STRIPE_STANDIN_PORT", LOCAL, "port", "12111",
             "Where `billing-dev run` serves the local Stripe stand-in (each port keeps its own files).", local_only=True),
    Variable("EMBEDDED_PG_DATA_DIR", LOCAL, "path", ".data/postgres",
             "The embedded PostgreSQL's data directory, relative to the checkout.", local_only=True),
    Variable("EMBEDDED_PG_PORT", LOCAL, "port", "54329",
             "The embedded PostgreSQL's port (unset: the one it last used, else this).", local_only=True),
    Variable("EMBEDDED_PG_STANDBY", LOCAL, "flag", "0",
             "`billing-dev run` also starts a hot standby of the embedded PostgreSQL (pg_basebackup into "
             "`.data/postgres-standby`, its own port) and gives it to the server as DATABASE_READ_URL.",
             local_only=True),
    Variable("EMBEDDED_PG_SHARED_BUFFERS", LOCAL, "size", "2GB",
             "The embedded PostgreSQL's shared_buffers (sized for the benchmark's working set).", local_only=True),
)
DECLARED = {variable.name: variable for variable in VARIABLES}


def value(name: str) -> str | None:
    """The variable's text in the environment, else its declared default; a name not declared is a KeyError."""
    return os.environ.get(name, DECLARED[name].default)


def is_set(name: str) -> bool:
    DECLARED[name]
    return name in os.environ


def text(name: str) -> str:
    return value(name) or ""


def default_int(name: str) -> int:
    return int(DECLARED[name].default or "0")


def _int(name: str) -> int:
    return int(text(name))


def _float(name: str) -> float:
    return float(text(name))


def _flag(name: str) -> bool:
    return text(name).strip().lower() in TRUE_WORDS


DEFAULT_DEMO_PORT = default_int("BILLING_DEMO_PORT")  # the demo app under `make run`: the default CORS origin's port
DEFAULT_STANDIN_PORT = default_int("BILLING_STRIPE_STANDIN_PORT")
DEFAULT_REST_PORT = default_int("BILLING_REST_PORT")
# BILLING_KEY_RATE_LIMIT_USER / _SERVICE / _ADMIN: calls per second per key (all replicas together).
DEFAULT_KEY_RATE_LIMITS = {scope: default_int(f"BILLING_KEY_RATE_LIMIT_{scope.upper()}") for scope in KEY_SCOPES}
