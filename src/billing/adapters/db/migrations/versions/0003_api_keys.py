"""api_keys: the keys that sign requests (scope, the user of a user key, expiry, revocation)

No secret is stored: a key's secret is derived from the server's master key and the key id
(adapters/key_secrets.py), so this table leaks nothing usable. Not per-account (a key may act
for every user): on a sharded PostgreSQL it is a small reference table.

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import TIMESTAMP

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.Text, nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("user_id", sa.Text, nullable=True),
        sa.Column("created_at", TIMESTAMP(timezone=True), nullable=False),
        sa.Column("expires_at", TIMESTAMP(timezone=True), nullable=False),
        sa.Column("revoked_at", TIMESTAMP(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key_id", name="api_keys_pkey"),
        sa.CheckConstraint("scope IN ('service','user','admin')", name="api_keys_scope_known"),
        sa.CheckConstraint("(scope = 'user') = (user_id IS NOT NULL)", name="api_keys_user_for_user_keys"),
    )


def downgrade() -> None:
    op.drop_table("api_keys")
