"""The outbox on PostgreSQL: events written in the change's own write (batched or not), numbered
per account without gaps, and a threshold crossed by many concurrent consumes announced once."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from billing.service.consume import consume
from billing.service.grants import create_grant
from billing.service.outbound_events import outbound_event_id

START = 1800 + 900


async def outbox(engine, account_id: str) -> list[tuple]:
    async with engine.connect() as connection:
        rows = await connection.execute(text(
            "SELECT seq, event_id, type, payload FROM outbound_events WHERE account_id = :a ORDER BY seq"),
            {"a": account_id})
        return [tuple(row) for row in rows]


async def test_sixty_four_concurrent_consumes_crossing_thresholds_announce_each_once(deps, engine, user_id, account):
    await consume(deps, user_id, "build", START - 700, "to-700")

    async def one(n: int) -> None:
        await consume(deps, user_id, "build", 10, f"c-{n}")

    await asyncio.gather(*(one(n) for n in range(64)))  # 700 -> 60: below 600, then below 120
    rows = await outbox(engine, user_id)
    lows = [row[3]["data"]["threshold_seconds"] for row in rows if row[2] == "balance.low"]
    assert lows == [600, 120]
    assert [row[0] for row in rows] == list(range(1, len(rows) + 1))
    assert all(row[1] == outbound_event_id(user_id, row[0]) and row[3]["id"] == row[1] for row in rows)


async def test_an_event_is_written_with_its_change_and_carries_the_ledger_row(deps, engine, user_id, account):
    await create_grant(deps, user_id, "gift", 120, "sorry", "g-1")
    rows = await outbox(engine, user_id)
    granted = [row[3] for row in rows if row[2] == "credit.granted"]
    assert granted[-1]["data"]["events"][0]["seconds"] == 120
    assert granted[-1]["data"]["totals"]["total_seconds"] == START + 120
    assert granted[-1]["user_id"] == user_id and granted[-1]["created_at"].endswith("Z")


async def test_credit_expiry_notices_on_postgres(deps, engine, user_id, account, seed_bucket, advance, assert_ledger_balanced):
    from datetime import timedelta

    from billing.domain.buckets import Source
    from billing.service.balance import get_balance
    from billing.service.idle_upkeep import upkeep_idle_accounts

    now = deps.clock.now()
    await seed_bucket(user_id, Source.PACKAGE, 500, now + timedelta(days=4))
    await get_balance(deps, user_id)
    advance(days=1, seconds=1)  # within three days of its expiry
    await get_balance(deps, user_id)
    advance(days=3)  # expired, untouched: `billing tick` loads it and announces it
    assert await upkeep_idle_accounts(deps) >= 1
    await get_balance(deps, user_id)
    rows = await outbox(engine, user_id)
    notices = [(row[2], row[3]["data"].get("seconds_at_risk", row[3]["data"].get("expired_seconds")))
               for row in rows if row[2].startswith("credit.exp")]
    assert notices == [("credit.expiring", 500), ("credit.expired", 500)]
    async with engine.connect() as connection:
        notice = (await connection.execute(text(
            "SELECT expiry_notice FROM buckets WHERE account_id = :a AND source = 'package'"), {"a": user_id})).scalar()
        due = (await connection.execute(text(
            "SELECT credit_notice_at FROM accounts WHERE account_id = :a"), {"a": user_id})).scalar()
    assert notice == 2 and due is None
    await assert_ledger_balanced(user_id)
