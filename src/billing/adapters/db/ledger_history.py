"""Read models over the ledger: event history pages and usage sums."""

from __future__ import annotations

from datetime import datetime

from billing.adapters.db.driver import Driver

from billing.domain.history import DailyOperationUsage, EventRow

# Newest first; the primary key (account_id, event_seq) serves it as a backward range scan.
# A rollover's outgoing leg (its seconds leaving the ended period's bucket) is bookkeeping,
# not an event of the account's history: the history shows the rollover credit alone.
EVENTS_PAGE = """
SELECT event_seq, type, seconds, reason, occurred_at, metadata
FROM ledger_events
WHERE account_id = %(account_id)s AND event_seq < %(before_event_seq)s
  AND NOT (type = 'rollover_created' AND seconds < 0)
ORDER BY event_seq DESC
LIMIT %(limit)s
"""

# Served by the partial index ledger_consumption_by_account_time.
CONSUMPTION_BY_DAY = """
SELECT (occurred_at AT TIME ZONE 'UTC')::date AS day, operation, sum(-seconds) AS seconds
FROM ledger_events
WHERE account_id = %(account_id)s AND type = 'consumption'
  AND occurred_at >= %(since)s AND occurred_at < %(until)s
GROUP BY 1, 2
"""

NO_UPPER_BOUND = 2**63 - 1


class PostgresLedgerHistory:
    def __init__(self, driver: Driver):
        self._driver = driver

    async def events_page(self, account_id: str, before_event_seq: int | None, limit: int) -> list[EventRow]:
        """Newest first; at most `limit` events with event_seq < before_event_seq."""
        params = {
            "account_id": account_id,
            "before_event_seq": NO_UPPER_BOUND if before_event_seq is None else before_event_seq,
            "limit": limit,
        }
        rows = await (await self._driver.execute(EVENTS_PAGE, params)).fetchall()
        return [EventRow(*row) for row in rows]

    async def rollover_bucket_of(self, account_id: str, period_bucket_seq: int) -> int | None:
        # A refund's lookup (rare): one account's rollover rows, on the ledger's primary key.
        cursor = await self._driver.execute(
            "SELECT bucket_seq FROM ledger_events WHERE account_id = %s AND type = 'rollover_created' "
            "AND seconds > 0 AND metadata->>'from_bucket_seq' = %s ORDER BY event_seq DESC LIMIT 1",
            (account_id, str(period_bucket_seq)),
        )
        row = await cursor.fetchone()
        return None if row is None else int(row[0])

    async def consumption_by_day(self, account_id: str, since: datetime, until: datetime) -> list[DailyOperationUsage]:
        params = {"account_id": account_id, "since": since, "until": until}
        rows = await (await self._driver.execute(CONSUMPTION_BY_DAY, params)).fetchall()
        return [DailyOperationUsage(day, operation, int(seconds)) for day, operation, seconds in rows]
