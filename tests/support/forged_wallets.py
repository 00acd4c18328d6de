"""Wallets that disagree with the database, to prove the write statement's self-checks."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from billing.domain.wallet import Wallet


def overdrawn(wallet: Wallet, now: datetime) -> Wallet:
    """The wallet with every bucket inflated by 100 s beyond what is stored, all of it consumed:
    its write debits more than the database holds."""
    inflated = [
        dataclasses.replace(b, remaining_seconds=b.granted_seconds + 100, granted_seconds=b.granted_seconds + 100)
        for b in wallet.buckets
    ]
    forged = Wallet(wallet.account, inflated)
    forged.consume("build", sum(b.remaining_seconds for b in inflated), now)
    return forged
