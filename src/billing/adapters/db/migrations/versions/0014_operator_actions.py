"""Operator console actions (issue 23): the audit trail and console sign-in codes.

audit_entries: one row per operator action, written in the transaction of the change it records.
Per account: the primary key leads with account_id, '' for an action on no account (a service or
admin key revoked). The idempotency key of an operator action is unique over the whole table: it
names one operator request whatever account it touched, and the row is the action's stored answer
(a retry finds it and replays it; a concurrent duplicate fails on the unique index and rolls back
its own change). before/after: the account's BalanceTotals as JSON (NULL: no account).
console_logins: one-time codes minted by `billing console-login`, stored as SHA-256 digests, each
tied to the short-lived admin key it hands out once (redeemed_at set by the one redeem that wins).

Revision ID: 0014
Revises: 0013
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import BYTEA, JSONB, TIMESTAMP

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

TIMESTAMPTZ = TIMESTAMP(timezone=True)


def upgrade() -> None:
    op.create_table(
        "audit_entries",
        sa.Column("account_id", sa.Text, nullable=False),
        sa.Column("audit_id", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("operator_key_id", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_at", TIMESTAMPTZ, nullable=False),
        sa.Column("before_totals", JSONB, nullable=True),
        sa.Column("after_totals", JSONB, nullable=True),
        sa.Column("detail", JSONB, nullable=False),
        sa.Column("idempotency_key", sa.Text, nullable=False),
        sa.Column("request_fingerprint", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("account_id", "audit_id", name="audit_entries_pkey"),
        sa.UniqueConstraint("idempotency_key", name="audit_entries_idempotency_key"),
        sa.CheckConstraint("char_length(reason) BETWEEN 1 AND 500", name="audit_entries_reason_length"),
    )
    # Newest first, for everyone and per account (the console's audit page and an account's).
    op.create_index("audit_entries_newest", "audit_entries", [sa.text("created_at DESC"), sa.text("audit_id DESC")])
    op.create_index("audit_entries_account_newest", "audit_entries",
                    ["account_id", sa.text("created_at DESC"), sa.text("audit_id DESC")])
    op.create_index("audit_entries_operator_newest", "audit_entries",
                    ["operator_key_id", sa.text("created_at DESC")])
    op.create_table(
        "console_logins",
        sa.Column("code_digest", BYTEA, nullable=False),
        sa.Column("key_id", sa.Text, nullable=False),
        sa.Column("created_at", TIMESTAMPTZ, nullable=False),
        sa.Column("expires_at", TIMESTAMPTZ, nullable=False),
        sa.Column("redeemed_at", TIMESTAMPTZ, nullable=True),
        sa.PrimaryKeyConstraint("code_digest", name="console_logins_pkey"),
        sa.ForeignKeyConstraint(["key_id"], ["api_keys.key_id"], name="console_logins_key_fkey"),
    )


def downgrade() -> None:
    op.drop_table("console_logins")
    op.drop_index("audit_entries_operator_newest", table_name="audit_entries")
    op.drop_index("audit_entries_account_newest", table_name="audit_entries")
    op.drop_index("audit_entries_newest", table_name="audit_entries")
    op.drop_table("audit_entries")
