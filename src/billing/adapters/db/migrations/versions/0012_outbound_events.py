"""Outbound events (issue 22): the outbox, webhook endpoints, their deliveries and attempts.

accounts: alert_thresholds (jsonb array of seconds, descending; NULL: the catalog's default),
alert_below_seconds (the lowest threshold the available balance is below, NULL: above them all:
what makes `balance.low` once per crossing), last_outbound_seq (the account's outbox numbering).
outbound_events: the outbox, written in the transaction of the change it reports; `dispatched`
once its deliveries exist (the dispatcher's queue is the partial index of the others).
webhook_endpoints: where events go (not per account). webhook_deliveries: one per (account,
endpoint, event), sent in `seq` order per account and endpoint; webhook_attempts: each try.
accounts.credit_notice_at: when a credit expiry notice is next due (`credit.expiring` 3 days ahead,
`credit.expired` at expiry); buckets.expiry_notice: which of the two a bucket has had (0, 1, 2).

Revision ID: 0012
Revises: 0011
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TIMESTAMP

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

TIMESTAMPTZ = TIMESTAMP(timezone=True)


def upgrade() -> None:
    op.add_column("accounts", sa.Column("alert_thresholds", JSONB, nullable=True))
    op.add_column("accounts", sa.Column("alert_below_seconds", sa.Integer, nullable=True))
    op.add_column("accounts", sa.Column("last_outbound_seq", sa.BigInteger, nullable=False, server_default=sa.text("0")))
    op.add_column("accounts", sa.Column("credit_notice_at", TIMESTAMPTZ, nullable=True))
    op.create_index("accounts_credit_notice", "accounts", ["credit_notice_at"],
                    postgresql_where=sa.text("credit_notice_at IS NOT NULL"))
    op.add_column("buckets", sa.Column("expiry_notice", sa.SmallInteger, nullable=False, server_default=sa.text("0")))
    op.create_table(
        "outbound_events",
        sa.Column("account_id", sa.Text, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("created_at", TIMESTAMPTZ, nullable=False),
        sa.Column("payload", JSONB, nullable=False),
        sa.Column("dispatched", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.PrimaryKeyConstraint("account_id", "seq", name="outbound_events_pkey"),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.account_id"], name="outbound_events_account_fkey"),
    )
    op.create_index("outbound_events_undispatched", "outbound_events", ["created_at"],
                    postgresql_where=sa.text("NOT dispatched"))
    op.create_table(
        "webhook_endpoints",
        sa.Column("endpoint_id", sa.Text, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("event_types", ARRAY(sa.Text), nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=sa.text("''")),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("disabled_reason", sa.Text, nullable=True),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("previous_secret", sa.Text, nullable=True),
        sa.Column("previous_secret_until", TIMESTAMPTZ, nullable=True),
        sa.Column("failing_since", TIMESTAMPTZ, nullable=True),
        sa.Column("created_at", TIMESTAMPTZ, nullable=False),
        sa.Column("updated_at", TIMESTAMPTZ, nullable=False),
        sa.Column("deleted_at", TIMESTAMPTZ, nullable=True),
        sa.PrimaryKeyConstraint("endpoint_id", name="webhook_endpoints_pkey"),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("account_id", sa.Text, nullable=False),
        sa.Column("endpoint_id", sa.Text, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("next_attempt_at", TIMESTAMPTZ, nullable=False),
        sa.Column("lease_until", TIMESTAMPTZ, nullable=True),
        sa.Column("last_status_code", sa.Integer, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", TIMESTAMPTZ, nullable=False),
        sa.Column("updated_at", TIMESTAMPTZ, nullable=False),
        sa.Column("finished_at", TIMESTAMPTZ, nullable=True),
        sa.PrimaryKeyConstraint("account_id", "endpoint_id", "seq", name="webhook_deliveries_pkey"),
        sa.ForeignKeyConstraint(["account_id", "seq"], ["outbound_events.account_id", "outbound_events.seq"],
                                name="webhook_deliveries_event_fkey"),
        sa.ForeignKeyConstraint(["endpoint_id"], ["webhook_endpoints.endpoint_id"], name="webhook_deliveries_endpoint_fkey"),
        sa.CheckConstraint("status IN ('pending','delivered','failed')", name="webhook_deliveries_status_known"),
    )
    op.create_index("webhook_deliveries_due", "webhook_deliveries", ["next_attempt_at"],
                    postgresql_where=sa.text("status = 'pending'"))
    op.create_index("webhook_deliveries_by_endpoint", "webhook_deliveries", ["endpoint_id", "status", "created_at"])
    # The admin surface's delivery log: replay by event id; each filter of the log newest first, one
    # index range per status merged (adapters/db/delivery_log.py); replay of the failed since a time.
    op.create_index("webhook_deliveries_by_event", "webhook_deliveries", ["event_id"])
    op.create_index("webhook_deliveries_by_account", "webhook_deliveries", ["account_id", "status", "created_at"])
    op.create_index("webhook_deliveries_by_status", "webhook_deliveries", ["status", "created_at"])
    op.create_table(
        "webhook_attempts",
        sa.Column("account_id", sa.Text, nullable=False),
        sa.Column("endpoint_id", sa.Text, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("attempted_at", TIMESTAMPTZ, nullable=False),
        sa.Column("status_code", sa.Integer, nullable=True),
        sa.Column("latency_ms", sa.Integer, nullable=False),
        sa.Column("response_excerpt", sa.Text, nullable=False, server_default=sa.text("''")),
        sa.Column("error", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("account_id", "endpoint_id", "seq", "attempt", name="webhook_attempts_pkey"),
        sa.ForeignKeyConstraint(["account_id", "endpoint_id", "seq"],
                                ["webhook_deliveries.account_id", "webhook_deliveries.endpoint_id", "webhook_deliveries.seq"],
                                name="webhook_attempts_delivery_fkey"),
    )


def downgrade() -> None:
    op.drop_table("webhook_attempts")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_endpoints")
    op.drop_table("outbound_events")
    op.drop_column("buckets", "expiry_notice")
    op.drop_index("accounts_credit_notice", "accounts")
    op.drop_column("accounts", "credit_notice_at")
    op.drop_column("accounts", "last_outbound_seq")
    op.drop_column("accounts", "alert_below_seconds")
    op.drop_column("accounts", "alert_thresholds")
