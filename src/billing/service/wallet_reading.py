"""The wallet for a read path (balance, batch check): lock-free, one statement."""

from __future__ import annotations

from datetime import datetime

from billing.domain.errors import AccountNotFound
from billing.domain.wallet import Wallet
from billing.service.daily_bonus import grant_daily_bonus
from billing.service.dependencies import Dependencies
from billing.service.wallet_change import WalletChange, change_wallet


async def read_wallet(deps: Dependencies, account_id: str, now: datetime) -> Wallet:
    """Only the first read of a UTC day writes: it grants the daily bonus, as a change."""
    async with deps.storage.reader() as uow:
        wallet, _ = await uow.wallets.read(account_id, now)
    if wallet is None:
        raise AccountNotFound(f"no account for user_id {account_id!r}", field="user_id")
    if wallet.daily_bonus_due_seconds(deps.catalog.plan(wallet.account.plan_key), now) == 0:
        return wallet
    return await change_wallet(deps, WalletChange(account_id, _unchanged, prepare=grant_daily_bonus(deps.catalog), repeatable=True))


def _unchanged(wallet: Wallet, now: datetime) -> Wallet:
    return wallet
