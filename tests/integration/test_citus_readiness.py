"""What a sharded PostgreSQL (Citus, distributed by account_id) needs of the schema, read from the
catalog of a database migrated to head: every table is placed (adapters/db/distribution.py), every
key of a distributed table can be enforced per shard, foreign keys stay within an account's shard
or point at reference tables, and no global sequence numbers rows. No Citus here: this checks the
schema against Citus's documented rules, not against Citus."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import text

from billing.adapters.db.distribution import (
    COLOCATION_ANCHOR, DISTRIBUTION_COLUMN, LOOKUP_TABLES, PER_ACCOUNT_TABLES, REFERENCE_TABLES,
    every_placed_table,
)

# Every primary key, unique constraint and unique index (with its key columns in order; an
# expression column is NULL) of the public schema.
UNIQUE_KEYS = text("""
SELECT c.relname AS table_name, i.relname AS index_name, x.indisprimary AS is_primary,
       ARRAY(SELECT a.attname::text FROM unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
             LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
             WHERE k.n <= x.indnkeyatts ORDER BY k.n) AS key_columns
FROM pg_index x
JOIN pg_class c ON c.oid = x.indrelid
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_namespace s ON s.oid = c.relnamespace
WHERE s.nspname = 'public' AND x.indisunique
""")

FOREIGN_KEYS = text("""
SELECT con.conname, src.relname AS from_table, dst.relname AS to_table,
       ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, n)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum ORDER BY k.n) AS from_columns,
       ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, n)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum ORDER BY k.n) AS to_columns
FROM pg_constraint con
JOIN pg_class src ON src.oid = con.conrelid
JOIN pg_class dst ON dst.oid = con.confrelid
JOIN pg_namespace s ON s.oid = src.relnamespace
WHERE s.nspname = 'public' AND con.contype = 'f'
""")

# Columns numbered by a sequence (serial, identity, or a nextval default).
SEQUENCE_COLUMNS = text("""
SELECT c.relname, a.attname
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace s ON s.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE s.nspname = 'public' AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
  AND (a.attidentity <> '' OR pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%%')
""")


async def _rows(engine, query):
    async with engine.connect() as connection:
        return (await connection.execute(query)).mappings().all()


async def _tables(engine) -> set[str]:
    rows = await _rows(engine, text(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace "
        "WHERE s.nspname = 'public' AND c.relkind IN ('r', 'p')"))
    return {row["relname"] for row in rows}


def test_every_table_is_placed_once():
    counts = Counter(every_placed_table())
    assert [table for table, count in counts.items() if count > 1] == []
    assert PER_ACCOUNT_TABLES[0] == COLOCATION_ANCHOR


async def test_every_table_of_the_migrated_schema_is_placed_and_nothing_else_is(engine):
    """A new table fails here until distribution.py says where it goes."""
    tables = await _tables(engine)
    assert sorted(tables - set(every_placed_table())) == [], "tables in no list of adapters/db/distribution.py"
    assert sorted(set(every_placed_table()) - tables) == [], "listed in distribution.py but not in the schema"


async def test_every_per_account_table_leads_each_key_with_account_id(engine):
    """Citus enforces a primary key or unique index on a distributed table only if it includes the
    distribution column; leading with it also keeps an account's rows in one index range."""
    keys = [row for row in await _rows(engine, UNIQUE_KEYS) if row["table_name"] in PER_ACCOUNT_TABLES]
    offending = [(k["table_name"], k["index_name"], k["key_columns"]) for k in keys
                 if k["key_columns"][0] != DISTRIBUTION_COLUMN]
    assert offending == []
    with_primary_key = {k["table_name"] for k in keys if k["is_primary"]}
    assert sorted(set(PER_ACCOUNT_TABLES) - with_primary_key) == []


async def test_every_lookup_table_keys_on_its_distribution_column(engine):
    keys = [row for row in await _rows(engine, UNIQUE_KEYS) if row["table_name"] in LOOKUP_TABLES]
    offending = [(k["table_name"], k["index_name"]) for k in keys
                 if k["key_columns"][0] != LOOKUP_TABLES[k["table_name"]]]
    assert offending == []
    assert {k["table_name"] for k in keys if k["is_primary"]} == set(LOOKUP_TABLES)


async def test_foreign_keys_stay_on_an_accounts_shard_or_point_at_reference_tables(engine):
    """Citus keeps a foreign key between two distributed tables only when both are colocated and it
    maps the distribution column to the distribution column; from a distributed table to a reference
    table always; from a reference table only to another reference table. Per-account tables are
    listed in foreign-key order (Citus needs the referenced table distributed first)."""
    position = {table: i for i, table in enumerate(PER_ACCOUNT_TABLES)}
    problems = []
    for fk in await _rows(engine, FOREIGN_KEYS):
        source, target = fk["from_table"], fk["to_table"]
        if source in PER_ACCOUNT_TABLES and target in PER_ACCOUNT_TABLES:
            pairs = list(zip(fk["from_columns"], fk["to_columns"]))
            if (DISTRIBUTION_COLUMN, DISTRIBUTION_COLUMN) not in pairs:
                problems.append((fk["conname"], "does not map account_id to account_id"))
            if position[target] >= position[source]:
                problems.append((fk["conname"], f"{target} must come before {source} in PER_ACCOUNT_TABLES"))
        elif source in PER_ACCOUNT_TABLES and target in REFERENCE_TABLES:
            continue
        elif source in REFERENCE_TABLES and target in REFERENCE_TABLES:
            continue
        else:
            problems.append((fk["conname"], f"{source} -> {target} cannot be kept on Citus"))
    assert problems == []


async def test_no_row_is_numbered_by_a_sequence(engine):
    """Per-account counters (accounts.last_event_seq, last_bucket_seq, last_outbound_seq) number an
    account's rows under its row lock: a global sequence would be a round trip to the coordinator
    (or per-node ranges) on every insert."""
    assert [tuple(row.values()) for row in await _rows(engine, SEQUENCE_COLUMNS)] == []

