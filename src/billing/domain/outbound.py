"""Outbound events: what a wallet change tells the app, derived from the change itself.

`derive` reads what one change did to a wallet (its new ledger entries, the account as loaded and
as changed, the domain events it recorded, the balance after it) and returns the events to send,
in order. It runs on every change inside the change's own transaction (service/wallet_change.py),
so an event is written exactly when its change commits: none lost, none invented. Each event
carries the ledger rows it reports; the caller adds the totals and numbers them per account.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from billing.domain.alerts import DEFAULT_THRESHOLDS_SECONDS, AlertState, crossings, level_of
from billing.domain.events import CreditExpired, CreditExpiring, HoldExpired
from billing.domain.outbound_types import EVENT_TYPES  # noqa: F401 - the catalogue, re-exported
from billing.domain.wallet import Account, EventType, LedgerEntry, Wallet


_CREDIT_TYPES = frozenset({
    EventType.SUBSCRIPTION_CREDIT, EventType.PACKAGE_CREDIT, EventType.ROLLOVER_CREATED, EventType.ADJUSTMENT,
})
ACTIVE, CANCELED, PAST_DUE = "active", "canceled", "past_due"
RENEWAL_REASONS = frozenset({"subscription_cycle"})


@dataclass(frozen=True)
class Outbound:
    type: str
    entries: tuple[LedgerEntry, ...] = ()
    data: Mapping[str, Any] = field(default_factory=dict)


def derive(wallet: Wallet, available_seconds: int, default_thresholds: tuple[int, ...] | None = None) -> list[Outbound]:
    """The events of the change made to `wallet` so far; updates the account's alert state."""
    before, after = wallet.loaded_account, wallet.account
    events: list[Outbound] = []
    events += _ledger_events(wallet.new_entries)
    events += _subscription_events(before, after, wallet.new_entries)
    events += _topup_events(before, after)
    events += [
        Outbound("credit.expiring" if isinstance(e, CreditExpiring) else "credit.expired", (), {
            "source": e.source, "bucket_seq": e.bucket_seq,
            "seconds_at_risk" if isinstance(e, CreditExpiring) else "expired_seconds": e.seconds,
            "expires_at": e.expires_at.isoformat().replace("+00:00", "Z")})
        for e in wallet.events if isinstance(e, (CreditExpiring, CreditExpired))
    ]
    events += [
        Outbound("hold.expired", (), {"hold_id": e.hold_id, "committed_seconds": e.committed_seconds,
                                      "released_seconds": e.released_seconds})
        for e in wallet.events if isinstance(e, HoldExpired)
    ]
    events += _balance_events(wallet, available_seconds, default_thresholds or DEFAULT_THRESHOLDS_SECONDS)
    return events


def _ledger_events(entries: list[LedgerEntry]) -> list[Outbound]:
    events = []
    refunds = [e for e in entries if e.type == EventType.ADJUSTMENT and e.seconds < 0 and "refund_of" in e.metadata]
    for entry in entries:
        if entry.type in _CREDIT_TYPES and entry.seconds > 0:
            events.append(Outbound("credit.granted", (entry,), {"source": entry.metadata.get("source")}))
            if entry.type == EventType.PACKAGE_CREDIT and entry.metadata.get("auto_topup_seq") is not None:
                events.append(Outbound("topup.succeeded", (entry,), {"package_key": entry.metadata.get("package_key")}))
        elif entry.type == EventType.ROLLOVER_DISCARD_PENDING:
            events.append(Outbound("credit.expiring", (entry,), {
                "expires_at": entry.metadata.get("expires_at"), "seconds_at_risk": entry.metadata.get("seconds_at_risk")}))
        elif entry.type == EventType.ROLLOVER_DISCARD:
            events.append(Outbound("credit.expired", (entry,), {"expired_seconds": -entry.seconds}))
    if refunds:
        events.append(Outbound("refund.applied", tuple(refunds), {
            "payment_id": refunds[0].metadata["refund_of"], "removed_seconds": -sum(e.seconds for e in refunds)}))
    return events


def _subscription_events(before: Account, after: Account, entries: list[LedgerEntry]) -> list[Outbound]:
    events = []
    plans = {"plan_key": after.plan_key, "previous_plan_key": before.plan_key}
    if after.subscription_status != before.subscription_status:
        if after.subscription_status == ACTIVE:
            events.append(Outbound("subscription.activated", (), plans))
        elif after.subscription_status == CANCELED:
            events.append(Outbound("subscription.canceled", (), {**plans, "at_period_end": False}))
        elif after.subscription_status == PAST_DUE:
            events.append(Outbound("subscription.past_due", (), plans))
    elif after.subscription_status == ACTIVE and after.plan_key != before.plan_key:
        events.append(Outbound("subscription.changed", (), plans))
    if after.subscription.cancel_at_period_end and not before.subscription.cancel_at_period_end \
            and after.subscription_status != CANCELED:
        events.append(Outbound("subscription.canceled", (), {**plans, "at_period_end": True}))
    renewals = tuple(e for e in entries if e.type == EventType.SUBSCRIPTION_CREDIT
                     and e.metadata.get("billing_reason") in RENEWAL_REASONS)
    if renewals:
        events.append(Outbound("subscription.renewed", renewals, plans))
    return events


def _topup_events(before: Account, after: Account) -> list[Outbound]:
    was, now = before.auto_topup, after.auto_topup
    events = []
    if now.failures > was.failures:
        events.append(Outbound("topup.failed", (), {
            "failures": now.failures, "last_failure": now.last_failure,
            "retry_at": now.retry_at.isoformat().replace("+00:00", "Z") if now.retry_at else None}))
    if was.enabled and not now.enabled:
        events.append(Outbound("topup.disabled", (), {"last_failure": now.last_failure}))
    return events


def _balance_events(wallet: Wallet, available_seconds: int, default_thresholds: tuple[int, ...]) -> list[Outbound]:
    """Crossings are judged against the thresholds the account had when the change began: a change
    that also sets new thresholds (service/alert_thresholds.py) still announces what its own upkeep
    crossed (a package expiring, say), and only then moves the state to the new thresholds, silently:
    the owner just chose them, and the next crossing from there is announced."""
    alerts = wallet.account.alerts
    thresholds_then = _thresholds(wallet.loaded_account.alerts, default_thresholds)
    found = crossings(alerts.below_seconds, level_of(available_seconds, thresholds_then), thresholds_then)
    level = level_of(available_seconds, _thresholds(alerts, default_thresholds))
    if level != alerts.below_seconds:
        wallet.account = dataclasses.replace(wallet.account, alerts=dataclasses.replace(alerts, below_seconds=level))
    return [
        Outbound(c.type, (), {"threshold_seconds": c.threshold_seconds} if c.threshold_seconds is not None else {})
        for c in found
    ]


def _thresholds(alerts: AlertState, default_thresholds: tuple[int, ...]) -> tuple[int, ...]:
    return alerts.thresholds_seconds if alerts.thresholds_seconds is not None else default_thresholds
