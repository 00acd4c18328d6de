"""Reading a wallet for a read path, with today's daily bonus materialized first."""

from __future__ import annotations

from datetime import datetime

from billing.domain.errors import AccountNotFound
from billing.domain.wallet import Wallet
from billing.service.dependencies import Dependencies


async def load_wallet_for_update(uow, user_id: str, now: datetime) -> Wallet:
    wallet = await uow.wallets.load(user_id, now, for_update=True)
    if wallet is None:
        raise AccountNotFound(f"no account for user_id {user_id!r}", field="user_id")
    return wallet


async def read_wallet(deps: Dependencies, user_id: str, now: datetime) -> Wallet:
    """A lock-free read; only the first read of a UTC day takes the lock, to grant the daily bonus."""
    async with deps.unit_of_work() as uow:
        wallet = await uow.wallets.load(user_id, now, for_update=False)
    if wallet is None:
        raise AccountNotFound(f"no account for user_id {user_id!r}", field="user_id")
    plan = deps.catalog.plan(wallet.account.plan_key)
    if wallet.daily_bonus_due_seconds(plan, now) == 0:
        return wallet
    async with deps.unit_of_work() as uow:
        wallet = await load_wallet_for_update(uow, user_id, now)
        wallet.grant_daily_bonus_if_due(plan, now)
        await uow.wallets.save(wallet, now)
        await uow.commit()
    return wallet
