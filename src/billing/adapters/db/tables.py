"""Table definitions (SQLAlchemy Core). Every per-account table leads its primary key
with account_id and every hot query filters by it, so the schema can be distributed
by account (Citus) without redesign."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger, CheckConstraint, Column, Date, ForeignKeyConstraint, Index, Integer,
    MetaData, PrimaryKeyConstraint, Table, Text, text,
)
from sqlalchemy.dialects.postgresql import JSONB, TIMESTAMP

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
    Column("bonus_last_grant_on", Date, nullable=True),
    Column("bonus_month", Date, nullable=True),
    Column("bonus_used_seconds", Integer, nullable=False, server_default=text("0")),
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
    PrimaryKeyConstraint("account_id", "bucket_seq", name="buckets_pkey"),
    ForeignKeyConstraint(["account_id"], ["accounts.account_id"], name="buckets_account_fkey"),
    CheckConstraint(
        "remaining_seconds >= 0 AND remaining_seconds <= granted_seconds", name="buckets_remaining_in_range"
    ),
    CheckConstraint(
        "source IN ('daily','subscription','rollover','package','welcome','gift')", name="buckets_source_known"
    ),
)
# Live buckets of one account, without reading its exhausted history.
Index(
    "buckets_live_by_account", buckets.c.account_id, buckets.c.expires_at,
    postgresql_where=buckets.c.remaining_seconds > 0,
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
    CheckConstraint("seconds <> 0", name="ledger_events_seconds_nonzero"),
)
# Usage analytics reads one account's consumption over a period.
Index(
    "ledger_consumption_by_account_time", ledger_events.c.account_id, ledger_events.c.occurred_at,
    postgresql_where=ledger_events.c.type == "consumption",
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
