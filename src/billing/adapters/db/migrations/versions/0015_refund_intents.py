"""Operator refund intents (issue 23, review item 2): an operator's refund is recorded before the
payment provider is called, so a refund never happens twice nor exists without its audit entry.

refund_intents: one row per operator refund request, committed before the provider is asked;
state 'requested' until the transaction that writes its audit entry marks it 'refunded' with the
provider's refund id. Per account: the primary key leads with account_id. The operator's
idempotency key is unique over the table (it names one request whatever account it names, as in
audit_entries): a concurrent duplicate fails to insert and does not call the provider.
claimed_until: the lease of the request carrying it out (service/refund_intents.py).

Revision ID: 0015
Revises: 0014
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import TIMESTAMP

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

TIMESTAMPTZ = TIMESTAMP(timezone=True)


def upgrade() -> None:
    op.create_table(
        "refund_intents",
        sa.Column("account_id", sa.Text, nullable=False),
        sa.Column("intent_id", sa.Text, nullable=False),
        sa.Column("idempotency_key", sa.Text, nullable=False),
        sa.Column("request_fingerprint", sa.Text, nullable=False),
        sa.Column("operator_key_id", sa.Text, nullable=False),
        sa.Column("payment_id", sa.Text, nullable=False),
        sa.Column("amount_cents", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("payment_amount_cents", sa.BigInteger, nullable=False),
        sa.Column("refunded_cents_before", sa.BigInteger, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("refund_id", sa.Text, nullable=True),
        sa.Column("created_at", TIMESTAMPTZ, nullable=False),
        sa.Column("claimed_until", TIMESTAMPTZ, nullable=False),
        sa.Column("completed_at", TIMESTAMPTZ, nullable=True),
        sa.PrimaryKeyConstraint("account_id", "intent_id", name="refund_intents_pkey"),
        sa.UniqueConstraint("idempotency_key", name="refund_intents_idempotency_key"),
        sa.CheckConstraint("state IN ('requested', 'refunded')", name="refund_intents_state"),
        sa.CheckConstraint("(state = 'refunded') = (refund_id IS NOT NULL)", name="refund_intents_refund_id"),
        sa.CheckConstraint("amount_cents >= 0", name="refund_intents_amount"),
        sa.CheckConstraint("char_length(reason) BETWEEN 1 AND 500", name="refund_intents_reason_length"),
    )


def downgrade() -> None:
    op.drop_table("refund_intents")
