"""The operator console's reads (issue 23): indexes for its lookups, and the service-wide records
its health, activity and operations panels read.

accounts_id_prefix: account ids in byte order (COLLATE "C"), so a user id prefix is one range
whatever the database's collation (a linguistic one does not keep a prefix's ids together); built
CONCURRENTLY, so Consume's account updates go on while it builds.
No index on the ledger: its pages, running sums and filters read the primary key's range of one
account (a covering index was measured and dropped: one more index entry per consumed ledger row,
every Consume, for an operator's page that is well under its 300 ms without it; docs/decisions.md).
payment_profiles_by_subscription: a Stripe subscription id to its account (the search).
api_keys_by_user: the keys issued for one user (the account page), newest first.
webhook_events_kept: the Stripe deliveries kept for an operator (the health panel counts them).
Service-wide (not per account, so not keyed by account_id): replica_heartbeats (each server
process every ~10 s), service_activity (per UTC hour and replica, counters added by each flush),
job_runs (the last `billing tick`), migration_runs (each `billing migrate-legacy` run).

Revision ID: 0013
Revises: 0012
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, TIMESTAMP

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

TIMESTAMPTZ = TIMESTAMP(timezone=True)
KEPT_FOR_AN_OPERATOR = "outcome <> 'processed' AND (payload IS NOT NULL OR payload_text IS NOT NULL)"


def upgrade() -> None:
    # Built CONCURRENTLY (outside a transaction: the block commits what came before): a plain build
    # blocks every write to accounts, so every Consume, for the build's length (1M accounts).
    # A concurrent build that failed leaves an INVALID index of this name: it is dropped and built
    # again, so running the migration again repairs it.
    with op.get_context().autocommit_block():
        op.drop_index("accounts_id_prefix", "accounts", postgresql_concurrently=True, if_exists=True)
        op.create_index("accounts_id_prefix", "accounts", [sa.text('account_id COLLATE "C"')],
                        postgresql_concurrently=True)
    op.create_index("payment_profiles_by_subscription", "payment_profiles", ["subscription_id"],
                    postgresql_where=sa.text("subscription_id IS NOT NULL"))
    op.create_index("api_keys_by_user", "api_keys", ["user_id", "created_at"],
                    postgresql_where=sa.text("user_id IS NOT NULL"))
    op.create_index("webhook_events_kept", "webhook_events", ["received_at"],
                    postgresql_where=sa.text(KEPT_FOR_AN_OPERATOR))
    op.create_table(
        "replica_heartbeats",
        sa.Column("replica_id", sa.Text, nullable=False),
        sa.Column("host", sa.Text, nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("started_at", TIMESTAMPTZ, nullable=False),
        sa.Column("seen_at", TIMESTAMPTZ, nullable=False),
        sa.PrimaryKeyConstraint("replica_id", name="replica_heartbeats_pkey"),
    )
    op.create_index("replica_heartbeats_seen", "replica_heartbeats", ["seen_at"])
    op.create_table(
        "service_activity",
        sa.Column("hour_at", TIMESTAMPTZ, nullable=False),
        sa.Column("replica_id", sa.Text, nullable=False),
        sa.Column("consumed_seconds", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("consumes", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("refusals", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("topups_succeeded", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("topups_failed", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("webhooks_delivered", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("webhooks_failed", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.PrimaryKeyConstraint("hour_at", "replica_id", name="service_activity_pkey"),
    )
    op.create_table(
        "job_runs",
        sa.Column("job", sa.Text, nullable=False),
        sa.Column("started_at", TIMESTAMPTZ, nullable=False),
        sa.Column("finished_at", TIMESTAMPTZ, nullable=False),
        sa.Column("accounts_touched", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("job", name="job_runs_pkey"),
    )
    op.create_table(
        "migration_runs",
        sa.Column("run_id", sa.Text, nullable=False),
        sa.Column("source_file", sa.Text, nullable=False),
        sa.Column("started_at", TIMESTAMPTZ, nullable=False),
        sa.Column("finished_at", TIMESTAMPTZ, nullable=True),
        sa.Column("rows_read", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("accounts_migrated", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("accounts_skipped", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("bad_lines", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("bad_line_samples", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.PrimaryKeyConstraint("run_id", name="migration_runs_pkey"),
    )
    op.create_index("migration_runs_by_start", "migration_runs", ["started_at", "run_id"])


def downgrade() -> None:
    op.drop_table("migration_runs")
    op.drop_table("job_runs")
    op.drop_table("service_activity")
    op.drop_table("replica_heartbeats")
    op.drop_index("webhook_events_kept", "webhook_events")
    op.drop_index("api_keys_by_user", "api_keys")
    op.drop_index("payment_profiles_by_subscription", "payment_profiles")
    op.drop_index("accounts_id_prefix", "accounts")
