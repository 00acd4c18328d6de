"""Balance alert thresholds of one account: read, and set (domain/alerts.py).

Setting them is a wallet change (the thresholds live on the account row, read with every change
that may cross one). What the change's own upkeep crossed is announced against the thresholds the
account had; then its alert state moves to the new ones without announcing anything: the owner just
chose them, and the next crossing from there is announced (domain/outbound.py _balance_events).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from billing.domain.alerts import AlertState, require_thresholds
from billing.domain.errors import InvalidArgument
from billing.domain.limits import require_account_id
from billing.domain.wallet import Wallet
from billing.service.dependencies import Dependencies
from billing.service.upkeep import account_upkeep
from billing.service.wallet_change import WalletChange, change_wallet
from billing.service.wallet_reading import read_wallet


@dataclass(frozen=True)
class Thresholds:
    user_id: str
    thresholds_seconds: tuple[int, ...]
    is_default: bool


async def get_alert_thresholds(deps: Dependencies, account_id: str) -> Thresholds:
    require_account_id(account_id)
    wallet = await read_wallet(deps, account_id, deps.clock.now())
    return _thresholds(deps, wallet.account.account_id, wallet.account.alerts)


async def set_alert_thresholds(
    deps: Dependencies, account_id: str, thresholds_seconds: list[int], use_default: bool = False,
) -> Thresholds:
    require_account_id(account_id)
    if use_default and thresholds_seconds:
        raise InvalidArgument("use_default takes no thresholds_seconds", field="thresholds_seconds")
    chosen = None if use_default else require_thresholds(thresholds_seconds)

    def set_them(wallet: Wallet, now: datetime) -> Thresholds:
        alerts = dataclasses.replace(wallet.account.alerts, thresholds_seconds=chosen)
        wallet.account = dataclasses.replace(wallet.account, alerts=alerts)
        return _thresholds(deps, account_id, alerts)

    # Setting the same thresholds again changes nothing: the change is its own idempotency.
    return await change_wallet(deps, WalletChange(account_id, set_them, prepare=account_upkeep(deps.catalog),
                                                  repeatable=True))


def _thresholds(deps: Dependencies, account_id: str, alerts: AlertState) -> Thresholds:
    if alerts.thresholds_seconds is None:
        return Thresholds(account_id, deps.catalog.alert_thresholds_seconds, True)
    return Thresholds(account_id, alerts.thresholds_seconds, False)
