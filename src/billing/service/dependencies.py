"""What every use case needs, built once by the server and passed in."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, Protocol

from billing.domain.catalog import Catalog
from billing.service.account_gate import AccountGate

RESUME_TOKEN_TTL = timedelta(hours=1)


class Clock(Protocol):
    """Where use cases get "now" (adapters/clock.py: the system clock, or a fixed one in tests)."""

    def now(self) -> datetime: ...


def new_resume_token() -> str:
    return "rt_" + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Dependencies:
    # (read_only=False, optimistic=False, wallets_only=False) -> an async context manager
    # UnitOfWork; optimistic ones, and read-only ones with wallets_only, touch only uow.wallets.
    unit_of_work: Callable
    catalog: Catalog
    clock: Clock
    new_resume_token: Callable[[], str] = field(default=new_resume_token)
    resume_token_ttl: timedelta = RESUME_TOKEN_TTL
    account_gate: AccountGate = field(default_factory=AccountGate)
