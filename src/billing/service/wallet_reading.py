"""The wallet for a read path (balance, batch check): lock-free, one statement."""

from __future__ import annotations

from datetime import datetime

from billing.domain.errors import AccountNotFound
from billing.domain.wallet import Wallet
from billing.service.upkeep import account_upkeep, upkeep_due
from billing.service.dependencies import Dependencies
from billing.service.wallet_change import WalletChange, change_wallet


async def read_wallet(deps: Dependencies, account_id: str, now: datetime) -> Wallet:
    """Only a read that finds upkeep due writes (the first of a UTC day grants the daily bonus;
    the first after a period's end rolls it over), as a change."""
    async with deps.storage.reader() as uow:
        wallet, _ = await uow.wallets.read(account_id, now)
    if wallet is None:
        raise AccountNotFound(f"no account for user_id {account_id!r}", field="user_id")
    if not upkeep_due(wallet, deps.catalog, now):
        return wallet
    return await change_wallet(deps, WalletChange(account_id, _unchanged, prepare=account_upkeep(deps.catalog), repeatable=True))


def _unchanged(wallet: Wallet, now: datetime) -> Wallet:
    return wallet
