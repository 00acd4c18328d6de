"""payment_owners: which account a provider's payment (or invoice) credits, across accounts.

The wallet's own records (payments, idempotency keys) are per account, so by themselves they
cannot stop one PaymentIntent from crediting two accounts (its metadata changed to name another
user). Keyed by the provider's id like payment_customers (the way from a webhook to an account):
on a sharded PostgreSQL both are small lookup tables, written once per payment, off the hot path.

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import TIMESTAMP

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "payment_owners",
        sa.Column("payment_id", sa.Text, nullable=False),
        sa.Column("account_id", sa.Text, nullable=False),
        sa.Column("created_at", TIMESTAMP(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("payment_id", name="payment_owners_pkey"),
    )
    # Existing credits keep their account: a redelivery after this migration is still theirs.
    op.execute(
        "INSERT INTO payment_owners (payment_id, account_id, created_at) "
        "SELECT payment_id, min(account_id), min(paid_at) FROM payments GROUP BY payment_id"
    )


def downgrade() -> None:
    op.drop_table("payment_owners")
