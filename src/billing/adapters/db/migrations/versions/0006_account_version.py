"""accounts.version: bumped by every write of the account row, and what an unlocked write checks.

Until now an unlocked write checked last_event_seq, which only a ledger entry moves: a change of
the account alone (a subscription's status, a pending downgrade, an auto top-up setting) left it
as it was, so a concurrent writer that read the account before could overwrite that change
with its stale copy. Every saved wallet now sets version = the version it read + 1.

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("accounts", sa.Column("version", sa.BigInteger, nullable=False, server_default=sa.text("0")))


def downgrade() -> None:
    op.drop_column("accounts", "version")
