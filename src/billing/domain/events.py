"""What happened to a wallet, as facts the rest of the system may act on after the change commits.

The domain records them on the wallet during a change (`Wallet.record`); the unit of work hands
them over once the change is committed (with `WalletChanged` for every wallet it wrote), and the
message bus (service/messagebus.py) runs their handlers: nothing acts on a change that did not
commit, and the domain knows nothing of who listens.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class WalletEvent:
    account_id: str


@dataclass(frozen=True)
class WalletChanged(WalletEvent):
    """A change to the wallet was committed: what shows its balance reads it again."""


@dataclass(frozen=True)
class TopupDue(WalletEvent):
    """An auto top-up attempt was decided (or is due again): its payment is sent to the provider,
    whose idempotency key is derived from (account, seq), so sending it twice is one payment."""

    seq: int
    package_key: str
    currency: str
    resend: bool


@dataclass(frozen=True)
class HoldExpired(WalletEvent):
    """An open hold reached its expiry and settled by itself at what was committed."""

    hold_id: str
    committed_seconds: int
    released_seconds: int


@dataclass(frozen=True)
class CreditExpiring(WalletEvent):
    """A bucket's free seconds expire within three days (announced once per bucket)."""

    bucket_seq: int
    source: str
    seconds: int
    expires_at: datetime


@dataclass(frozen=True)
class CreditExpired(WalletEvent):
    """A bucket expired with free seconds left: they are gone (announced once per bucket)."""

    bucket_seq: int
    source: str
    seconds: int
    expires_at: datetime
