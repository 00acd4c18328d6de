"""docs/scaling.md shows the distribution DDL that adapters/db/distribution.py builds, verbatim."""

from __future__ import annotations

import re
from pathlib import Path

from billing.adapters.db.distribution import distribution_ddl

SCALING_DOC = Path(__file__).resolve().parents[2] / "docs" / "scaling.md"


def test_the_documented_distribution_ddl_is_the_generated_one():
    blocks = re.findall(r"```sql\n(.*?)```", SCALING_DOC.read_text(), re.DOTALL)
    documented = [block for block in blocks if "create_distributed_table" in block]
    assert documented == ["\n".join(distribution_ddl()) + "\n"]


def test_reference_tables_come_before_the_distributed_tables_that_reference_them():
    ddl = distribution_ddl()
    last_reference = max(i for i, statement in enumerate(ddl) if "create_reference_table" in statement)
    first_distributed = min(i for i, statement in enumerate(ddl) if "create_distributed_table" in statement)
    assert last_reference < first_distributed
    assert ddl[first_distributed] == "SELECT create_distributed_table('accounts', 'account_id');"


def test_the_documented_placement_table_is_distribution_pys():
    from billing.adapters.db import distribution

    rows = dict(re.findall(r"^\| `(\w+_TABLES)` \| ([^|]*) \|", SCALING_DOC.read_text(), re.MULTILINE))
    for name in ("PER_ACCOUNT_TABLES", "REFERENCE_TABLES", "LOOKUP_TABLES", "LOCAL_ONLY_TABLES"):
        documented = {re.sub(r"\s*\(.*\)", "", table).strip() for table in rows[name].split(",")}
        assert documented == set(getattr(distribution, name)), name
