"""payments: subscription state on accounts, the payments that credited buckets, the
provider's customers of accounts, and the webhook deliveries handled.

- accounts: the current paid period, cancellation at its end, a pending downgrade, when the
  next period closes (rollover), and which rollover buckets were warned about.
- payments (per account): a refund finds the bucket its payment credited.
- payment_profiles (per account) and payment_customers (keyed by the provider's customer id,
  the way back from a webhook; on a sharded PostgreSQL distributed by customer_id).
- webhook_events (keyed by the provider's event id): handled deliveries, and the payload of
  those that could not be applied, for an operator.
- ledger_events: a rollover_discard_pending notice changes no bucket (seconds 0).

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, TIMESTAMP

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TIMESTAMPTZ = TIMESTAMP(timezone=True)


def upgrade() -> None:
    op.add_column("accounts", sa.Column("subscription_period_start", TIMESTAMPTZ, nullable=True))
    op.add_column("accounts", sa.Column("subscription_period_end", TIMESTAMPTZ, nullable=True))
    op.add_column("accounts", sa.Column(
        "subscription_cancel_at_period_end", sa.Boolean, nullable=False, server_default=sa.text("false")))
    op.add_column("accounts", sa.Column("subscription_pending_plan_key", sa.Text, nullable=True))
    op.add_column("accounts", sa.Column("subscription_closes_at", TIMESTAMPTZ, nullable=True))
    op.add_column("accounts", sa.Column(
        "subscription_rollover_warned_seq", sa.Integer, nullable=False, server_default=sa.text("0")))
    # `billing tick` finds the accounts whose period ended and nobody touched since.
    op.create_index(
        "accounts_period_closing", "accounts", ["subscription_closes_at"],
        postgresql_where=sa.text("subscription_closes_at IS NOT NULL"),
    )
    op.drop_constraint("ledger_events_seconds_nonzero", "ledger_events", type_="check")
    op.create_check_constraint(
        "ledger_events_seconds_nonzero", "ledger_events", "seconds <> 0 OR type = 'rollover_discard_pending'"
    )
    op.create_table(
        "payments",
        sa.Column("account_id", sa.Text, nullable=False),
        sa.Column("payment_id", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("item_key", sa.Text, nullable=False),
        sa.Column("bucket_seq", sa.Integer, nullable=False),
        sa.Column("amount_cents", sa.Integer, nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("granted_seconds", sa.Integer, nullable=False),
        sa.Column("paid_at", TIMESTAMPTZ, nullable=False),
        sa.Column("refunded_cents", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("refund_target_seconds", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("refund_removed_seconds", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("refund_unrecoverable_seconds", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("updated_at", TIMESTAMPTZ, nullable=False),
        sa.PrimaryKeyConstraint("account_id", "payment_id", name="payments_pkey"),
        sa.ForeignKeyConstraint(
            ["account_id", "bucket_seq"], ["buckets.account_id", "buckets.bucket_seq"], name="payments_bucket_fkey"
        ),
        sa.CheckConstraint("kind IN ('package','subscription')", name="payments_kind_known"),
        sa.CheckConstraint(
            "refund_removed_seconds + refund_unrecoverable_seconds = refund_target_seconds"
            " AND refund_target_seconds <= granted_seconds",
            name="payments_refund_adds_up",
        ),
    )
    op.create_table(
        "payment_profiles",
        sa.Column("account_id", sa.Text, nullable=False),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("subscription_id", sa.Text, nullable=True),
        sa.Column("updated_at", TIMESTAMPTZ, nullable=False),
        sa.PrimaryKeyConstraint("account_id", name="payment_profiles_pkey"),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.account_id"], name="payment_profiles_account_fkey"),
    )
    op.create_table(
        "payment_customers",
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("account_id", sa.Text, nullable=False),
        sa.Column("created_at", TIMESTAMPTZ, nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name="payment_customers_pkey"),
    )
    op.create_table(
        "webhook_events",
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("account_id", sa.Text, nullable=True),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("payload", JSONB, nullable=True),
        sa.Column("payload_text", sa.Text, nullable=True),
        sa.Column("received_at", TIMESTAMPTZ, nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="webhook_events_pkey"),
    )


def downgrade() -> None:
    op.drop_table("webhook_events")
    op.drop_table("payment_customers")
    op.drop_table("payment_profiles")
    op.drop_table("payments")
    op.drop_constraint("ledger_events_seconds_nonzero", "ledger_events", type_="check")
    op.create_check_constraint("ledger_events_seconds_nonzero", "ledger_events", "seconds <> 0")
    op.drop_index("accounts_period_closing", table_name="accounts")
    for column in (
        "subscription_rollover_warned_seq", "subscription_closes_at", "subscription_pending_plan_key",
        "subscription_cancel_at_period_end", "subscription_period_end", "subscription_period_start",
    ):
        op.drop_column("accounts", column)
