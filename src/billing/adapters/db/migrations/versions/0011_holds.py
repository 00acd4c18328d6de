"""holds: seconds reserved on buckets for work of unknown length (issue 21).

buckets.held_seconds: of the remainder, what open holds reserve (0 <= held <= remaining).
accounts.holds_open_count / holds_next_expiry_at: the account's summary of its open holds (a read
knows when one falls due without loading any; `billing tick` finds accounts with one due).
holds: each hold, open or settled (a settled one stays: its id answers retries), keyed by account.

Revision ID: 0011
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, TIMESTAMP

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("buckets", sa.Column("held_seconds", sa.Integer, nullable=False, server_default=sa.text("0")))
    op.create_check_constraint(
        "buckets_held_in_range", "buckets", "held_seconds >= 0 AND held_seconds <= remaining_seconds")
    op.add_column("accounts", sa.Column("holds_open_count", sa.Integer, nullable=False, server_default=sa.text("0")))
    op.add_column("accounts", sa.Column("holds_next_expiry_at", TIMESTAMP(timezone=True), nullable=True))
    op.create_index(
        "accounts_hold_expiry", "accounts", ["holds_next_expiry_at"],
        postgresql_where=sa.text("holds_next_expiry_at IS NOT NULL"))
    op.create_table(
        "holds",
        sa.Column("account_id", sa.Text, nullable=False),
        sa.Column("hold_id", sa.Text, nullable=False),
        sa.Column("operation", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("held_seconds", sa.Integer, nullable=False),
        sa.Column("committed_seconds", sa.Integer, nullable=False),
        sa.Column("expired_seconds", sa.Integer, nullable=False),
        sa.Column("requested_seconds", sa.Integer, nullable=False),
        sa.Column("requested_ttl_seconds", sa.Integer, nullable=False),
        sa.Column("parts", JSONB, nullable=False),
        sa.Column("created_at", TIMESTAMP(timezone=True), nullable=False),
        sa.Column("expires_at", TIMESTAMP(timezone=True), nullable=False),
        sa.Column("settled_at", TIMESTAMP(timezone=True), nullable=True),
        sa.Column("updated_at", TIMESTAMP(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "hold_id", name="holds_pkey"),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.account_id"], name="holds_account_fkey"),
        sa.CheckConstraint("state IN ('open','settled','expired')", name="holds_state_known"),
        sa.CheckConstraint(
            "committed_seconds >= 0 AND committed_seconds <= held_seconds AND expired_seconds >= 0",
            name="holds_seconds_in_range"),
    )
    op.create_index(
        "holds_open_by_account", "holds", ["account_id", "created_at"], postgresql_where=sa.text("state = 'open'"))


def downgrade() -> None:
    op.drop_table("holds")
    op.drop_index("accounts_hold_expiry", "accounts")
    op.drop_column("accounts", "holds_next_expiry_at")
    op.drop_column("accounts", "holds_open_count")
    op.drop_constraint("buckets_held_in_range", "buckets")
    op.drop_column("buckets", "held_seconds")
