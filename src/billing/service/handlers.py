"""Which handlers the message bus runs for each domain event (the composition root passes these)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from billing.domain.events import TopupDue, WalletChanged, WalletEvent
from billing.service.messagebus import Handler, MessageBus
from billing.service.topup_payments import send_topup_payment

if TYPE_CHECKING:
    from billing.service.dependencies import Dependencies


def send_topup(deps: "Dependencies", event: WalletEvent) -> None:
    """The auto top-up's payment is the provider's business, after the answer (a lost task is sent
    again by a later touch: domain/topup_decisions.py)."""
    assert isinstance(event, TopupDue)
    deps.background.start(send_topup_payment(deps, event))


def tell_balance_readers(deps: "Dependencies", event: WalletEvent) -> None:
    """Live balances (SSE streams on every replica) read the wallet again."""
    deps.wallet_changes.committed((event.account_id,))


HANDLERS: dict[type[WalletEvent], tuple[Handler, ...]] = {
    TopupDue: (send_topup,),
    WalletChanged: (tell_balance_readers,),
}


def message_bus() -> MessageBus:
    return MessageBus(HANDLERS)
