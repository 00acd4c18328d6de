"""Refund intents (review): the lease is the holder's. claim_token: a secret of the request holding
the lease, set when it records or claims the intent; releasing, completing and removing the intent
need it, so a request whose lease ran out and was taken over cuts nobody's lease short (NULL on
intents recorded before: they can only be claimed again, once their lease has run out).

Revision ID: 0017
Revises: 0016
"""
import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("refund_intents", sa.Column("claim_token", sa.Text, nullable=True))


def downgrade() -> None:
    op.drop_column("refund_intents", "claim_token")
