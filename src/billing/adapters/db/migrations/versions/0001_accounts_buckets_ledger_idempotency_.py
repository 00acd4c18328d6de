"""accounts, buckets, ledger, idempotency, resume tokens

Revision ID: 0001
Revises: 
Create Date: 2026-11-25 00:47:31.493597
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('accounts',
    sa.Column('account_id', sa.Text(), nullable=False),
    sa.Column('plan_key', sa.Text(), nullable=False),
    sa.Column('subscription_status', sa.Text(), nullable=False),
    sa.Column('created_at', postgresql.TIMESTAMP(timezone=True), nullable=False),
    sa.Column('updated_at', postgresql.TIMESTAMP(timezone=True), nullable=False),
    sa.Column('last_bucket_seq', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('last_event_seq', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('bonus_last_grant_on', sa.Date(), nullable=True),
    sa.Column('bonus_month', sa.Date(), nullable=True),
    sa.Column('bonus_used_seconds', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.CheckConstraint('bonus_used_seconds >= 0', name='accounts_bonus_used_nonnegative'),
    sa.PrimaryKeyConstraint('account_id', name='accounts_pkey')
    )
    op.create_table('idempotency_records',
    sa.Column('account_id', sa.Text(), nullable=False),
    sa.Column('idempotency_key', sa.Text(), nullable=False),
    sa.Column('request_fingerprint', sa.Text(), nullable=False),
    sa.Column('response', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_at', postgresql.TIMESTAMP(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('account_id', 'idempotency_key', name='idempotency_records_pkey')
    )
    op.create_table('resume_tokens',
    sa.Column('account_id', sa.Text(), nullable=False),
    sa.Column('token_sha256', sa.Text(), nullable=False),
    sa.Column('operation', sa.Text(), nullable=False),
    sa.Column('seconds', sa.Integer(), nullable=False),
    sa.Column('created_at', postgresql.TIMESTAMP(timezone=True), nullable=False),
    sa.Column('expires_at', postgresql.TIMESTAMP(timezone=True), nullable=False),
    sa.Column('used_at', postgresql.TIMESTAMP(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('account_id', 'token_sha256', name='resume_tokens_pkey')
    )
    op.create_table('buckets',
    sa.Column('account_id', sa.Text(), nullable=False),
    sa.Column('bucket_seq', sa.Integer(), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('granted_seconds', sa.Integer(), nullable=False),
    sa.Column('remaining_seconds', sa.Integer(), nullable=False),
    sa.Column('granted_at', postgresql.TIMESTAMP(timezone=True), nullable=False),
    sa.Column('expires_at', postgresql.TIMESTAMP(timezone=True), nullable=True),
    sa.CheckConstraint("source IN ('daily','subscription','rollover','package','welcome','gift')", name='buckets_source_known'),
    sa.CheckConstraint('remaining_seconds >= 0 AND remaining_seconds <= granted_seconds', name='buckets_remaining_in_range'),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.account_id'], name='buckets_account_fkey'),
    sa.PrimaryKeyConstraint('account_id', 'bucket_seq', name='buckets_pkey')
    )
    op.create_index('buckets_live_by_account', 'buckets', ['account_id', 'expires_at'], unique=False, postgresql_where=sa.text('remaining_seconds > 0'))
    op.create_table('ledger_events',
    sa.Column('account_id', sa.Text(), nullable=False),
    sa.Column('event_seq', sa.BigInteger(), nullable=False),
    sa.Column('type', sa.Text(), nullable=False),
    sa.Column('seconds', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('bucket_seq', sa.Integer(), nullable=False),
    sa.Column('operation', sa.Text(), nullable=True),
    sa.Column('occurred_at', postgresql.TIMESTAMP(timezone=True), nullable=False),
    sa.Column('metadata', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.CheckConstraint('seconds <> 0', name='ledger_events_seconds_nonzero'),
    sa.ForeignKeyConstraint(['account_id', 'bucket_seq'], ['buckets.account_id', 'buckets.bucket_seq'], name='ledger_events_bucket_fkey'),
    sa.PrimaryKeyConstraint('account_id', 'event_seq', name='ledger_events_pkey')
    )
    op.create_index('ledger_consumption_by_account_time', 'ledger_events', ['account_id', 'occurred_at'], unique=False, postgresql_where=sa.text("type = 'consumption'"))


def downgrade() -> None:
    op.drop_index('ledger_consumption_by_account_time', table_name='ledger_events', postgresql_where=sa.text("type = 'consumption'"))
    op.drop_table('ledger_events')
    op.drop_index('buckets_live_by_account', table_name='buckets', postgresql_where=sa.text('remaining_seconds > 0'))
    op.drop_table('buckets')
    op.drop_table('resume_tokens')
    op.drop_table('idempotency_records')
    op.drop_table('accounts')
