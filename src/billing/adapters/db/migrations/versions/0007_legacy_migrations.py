"""legacy_migrations: one row per account opened by `billing migrate-legacy`, holding the legacy
values it was opened from and where they were read.

A second run compares a row's values with this record: equal is "already migrated", different
is a conflict (never overwritten); an account without a record was not opened by a migration
and is a conflict too. Per account (keyed and distributable by account_id).

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import TIMESTAMP

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "legacy_migrations",
        sa.Column("account_id", sa.Text, nullable=False),
        sa.Column("plan_key", sa.Text, nullable=False),
        sa.Column("paid_seconds_remaining", sa.Integer, nullable=False),
        sa.Column("welcome_bonus_seconds", sa.Integer, nullable=False),
        sa.Column("daily_gift_used_today", sa.Integer, nullable=False),
        sa.Column("source_file", sa.Text, nullable=False),
        sa.Column("source_line", sa.Integer, nullable=False),
        sa.Column("migrated_at", TIMESTAMP(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account_id", name="legacy_migrations_pkey"),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.account_id"], name="legacy_migrations_account_fkey"),
    )


def downgrade() -> None:
    op.drop_table("legacy_migrations")
