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
