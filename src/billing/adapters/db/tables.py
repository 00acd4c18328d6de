"""Table definitions (SQLAlchemy Core). Every per-account table leads its primary key
with account_id and every hot query filters by it, so the schema can be distributed
by account (Citus) without redesign."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger, Boolean, CheckConstraint, Column, Date, ForeignKeyConstraint, Index, Integer,
    MetaData, PrimaryKeyConstraint, SmallInteger, Table, Text, UniqueConstraint, text,
)
from sqlalchemy.dialects.postgresql import ARRAY, BYTEA, JSONB, TIMESTAMP

metadata = MetaData()
TIMESTAMPTZ = TIMESTAMP(timezone=True)

accounts = Table(
    "accounts",
    metadata,
    Column("account_id", Text, nullable=False),
    Column("plan_key", Text, nullable=False),
    Column("subscription_status", Text, nullable=False),
    Column("created_at", TIMESTAMPTZ, nullable=False),
    Column("updated_at", TIMESTAMPTZ, nullable=False),
    # Per-account counters: new bucket and event numbers are assigned under the
    # account's row lock, so they need no global sequence.
    Column("last_bucket_seq", Integer, nullable=False, server_default=text("0")),
    Column("last_event_seq", BigInteger, nullable=False, server_default=text("0")),
    # Bumped by every write of the row: what an unlocked write checks (migration 0006).
    Column("version", BigInteger, nullable=False, server_default=text("0")),
    Column("bonus_last_grant_on", Date, nullable=True),
    Column("bonus_month", Date, nullable=True),
    Column("bonus_used_seconds", Integer, nullable=False, server_default=text("0")),
    Column("subscription_period_start", TIMESTAMPTZ, nullable=True),
    Column("subscription_period_end", TIMESTAMPTZ, nullable=True),
    Column("subscription_cancel_at_period_end", Boolean, nullable=False, server_default=text("false")),
    Column("subscription_pending_plan_key", Text, nullable=True),
    Column("subscription_closes_at", TIMESTAMPTZ, nullable=True),
    Column("subscription_rollover_warned_seq", Integer, nullable=False, server_default=text("0")),
    Column("topup_enabled", Boolean, nullable=False, server_default=text("false")),
    Column("topup_threshold_seconds", Integer, nullable=False, server_default=text("0")),
    Column("topup_package_key", Text, nullable=True),
    Column("topup_currency", Text, nullable=True),
    Column("topup_seq", Integer, nullable=False, server_default=text("0")),
    Column("topup_pending_since", TIMESTAMPTZ, nullable=True),
    Column("topup_failures", Integer, nullable=False, server_default=text("0")),
    Column("topup_retry_at", TIMESTAMPTZ, nullable=True),
    Column("topup_last_failure", Text, nullable=True),
    # The account's open holds (migration 0011): how many, and the first to fall due.
    Column("holds_open_count", Integer, nullable=False, server_default=text("0")),
    Column("holds_next_expiry_at", TIMESTAMPTZ, nullable=True),
    # Outbound events (migration 0012): the account's alert thresholds (NULL: the catalog's), the
    # lowest one the balance is below (NULL: above them all), and the outbox's numbering.
    Column("alert_thresholds", JSONB, nullable=True),
    Column("alert_below_seconds", Integer, nullable=True),
    Column("last_outbound_seq", BigInteger, nullable=False, server_default=text("0")),
    Column("credit_notice_at", TIMESTAMPTZ, nullable=True),  # the next credit expiry notice due
    PrimaryKeyConstraint("account_id", name="accounts_pkey"),
    CheckConstraint("bonus_used_seconds >= 0", name="accounts_bonus_used_nonnegative"),
)

buckets = Table(
    "buckets",
    metadata,
    Column("account_id", Text, nullable=False),
    Column("bucket_seq", Integer, nullable=False),
    Column("source", Text, nullable=False),
    Column("granted_seconds", Integer, nullable=False),
    Column("remaining_seconds", Integer, nullable=False),
    Column("granted_at", TIMESTAMPTZ, nullable=False),
    Column("expires_at", TIMESTAMPTZ, nullable=True),
    # Of the remainder, what open holds reserve (migration 0011).
    Column("held_seconds", Integer, nullable=False, server_default=text("0")),
    # Which credit expiry notice the bucket has had: 0 none, 1 expiring, 2 expired (migration 0012).
    Column("expiry_notice", SmallInteger, nullable=False, server_default=text("0")),
    PrimaryKeyConstraint("account_id", "bucket_seq", name="buckets_pkey"),
    ForeignKeyConstraint(["account_id"], ["accounts.account_id"], name="buckets_account_fkey"),
    CheckConstraint(
        "remaining_seconds >= 0 AND remaining_seconds <= granted_seconds", name="buckets_remaining_in_range"
    ),
    CheckConstraint(
        "source IN ('daily','subscription','rollover','package','welcome','gift')", name="buckets_source_known"
    ),
    CheckConstraint("held_seconds >= 0 AND held_seconds <= remaining_seconds", name="buckets_held_in_range"),
)
# Live buckets of one account, without reading its exhausted history.
Index(
    "buckets_live_by_account", buckets.c.account_id, buckets.c.expires_at,
    postgresql_where=buckets.c.remaining_seconds > 0,
)
# `billing tick`'s rollover warnings: rollover buckets with seconds left, by expiry.
Index(
    "buckets_rollover_expiring", buckets.c.expires_at,
    postgresql_where=(buckets.c.source == "rollover") & (buckets.c.remaining_seconds > 0),
)

ledger_events = Table(
    "ledger_events",
    metadata,
    Column("account_id", Text, nullable=False),
    Column("event_seq", BigInteger, nullable=False),
    Column("type", Text, nullable=False),
    Column("seconds", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("bucket_seq", Integer, nullable=False),
    Column("operation", Text, nullable=True),
    Column("occurred_at", TIMESTAMPTZ, nullable=False),
    Column("metadata", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    PrimaryKeyConstraint("account_id", "event_seq", name="ledger_events_pkey"),
    ForeignKeyConstraint(
        ["account_id", "bucket_seq"], ["buckets.account_id", "buckets.bucket_seq"],
        name="ledger_events_bucket_fkey",
    ),
    CheckConstraint(
        "seconds <> 0 OR type IN ('rollover_discard_pending','auto_topup_triggered')", name="ledger_events_seconds_nonzero"
    ),
)
# Usage analytics reads one account's consumption over a period.
Index(
    "ledger_consumption_by_account_time", ledger_events.c.account_id, ledger_events.c.occurred_at,
    postgresql_where=ledger_events.c.type == "consumption",
)
# The console timeline reads the debits that emptied a bucket after its expiry (discards, refunds).
Index(
    "ledger_debits_by_bucket", ledger_events.c.account_id, ledger_events.c.bucket_seq,
    postgresql_where=(ledger_events.c.seconds < 0) & ledger_events.c.type.notin_(("consumption", "rollover_created")),
)

Index(
    "accounts_period_closing", accounts.c.subscription_closes_at,
    postgresql_where=accounts.c.subscription_closes_at.isnot(None),
)

Index(
    "accounts_topup_waiting", accounts.c.account_id,
    postgresql_where=accounts.c.topup_pending_since.isnot(None) | accounts.c.topup_retry_at.isnot(None),
)

idempotency_records = Table(
    "idempotency_records",
    metadata,
    Column("account_id", Text, nullable=False),
    Column("idempotency_key", Text, nullable=False),
    Column("request_fingerprint", Text, nullable=False),
    Column("response", JSONB, nullable=False),
    Column("created_at", TIMESTAMPTZ, nullable=False),
    PrimaryKeyConstraint("account_id", "idempotency_key", name="idempotency_records_pkey"),
)

resume_tokens = Table(
    "resume_tokens",
    metadata,
    Column("account_id", Text, nullable=False),
    # Only a hash is stored: the token itself is a bearer credential.
    Column("token_sha256", Text, nullable=False),
    Column("operation", Text, nullable=False),
    Column("seconds", Integer, nullable=False),
    Column("created_at", TIMESTAMPTZ, nullable=False),
    Column("expires_at", TIMESTAMPTZ, nullable=False),
    Column("used_at", TIMESTAMPTZ, nullable=True),
    PrimaryKeyConstraint("account_id", "token_sha256", name="resume_tokens_pkey"),
)

# Keys that sign requests (migration 0003). No secrets: they are derived from the master key.
api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column("user_id", Text, nullable=True),
    Column("created_at", TIMESTAMPTZ, nullable=False),
    Column("expires_at", TIMESTAMPTZ, nullable=False),
    Column("revoked_at", TIMESTAMPTZ, nullable=True),
    PrimaryKeyConstraint("key_id", name="api_keys_pkey"),
    CheckConstraint("scope IN ('service','user','admin')", name="api_keys_scope_known"),
    CheckConstraint("(scope = 'user') = (user_id IS NOT NULL)", name="api_keys_user_for_user_keys"),
)

# Payments (migration 0004).
payments = Table(
    "payments",
    metadata,
    Column("account_id", Text, nullable=False),
    Column("payment_id", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("item_key", Text, nullable=False),
    Column("bucket_seq", Integer, nullable=False),
    Column("amount_cents", Integer, nullable=False),
    Column("currency", Text, nullable=False),
    Column("granted_seconds", Integer, nullable=False),
    Column("paid_at", TIMESTAMPTZ, nullable=False),
    Column("refunded_cents", Integer, nullable=False, server_default=text("0")),
    Column("refund_target_seconds", Integer, nullable=False, server_default=text("0")),
    Column("refund_removed_seconds", Integer, nullable=False, server_default=text("0")),
    Column("refund_unrecoverable_seconds", Integer, nullable=False, server_default=text("0")),
    Column("updated_at", TIMESTAMPTZ, nullable=False),
    PrimaryKeyConstraint("account_id", "payment_id", name="payments_pkey"),
    ForeignKeyConstraint(
        ["account_id", "bucket_seq"], ["buckets.account_id", "buckets.bucket_seq"], name="payments_bucket_fkey"
    ),
    CheckConstraint("kind IN ('package','subscription')", name="payments_kind_known"),
    CheckConstraint(
        "refund_removed_seconds + refund_unrecoverable_seconds = refund_target_seconds"
        " AND refund_target_seconds <= granted_seconds",
        name="payments_refund_adds_up",
    ),
)

payment_profiles = Table(
    "payment_profiles",
    metadata,
    Column("account_id", Text, nullable=False),
    Column("customer_id", Text, nullable=False),
    Column("subscription_id", Text, nullable=True),
    Column("updated_at", TIMESTAMPTZ, nullable=False),
    PrimaryKeyConstraint("account_id", name="payment_profiles_pkey"),
    ForeignKeyConstraint(["account_id"], ["accounts.account_id"], name="payment_profiles_account_fkey"),
)

# Keyed by the provider's customer id: the way from a webhook to its account.
payment_customers = Table(
    "payment_customers",
    metadata,
    Column("customer_id", Text, nullable=False),
    Column("account_id", Text, nullable=False),
    Column("created_at", TIMESTAMPTZ, nullable=False),
    PrimaryKeyConstraint("customer_id", name="payment_customers_pkey"),
)

# Keyed by the provider's payment (or invoice) id: the one account it may ever credit (migration 0009).
payment_owners = Table(
    "payment_owners",
    metadata,
    Column("payment_id", Text, nullable=False),
    Column("account_id", Text, nullable=False),
    Column("created_at", TIMESTAMPTZ, nullable=False),
    PrimaryKeyConstraint("payment_id", name="payment_owners_pkey"),
)

# Upgrades this service asked for, keyed by the price it created (migration 0010).
plan_changes = Table(
    "plan_changes",
    metadata,
    Column("account_id", Text, nullable=False),
    Column("price_id", Text, nullable=False),
    Column("subscription_id", Text, nullable=False),
    Column("from_plan_key", Text, nullable=False),
    Column("to_plan_key", Text, nullable=False),
    Column("currency", Text, nullable=False),
    Column("from_price_cents", Integer, nullable=False),
    Column("period_start", TIMESTAMPTZ, nullable=False),
    Column("period_end", TIMESTAMPTZ, nullable=False),
    Column("resume_cancellation", Boolean, nullable=False),
    Column("requested_at", TIMESTAMPTZ, nullable=False),
    Column("invoice_id", Text, nullable=True),
    PrimaryKeyConstraint("account_id", "price_id", name="plan_changes_pkey"),
    ForeignKeyConstraint(["account_id"], ["accounts.account_id"], name="plan_changes_account_fkey"),
)

# `billing tick`'s credit expiry notices: accounts with one due, by when.
Index(
    "accounts_credit_notice", accounts.c.credit_notice_at,
    postgresql_where=accounts.c.credit_notice_at.isnot(None),
)
# `billing tick`'s hold expiries: accounts with an open hold, by the first to fall due.
Index(
    "accounts_hold_expiry", accounts.c.holds_next_expiry_at,
    postgresql_where=accounts.c.holds_next_expiry_at.isnot(None),
)

# Holds (domain/hold.py), open and settled; `parts`: [[bucket_seq, seconds], ...] still reserved.
holds = Table(
    "holds",
    metadata,
    Column("account_id", Text, nullable=False),
    Column("hold_id", Text, nullable=False),
    Column("operation", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("held_seconds", Integer, nullable=False),
    Column("committed_seconds", Integer, nullable=False),
    Column("expired_seconds", Integer, nullable=False),
    Column("requested_seconds", Integer, nullable=False),
    Column("requested_ttl_seconds", Integer, nullable=False),
    Column("parts", JSONB, nullable=False),
    Column("created_at", TIMESTAMPTZ, nullable=False),
    Column("expires_at", TIMESTAMPTZ, nullable=False),
    Column("settled_at", TIMESTAMPTZ, nullable=True),
    Column("updated_at", TIMESTAMPTZ, nullable=False),
    PrimaryKeyConstraint("account_id", "hold_id", name="holds_pkey"),
    ForeignKeyConstraint(["account_id"], ["accounts.account_id"], name="holds_account_fkey"),
    CheckConstraint("state IN ('open','settled','expired')", name="holds_state_known"),
    CheckConstraint(
        "committed_seconds >= 0 AND committed_seconds <= held_seconds AND expired_seconds >= 0",
        name="holds_seconds_in_range",
    ),
)
Index("holds_open_by_account", holds.c.account_id, holds.c.created_at, postgresql_where=holds.c.state == "open")

# Outbound events (migration 0012): the outbox, written with the change it reports.
outbound_events = Table(
    "outbound_events",
    metadata,
    Column("account_id", Text, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("created_at", TIMESTAMPTZ, nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("dispatched", Boolean, nullable=False, server_default=text("false")),
    PrimaryKeyConstraint("account_id", "seq", name="outbound_events_pkey"),
    ForeignKeyConstraint(["account_id"], ["accounts.account_id"], name="outbound_events_account_fkey"),
)
Index("outbound_events_undispatched", outbound_events.c.created_at, postgresql_where=~outbound_events.c.dispatched)

# Where events go (not per account: an app has a handful).
webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("endpoint_id", Text, nullable=False),
    Column("url", Text, nullable=False),
    Column("event_types", ARRAY(Text), nullable=False),
    Column("description", Text, nullable=False, server_default=text("''")),
    Column("enabled", Boolean, nullable=False),
    Column("disabled_reason", Text, nullable=True),
    Column("secret", Text, nullable=False),
    Column("previous_secret", Text, nullable=True),
    Column("previous_secret_until", TIMESTAMPTZ, nullable=True),
    Column("failing_since", TIMESTAMPTZ, nullable=True),
    Column("created_at", TIMESTAMPTZ, nullable=False),
    Column("updated_at", TIMESTAMPTZ, nullable=False),
    Column("deleted_at", TIMESTAMPTZ, nullable=True),
    PrimaryKeyConstraint("endpoint_id", name="webhook_endpoints_pkey"),
)

# One per (account, endpoint, event); sent in seq order per account and endpoint.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("account_id", Text, nullable=False),
    Column("endpoint_id", Text, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", TIMESTAMPTZ, nullable=False),
    Column("lease_until", TIMESTAMPTZ, nullable=True),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", TIMESTAMPTZ, nullable=False),
    Column("updated_at", TIMESTAMPTZ, nullable=False),
    Column("finished_at", TIMESTAMPTZ, nullable=True),
    PrimaryKeyConstraint("account_id", "endpoint_id", "seq", name="webhook_deliveries_pkey"),
    ForeignKeyConstraint(["account_id", "seq"], ["outbound_events.account_id", "outbound_events.seq"],
                         name="webhook_deliveries_event_fkey"),
    ForeignKeyConstraint(["endpoint_id"], ["webhook_endpoints.endpoint_id"], name="webhook_deliveries_endpoint_fkey"),
    CheckConstraint("status IN ('pending','delivered','failed')", name="webhook_deliveries_status_known"),
)
Index("webhook_deliveries_due", webhook_deliveries.c.next_attempt_at,
      postgresql_where=webhook_deliveries.c.status == "pending")
Index("webhook_deliveries_by_endpoint", webhook_deliveries.c.endpoint_id, webhook_deliveries.c.status,
      webhook_deliveries.c.created_at)
# The admin surface's delivery log (issue 22): replay by event id, and each filter of the log newest first
# (per status, merged: api's GET /v1/billing/admin/webhook-deliveries; replay of the failed since a time).
Index("webhook_deliveries_by_event", webhook_deliveries.c.event_id)
Index("webhook_deliveries_by_account", webhook_deliveries.c.account_id, webhook_deliveries.c.status,
      webhook_deliveries.c.created_at)
Index("webhook_deliveries_by_status", webhook_deliveries.c.status, webhook_deliveries.c.created_at)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("account_id", Text, nullable=False),
    Column("endpoint_id", Text, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("attempted_at", TIMESTAMPTZ, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("latency_ms", Integer, nullable=False),
    Column("response_excerpt", Text, nullable=False, server_default=text("''")),
    Column("error", Text, nullable=True),
    PrimaryKeyConstraint("account_id", "endpoint_id", "seq", "attempt", name="webhook_attempts_pkey"),
    ForeignKeyConstraint(["account_id", "endpoint_id", "seq"],
                         ["webhook_deliveries.account_id", "webhook_deliveries.endpoint_id", "webhook_deliveries.seq"],
                         name="webhook_attempts_delivery_fkey"),
)

webhook_events = Table(
    "webhook_events",
    metadata,
    Column("event_id", Text, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("account_id", Text, nullable=True),
    Column("detail", Text, nullable=False),
    Column("payload", JSONB, nullable=True),
    Column("payload_text", Text, nullable=True),
    Column("received_at", TIMESTAMPTZ, nullable=False),
    PrimaryKeyConstraint("event_id", name="webhook_events_pkey"),
)

# Accounts opened by `billing migrate-legacy` (migration 0005): the legacy values each was
# opened from, so a second run can tell "already migrated" from a conflict.
legacy_migrations = Table(
    "legacy_migrations",
    metadata,
    Column("account_id", Text, nullable=False),
    Column("plan_key", Text, nullable=False),
    Column("paid_seconds_remaining", Integer, nullable=False),
    Column("welcome_bonus_seconds", Integer, nullable=False),
    Column("daily_gift_used_today", Integer, nullable=False),
    Column("source_file", Text, nullable=False),
    Column("source_line", Integer, nullable=False),
    Column("migrated_at", TIMESTAMPTZ, nullable=False),
    PrimaryKeyConstraint("account_id", name="legacy_migrations_pkey"),
    ForeignKeyConstraint(["account_id"], ["accounts.account_id"], name="legacy_migrations_account_fkey"),
)

# Operator actions (migration 0014): the audit trail, written in the transaction of the change it
# records; per account ('' for an action on no account, such as a service key revoked). The
# idempotency key names one operator request over the whole table (the row is its stored answer).
audit_entries = Table(
    "audit_entries",
    metadata,
    Column("account_id", Text, nullable=False),
    Column("audit_id", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("operator_key_id", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_at", TIMESTAMPTZ, nullable=False),
    Column("before_totals", JSONB, nullable=True),
    Column("after_totals", JSONB, nullable=True),
    Column("detail", JSONB, nullable=False),
    Column("idempotency_key", Text, nullable=False),
    Column("request_fingerprint", Text, nullable=False),
    PrimaryKeyConstraint("account_id", "audit_id", name="audit_entries_pkey"),
    UniqueConstraint("idempotency_key", name="audit_entries_idempotency_key"),
    CheckConstraint("char_length(reason) BETWEEN 1 AND 500", name="audit_entries_reason_length"),
)
Index("audit_entries_newest", audit_entries.c.created_at.desc(), audit_entries.c.audit_id.desc())
Index("audit_entries_account_newest", audit_entries.c.account_id, audit_entries.c.created_at.desc(),
      audit_entries.c.audit_id.desc())
Index("audit_entries_operator_newest", audit_entries.c.operator_key_id, audit_entries.c.created_at.desc())

# Operator refunds (migration 0015): recorded before the provider is called, marked done with the
# audit entry (service/refund_intents.py). The operator's idempotency key is unique over the table.
refund_intents = Table(
    "refund_intents",
    metadata,
    Column("account_id", Text, nullable=False),
    Column("intent_id", Text, nullable=False),
    Column("idempotency_key", Text, nullable=False),
    Column("request_fingerprint", Text, nullable=False),
    Column("operator_key_id", Text, nullable=False),
    Column("payment_id", Text, nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("reason", Text, nullable=False),
    Column("payment_amount_cents", BigInteger, nullable=False),
    Column("refunded_cents_before", BigInteger, nullable=False),
    Column("state", Text, nullable=False),
    Column("refund_id", Text, nullable=True),
    Column("created_at", TIMESTAMPTZ, nullable=False),
    Column("claimed_until", TIMESTAMPTZ, nullable=False),
    Column("completed_at", TIMESTAMPTZ, nullable=True),
    Column("claim_token", Text, nullable=True),  # the lease holder's (migration 0017)
    PrimaryKeyConstraint("account_id", "intent_id", name="refund_intents_pkey"),
    UniqueConstraint("idempotency_key", name="refund_intents_idempotency_key"),
    CheckConstraint("state IN ('requested', 'refunded')", name="refund_intents_state"),
    CheckConstraint("(state = 'refunded') = (refund_id IS NOT NULL)", name="refund_intents_refund_id"),
    CheckConstraint("amount_cents >= 0", name="refund_intents_amount"),
    CheckConstraint("char_length(reason) BETWEEN 1 AND 500", name="refund_intents_reason_length"),
)

# One-time console sign-in codes (SHA-256 digests), each handing out its admin key once.
console_logins = Table(
    "console_logins",
    metadata,
    Column("code_digest", BYTEA, nullable=False),
    Column("key_id", Text, nullable=False),
    Column("created_at", TIMESTAMPTZ, nullable=False),
    Column("expires_at", TIMESTAMPTZ, nullable=False),
    Column("redeemed_at", TIMESTAMPTZ, nullable=True),
    PrimaryKeyConstraint("code_digest", name="console_logins_pkey"),
    ForeignKeyConstraint(["key_id"], ["api_keys.key_id"], name="console_logins_key_fkey"),
)

# --- The operator console's reads (issue 23, migration 0013) -----------------------------------
# A user id prefix as one range of byte-ordered ids, whatever the database's collation.
Index("accounts_id_prefix", accounts.c.account_id.collate("C"))
Index("payment_profiles_by_subscription", payment_profiles.c.subscription_id,
      postgresql_where=payment_profiles.c.subscription_id.isnot(None))
Index("api_keys_by_user", api_keys.c.user_id, api_keys.c.created_at, postgresql_where=api_keys.c.user_id.isnot(None))
# Stripe deliveries kept for an operator (service/webhooks.py records the payload of what it could not apply).
Index("webhook_events_kept", webhook_events.c.received_at,
      postgresql_where=text("outcome <> 'processed' AND (payload IS NOT NULL OR payload_text IS NOT NULL)"))

# Service-wide records (not per account: keyed by replica, hour, job or run).
replica_heartbeats = Table(
    "replica_heartbeats",
    metadata,
    Column("replica_id", Text, nullable=False),
    Column("host", Text, nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", TIMESTAMPTZ, nullable=False),
    Column("seen_at", TIMESTAMPTZ, nullable=False),
    PrimaryKeyConstraint("replica_id", name="replica_heartbeats_pkey"),
)
Index("replica_heartbeats_seen", replica_heartbeats.c.seen_at)

service_activity = Table(
    "service_activity",
    metadata,
    Column("hour_at", TIMESTAMPTZ, nullable=False),
    Column("replica_id", Text, nullable=False),
    *(Column(name, BigInteger, nullable=False, server_default=text("0")) for name in (
        "consumed_seconds", "consumes", "refusals", "topups_succeeded", "topups_failed", "webhooks_delivered",
        "webhooks_failed")),
    PrimaryKeyConstraint("hour_at", "replica_id", name="service_activity_pkey"),
)

job_runs = Table(
    "job_runs",
    metadata,
    Column("job", Text, nullable=False),
    Column("started_at", TIMESTAMPTZ, nullable=False),
    Column("finished_at", TIMESTAMPTZ, nullable=False),
    Column("accounts_touched", Integer, nullable=False),
    PrimaryKeyConstraint("job", name="job_runs_pkey"),
)

migration_runs = Table(
    "migration_runs",
    metadata,
    Column("run_id", Text, nullable=False),
    Column("source_file", Text, nullable=False),
    Column("started_at", TIMESTAMPTZ, nullable=False),
    Column("finished_at", TIMESTAMPTZ, nullable=True),
    Column("rows_read", Integer, nullable=False, server_default=text("0")),
    Column("accounts_migrated", Integer, nullable=False, server_default=text("0")),
    Column("accounts_skipped", Integer, nullable=False, server_default=text("0")),
    Column("bad_lines", Integer, nullable=False, server_default=text("0")),
    Column("bad_line_samples", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    PrimaryKeyConstraint("run_id", name="migration_runs_pkey"),
)
Index("migration_runs_by_start", migration_runs.c.started_at, migration_runs.c.run_id)
