"""buckets_rollover_expiring: the rollover buckets with seconds left, by expiry.

`billing tick` looks for rollover buckets in their last week that their account has not warned
about (`rollover_discard_pending`); without an index that was a scan of every bucket. Partial:
only rollover buckets with seconds left are in it, so consumption of other buckets never
touches it.

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "buckets_rollover_expiring", "buckets", ["expires_at"],
        postgresql_where=sa.text("source = 'rollover' AND remaining_seconds > 0"),
    )


def downgrade() -> None:
    op.drop_index("buckets_rollover_expiring", table_name="buckets")
