"""auto top-up: the account's setting and the state of its current attempt; the
auto_topup_triggered notice changes no bucket (seconds 0), like rollover_discard_pending.

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import TIMESTAMP

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TIMESTAMPTZ = TIMESTAMP(timezone=True)
NOTICES = "('rollover_discard_pending','auto_topup_triggered')"


def upgrade() -> None:
    op.add_column("accounts", sa.Column("topup_enabled", sa.Boolean, nullable=False, server_default=sa.text("false")))
    op.add_column("accounts", sa.Column("topup_threshold_seconds", sa.Integer, nullable=False, server_default=sa.text("0")))
    op.add_column("accounts", sa.Column("topup_package_key", sa.Text, nullable=True))
    op.add_column("accounts", sa.Column("topup_currency", sa.Text, nullable=True))
    op.add_column("accounts", sa.Column("topup_seq", sa.Integer, nullable=False, server_default=sa.text("0")))
    op.add_column("accounts", sa.Column("topup_pending_since", TIMESTAMPTZ, nullable=True))
    op.add_column("accounts", sa.Column("topup_failures", sa.Integer, nullable=False, server_default=sa.text("0")))
    op.add_column("accounts", sa.Column("topup_retry_at", TIMESTAMPTZ, nullable=True))
    op.add_column("accounts", sa.Column("topup_last_failure", sa.Text, nullable=True))
    # `billing tick` finds attempts to resend or retry.
    op.create_index(
        "accounts_topup_waiting", "accounts", ["account_id"],
        postgresql_where=sa.text("topup_pending_since IS NOT NULL OR topup_retry_at IS NOT NULL"),
    )
    op.drop_constraint("ledger_events_seconds_nonzero", "ledger_events", type_="check")
    op.create_check_constraint("ledger_events_seconds_nonzero", "ledger_events", f"seconds <> 0 OR type IN {NOTICES}")


def downgrade() -> None:
    op.drop_constraint("ledger_events_seconds_nonzero", "ledger_events", type_="check")
    op.create_check_constraint(
        "ledger_events_seconds_nonzero", "ledger_events", "seconds <> 0 OR type = 'rollover_discard_pending'"
    )
    op.drop_index("accounts_topup_waiting", table_name="accounts")
    for column in (
        "topup_last_failure", "topup_retry_at", "topup_failures", "topup_pending_since", "topup_seq",
        "topup_currency", "topup_package_key", "topup_threshold_seconds", "topup_enabled",
    ):
        op.drop_column("accounts", column)
