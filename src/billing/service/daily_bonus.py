"""Today's daily bonus, materialized on the first touch of a UTC day (a read or a change)."""

from __future__ import annotations

from datetime import datetime
from typing import Callable

from billing.domain.catalog import Catalog
from billing.domain.wallet import Wallet


def grant_daily_bonus(catalog: Catalog) -> Callable[[Wallet, datetime], None]:
    """A WalletChange `prepare` step: grants today's bonus of the account's plan when due."""

    def grant(wallet: Wallet, now: datetime) -> None:
        wallet.grant_daily_bonus_if_due(catalog.plan(wallet.account.plan_key), now)

    return grant
