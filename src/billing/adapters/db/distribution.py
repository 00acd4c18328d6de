"""How each table would be placed on a sharded PostgreSQL (Citus): the one list of it.

Every table of the schema is in exactly one of the lists below; tests/integration/
test_citus_readiness.py reads the migrated catalog and fails on a table in none (a new table
must be placed) and on a key a distributed table could not keep. docs/scaling.md shows the DDL
`distribution_ddl()` builds from these lists. Nothing here runs against the database: this
service runs on plain PostgreSQL, and no Citus was available to try it on.
"""

from __future__ import annotations

DISTRIBUTION_COLUMN = "account_id"
COLOCATION_ANCHOR = "accounts"

# Distributed by account_id, all in the colocation group of `accounts`: an account's rows live on
# one shard, so a statement or transaction about one account runs on one node. In an order where
# a table's foreign keys name only tables before it (Citus distributes the referenced table first).
PER_ACCOUNT_TABLES: tuple[str, ...] = (
    "accounts",
    "buckets",
    "ledger_events",
    "idempotency_records",
    "resume_tokens",
    "payments",
    "payment_profiles",
    "plan_changes",
    "holds",
    "legacy_migrations",
    "outbound_events",
    "webhook_deliveries",
    "webhook_attempts",
)

# Replicated to every node (create_reference_table): small, written by operators or processes at
# human or per-minute rates, read anywhere (a per-account statement may join them on its shard).
# A write reaches every node in one distributed transaction, so it needs every node up.
REFERENCE_TABLES: tuple[str, ...] = (
    "api_keys",  # a handful of service/admin keys plus user keys; no account_id (user_id is not the key)
    "console_logins",  # one-time codes naming an api key (foreign key to api_keys: reference to reference)
    "webhook_endpoints",  # an app has a handful; webhook_deliveries (per account) references them
    # Operator actions and refunds: one row per human action. Their idempotency key is unique over the
    # whole table by design (a key names one operator request whatever account it names: decisions.md,
    # issues 23/24), which a table distributed by account_id cannot enforce; a reference table can.
    "audit_entries",
    "refund_intents",
    # Service-wide records, keyed by replica, hour, job or run, written by processes, not requests.
    "replica_heartbeats",
    "service_activity",
    "job_runs",
    "migration_runs",
)

# Distributed by their own key, in no colocation group: lookups from a provider's id to the account
# it belongs to, and the Stripe inbox. Written once per payment or webhook (the Stripe webhook path,
# not a hot path); such a transaction then touches two shards (a distributed transaction).
LOOKUP_TABLES: dict[str, str] = {
    "payment_customers": "customer_id",
    "payment_owners": "payment_id",
    "webhook_events": "event_id",
}

# Left on the coordinator as plain tables: Alembic's bookkeeping (migrations run through the coordinator).
LOCAL_ONLY_TABLES: tuple[str, ...] = ("alembic_version",)


def every_placed_table() -> list[str]:
    return [*PER_ACCOUNT_TABLES, *REFERENCE_TABLES, *LOOKUP_TABLES, *LOCAL_ONLY_TABLES]


def distribution_ddl() -> list[str]:
    """The statements that distribute a migrated database on Citus, in the order they must run:
    reference tables first (distributed tables hold foreign keys to them), then `accounts`, then
    the rest of its colocation group in foreign-key order, then the lookups."""
    statements = [f"SELECT create_reference_table('{table}');" for table in REFERENCE_TABLES]
    anchor, *colocated = PER_ACCOUNT_TABLES
    statements.append(f"SELECT create_distributed_table('{anchor}', '{DISTRIBUTION_COLUMN}');")
    statements += [
        f"SELECT create_distributed_table('{table}', '{DISTRIBUTION_COLUMN}', colocate_with => '{anchor}');"
        for table in colocated
    ]
    statements += [
        f"SELECT create_distributed_table('{table}', '{column}', colocate_with => 'none');"
        for table, column in LOOKUP_TABLES.items()
    ]
    return statements
