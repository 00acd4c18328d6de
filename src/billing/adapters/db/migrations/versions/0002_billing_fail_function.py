"""billing_fail(): lets a statement assert its own effect and abort its transaction

Revision ID: 0002
Revises: 0001
"""
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION billing_fail(message text) RETURNS text
        LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
          RAISE EXCEPTION USING MESSAGE = message, ERRCODE = 'P0001';
        END
        $$
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION billing_fail(text)")
