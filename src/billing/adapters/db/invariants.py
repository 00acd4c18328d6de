"""Ledger invariants, checked against the database (tests, `billing verify`, after benchmarks).

Expiry is counted explicitly, not written as ledger events: an expired bucket keeps its
remaining seconds, which count for nothing in the balance. So for every account,
sum(ledger seconds) == sum(remaining seconds over all its buckets, expired included),
and for every bucket, sum(its ledger seconds) == its remaining seconds. Holds reserve seconds
without moving them (domain/holds.py): the seconds an account's buckets hold equal what its open
holds have reserved and not committed, and its row counts exactly its open holds.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

_CHECKS = {
    "account ledger sum differs from its buckets": """
        SELECT coalesce(l.account_id, b.account_id) AS account_id, coalesce(l.s, 0) AS ledger, coalesce(b.s, 0) AS buckets
        FROM (SELECT account_id, sum(seconds) AS s FROM ledger_events {where} GROUP BY account_id) l
        FULL JOIN (SELECT account_id, sum(remaining_seconds) AS s FROM buckets {where} GROUP BY account_id) b
          ON l.account_id = b.account_id
        WHERE coalesce(l.s, 0) <> coalesce(b.s, 0)
    """,
    "bucket remaining differs from its ledger entries": """
        SELECT b.account_id, b.bucket_seq, b.remaining_seconds, coalesce(l.s, 0) AS ledger
        FROM buckets b
        LEFT JOIN (SELECT account_id, bucket_seq, sum(seconds) AS s FROM ledger_events {where}
                   GROUP BY account_id, bucket_seq) l
          ON l.account_id = b.account_id AND l.bucket_seq = b.bucket_seq
        WHERE coalesce(l.s, 0) <> b.remaining_seconds {and_where_b}
    """,
    "held seconds differ from the open holds' reservations": """
        SELECT coalesce(h.account_id, b.account_id) AS account_id, coalesce(h.s, 0) AS holds, coalesce(b.s, 0) AS buckets
        FROM (SELECT account_id, sum(held_seconds - committed_seconds) AS s FROM holds
              WHERE state = 'open' {and_where} GROUP BY account_id) h
        FULL JOIN (SELECT account_id, sum(held_seconds) AS s FROM buckets WHERE held_seconds > 0 {and_where}
                   GROUP BY account_id) b
          ON h.account_id = b.account_id
        WHERE coalesce(h.s, 0) <> coalesce(b.s, 0)
    """,
    "account's open hold count differs from its holds": """
        SELECT a.account_id, a.holds_open_count,
               (SELECT count(*) FROM holds h WHERE h.account_id = a.account_id AND h.state = 'open') AS open_holds
        FROM accounts a
        WHERE a.holds_open_count <> (SELECT count(*) FROM holds h WHERE h.account_id = a.account_id AND h.state = 'open')
           {and_where_a}
    """,
    "account counters behind its rows": """
        SELECT a.account_id FROM accounts a
        WHERE (a.last_event_seq < coalesce((SELECT max(event_seq) FROM ledger_events e WHERE e.account_id = a.account_id), 0)
            OR a.last_bucket_seq < coalesce((SELECT max(bucket_seq) FROM buckets b WHERE b.account_id = a.account_id), 0))
           {and_where_a}
    """,
}


async def find_violations(connection: AsyncConnection, account_id: str | None = None) -> list[str]:
    """Human-readable violations; empty when the ledger and the buckets agree."""
    params = {"account_id": account_id} if account_id else {}
    where = "WHERE account_id = :account_id" if account_id else ""
    violations = []
    for name, sql in _CHECKS.items():
        query = sql.format(
            where=where,
            and_where="AND account_id = :account_id" if account_id else "",
            and_where_b="AND b.account_id = :account_id" if account_id else "",
            and_where_a="AND a.account_id = :account_id" if account_id else "",
        )
        for row in (await connection.execute(text(query), params)).all():
            violations.append(f"{name}: {tuple(row)}")
    return violations


async def find_violations_in_database(database_url: str, account_id: str | None = None) -> list[str]:
    """find_violations on a database URL, with a short-lived engine of its own."""
    from billing.adapters.db.sqlalchemy_engine import create_engine

    engine = create_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as connection:
            return await find_violations(connection, account_id)
    finally:
        await engine.dispose()
