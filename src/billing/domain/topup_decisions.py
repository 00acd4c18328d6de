"""Auto top-up decisions on a wallet, inside a wallet change (the rules and the setting are in
auto_topup.py, which knows nothing of wallets)."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from billing.domain.auto_topup import (
    GIVE_UP_PENDING_AFTER, ATTEMPTS_MAX, REQUIRES_ACTION, RESEND_PENDING_AFTER, RETRY_DELAYS, attempt_due,
)
from billing.domain.events import TopupDue
from billing.domain.wallet import EventType, Wallet


def decide(wallet: Wallet, now: datetime, package_minutes: int) -> TopupDue | None:
    """Called inside a wallet change: marks the decision (and its notice) on the wallet, and
    records TopupDue for after its commit."""
    topup = wallet.account.auto_topup
    if not topup.enabled:
        return None  # before the balance: every consume asks
    live = wallet.balance(now).totals.total_seconds
    due = attempt_due(topup, live, now)
    if due is None or wallet.account.last_bucket_seq == 0:
        return None
    assert topup.package_key is not None and topup.currency is not None
    if due == "resend":
        assert topup.pending_since is not None
        if now - topup.pending_since >= GIVE_UP_PENDING_AFTER:
            record_failure(wallet, now, "no_outcome")
            return None
        wallet.change_auto_topup(dataclasses.replace(topup, retry_at=now + RESEND_PENDING_AFTER))
        return _due(wallet, TopupDue(wallet.account.account_id, topup.seq, topup.package_key, topup.currency, resend=True))
    seq = topup.seq + 1
    wallet.change_auto_topup(dataclasses.replace(topup, seq=seq, pending_since=now, retry_at=None))
    wallet.notice(
        EventType.AUTO_TOPUP_TRIGGERED, f"Auto top-up: buying the {topup.package_key} package",
        wallet.account.last_bucket_seq, now,
        {"topup_seq": seq, "package_key": topup.package_key, "package_minutes": package_minutes,
         "currency": topup.currency, "threshold_seconds": topup.threshold_seconds, "balance_seconds": live},
    )
    return _due(wallet, TopupDue(wallet.account.account_id, seq, topup.package_key, topup.currency, resend=False))


def _due(wallet: Wallet, due: TopupDue) -> TopupDue:
    wallet.record(due)
    return due


def record_failure(wallet: Wallet, now: datetime, code: str) -> bool:
    """A failed attempt: retried later with backoff, or (after ATTEMPTS_MAX, or when the customer
    must act) auto top-up stops. Returns True when it turned itself off."""
    topup = wallet.account.auto_topup
    failures = topup.failures + 1
    gives_up = failures >= ATTEMPTS_MAX
    retry_at = None if gives_up or code == REQUIRES_ACTION else now + RETRY_DELAYS[failures - 1]
    wallet.change_auto_topup(dataclasses.replace(
        topup, pending_since=None, failures=failures, retry_at=retry_at, last_failure=code,
        enabled=topup.enabled and not gives_up,
    ))
    if gives_up and wallet.account.last_bucket_seq > 0:
        wallet.notice(
            EventType.AUTO_TOPUP_TRIGGERED, f"Auto top-up turned off after {failures} failed payments",
            wallet.account.last_bucket_seq, now, {"topup_seq": topup.seq, "disabled": True, "last_failure": code},
        )
    return gives_up


def record_success(wallet: Wallet, seq: int) -> None:
    """The attempt's payment was credited: no longer pending, failures forgotten."""
    topup = wallet.account.auto_topup
    if seq != topup.seq:
        return  # an older attempt's late credit: the pending one is another
    wallet.change_auto_topup(dataclasses.replace(topup, pending_since=None, failures=0, retry_at=None, last_failure=None))
