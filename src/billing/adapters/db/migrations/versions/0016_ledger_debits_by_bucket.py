"""The console timeline's expired seconds (issue 23, review): what expired at a bucket's expiry is
what it holds now plus what rows took out of it after (a refund of its payment, a period close), so
the timeline reads those rows of one account by bucket.

ledger_debits_by_bucket: (account_id, bucket_seq) of the ledger's debits other than consumption and
a rollover's outgoing leg (discards, refunds, negative adjustments: rare rows, so Consume's writes never touch it); built
CONCURRENTLY, so Consume goes on while it builds (a failed build leaves an INVALID index, dropped and
built again by running the migration again).

Revision ID: 0016
Revises: 0015
"""
import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

DEBITS_NOT_CONSUMED = "seconds < 0 AND type NOT IN ('consumption', 'rollover_created')"


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index("ledger_debits_by_bucket", "ledger_events", postgresql_concurrently=True, if_exists=True)
        op.create_index("ledger_debits_by_bucket", "ledger_events", ["account_id", "bucket_seq"],
                        postgresql_where=sa.text(DEBITS_NOT_CONSUMED), postgresql_concurrently=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index("ledger_debits_by_bucket", "ledger_events", postgresql_concurrently=True, if_exists=True)
