"""Loading wallets for the use cases: locked, optimistic, or for a read path."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from billing.domain.idempotency import StoredAnswer
from billing.domain.errors import AccountNotFound, IdempotencyKeyReused
from billing.domain.wallet import Wallet
from billing.service.dependencies import Dependencies


async def load_wallet_for_update(uow, user_id: str, now: datetime) -> Wallet:
    wallet, _ = await uow.wallets.lock_and_load(user_id, now)
    if wallet is None:
        raise AccountNotFound(f"no account for user_id {user_id!r}", field="user_id")
    return wallet


async def load_wallet_for_request(
    uow, user_id: str, now: datetime, idempotency_key: str, fingerprint: str, *, lock: bool = True
) -> tuple[Wallet, dict[str, Any] | None]:
    """The wallet (locked, or read for an optimistic write) and the stored first answer for the key."""
    if lock:
        wallet, answer = await uow.wallets.lock_and_load(user_id, now, idempotency_key)
    else:
        wallet, answer = await uow.wallets.read(user_id, now, idempotency_key)
    if wallet is None:
        raise AccountNotFound(f"no account for user_id {user_id!r}", field="user_id")
    if answer is not None and answer.request_fingerprint != fingerprint:
        raise IdempotencyKeyReused("idempotency_key was used for a different request", field="idempotency_key")
    return wallet, (answer.response if answer else None)


def answer(idempotency_key: str, fingerprint: str, response: dict[str, Any]) -> StoredAnswer:
    return StoredAnswer(idempotency_key=idempotency_key, request_fingerprint=fingerprint, response=response)


async def read_wallet(deps: Dependencies, user_id: str, now: datetime) -> Wallet:
    """A lock-free read; only the first read of a UTC day takes the lock, to grant the daily bonus."""
    async with deps.unit_of_work(read_only=True, wallets_only=True) as uow:
        wallet, _ = await uow.wallets.read(user_id, now)
    if wallet is None:
        raise AccountNotFound(f"no account for user_id {user_id!r}", field="user_id")
    plan = deps.catalog.plan(wallet.account.plan_key)
    if wallet.daily_bonus_due_seconds(plan, now) == 0:
        return wallet
    async with deps.unit_of_work() as uow:
        wallet = await load_wallet_for_update(uow, user_id, now)
        wallet.grant_daily_bonus_if_due(plan, now)
        uow.wallets.save(wallet, now)
        await uow.commit()
    return wallet
