"""The outbox side of outbound events: each wallet change's events, numbered and shaped as sent.

Called by the change path just before a wallet is saved (service/wallet_change.py), so the rows
travel in the change's own write (the transaction, or the group-commit statement). The body is
fixed here, once: `{id, type, created_at, user_id, data}` with `data.totals` (the balance after the
change) and `data.events` (the ledger rows it reports, shaped as the history shows them); the
sender signs and sends these bytes, the same on every attempt.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from typing import Any

from billing.domain import outbound
from billing.domain.balance import BalanceTotals
from billing.domain.catalog import Catalog
from billing.domain.wallet import LedgerEntry, OutboxRow, Wallet

EVENT_ID_PREFIX = "evt_"


def record_outbound(wallet: Wallet, now: datetime, catalog: Catalog) -> None:
    totals = wallet.balance(now).totals
    account_id = wallet.account.account_id
    for event in outbound.derive(wallet, totals.total_seconds, catalog.alert_thresholds_seconds):
        seq = wallet.next_outbound_seq()
        event_id = outbound_event_id(account_id, seq)
        data = {**event.data, "totals": totals_json(totals), "events": [history_row_json(e) for e in event.entries]}
        payload = {"id": event_id, "type": event.type, "created_at": rfc3339(now), "user_id": account_id, "data": data}
        wallet.add_to_outbox(OutboxRow(seq, event_id, event.type, payload))


def outbound_event_id(account_id: str, seq: int) -> str:
    """Stable: the same event (account, number) always has the same id, the `webhook-id` header."""
    digest = hashlib.sha256(f"{account_id}\x00{seq}".encode()).digest()
    return EVENT_ID_PREFIX + base64.b32encode(digest[:15]).decode().lower()


def totals_json(totals: BalanceTotals) -> dict[str, Any]:
    return {
        "total_seconds": totals.total_seconds, "paid_seconds": totals.paid_seconds,
        "bonus_seconds": totals.bonus_seconds, "held_seconds": totals.held_seconds,
        "next_expiry_at": rfc3339(totals.next_expiry_at) if totals.next_expiry_at else None,
    }


def history_row_json(entry: LedgerEntry) -> dict[str, Any]:
    return {"type": entry.type, "seconds": entry.seconds, "reason": entry.reason,
            "timestamp": rfc3339(entry.occurred_at), "metadata": dict(entry.metadata)}


def rfc3339(instant: datetime) -> str:
    return instant.isoformat().replace("+00:00", "Z")
