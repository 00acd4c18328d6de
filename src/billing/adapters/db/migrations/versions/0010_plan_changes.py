"""plan_changes: the upgrades this service asked Stripe for; complimentary periods made to end.

An upgrade's invoice (billing_reason subscription_update) is credited only when it bills a price
this service created for an upgrade it recorded here (per account, keyed by that price): its
metadata cannot be trusted (anyone with a key may write it, and an invoice keeps the metadata it
was finalized with, before a pending update applies).

Accounts opened on a paid plan by an admin (a complimentary period, no Stripe subscription) got a
period that never ended: they are set to end as new ones do (cancel at the period's end, the free
plan pending), so the period's close returns them to the free plan.

Revision ID: 0010
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import TIMESTAMP

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "plan_changes",
        sa.Column("account_id", sa.Text, nullable=False),
        sa.Column("price_id", sa.Text, nullable=False),
        sa.Column("subscription_id", sa.Text, nullable=False),
        sa.Column("from_plan_key", sa.Text, nullable=False),
        sa.Column("to_plan_key", sa.Text, nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("from_price_cents", sa.Integer, nullable=False),
        sa.Column("period_start", TIMESTAMP(timezone=True), nullable=False),
        sa.Column("period_end", TIMESTAMP(timezone=True), nullable=False),
        sa.Column("resume_cancellation", sa.Boolean, nullable=False),
        sa.Column("requested_at", TIMESTAMP(timezone=True), nullable=False),
        # The invoice that credited it: one recorded upgrade is credited once.
        sa.Column("invoice_id", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("account_id", "price_id", name="plan_changes_pkey"),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.account_id"], name="plan_changes_account_fkey"),
    )
    # closes_at again where the period already closed: the next touch (or `billing tick`) ends it.
    op.execute(
        "UPDATE accounts SET subscription_cancel_at_period_end = true, subscription_pending_plan_key = 'free', "
        "subscription_closes_at = coalesce(subscription_closes_at, subscription_period_end), version = version + 1 "
        "WHERE plan_key <> 'free' AND subscription_period_end IS NOT NULL AND NOT subscription_cancel_at_period_end "
        "AND NOT EXISTS (SELECT 1 FROM payment_profiles p WHERE p.account_id = accounts.account_id "
        "AND p.subscription_id IS NOT NULL)"
    )


def downgrade() -> None:
    op.drop_table("plan_changes")
