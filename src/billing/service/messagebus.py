"""Runs what should happen after a wallet change commits, for each domain event it recorded.

The Cosmic Python pattern, kept small: a change records events on the wallet (domain/events.py),
the unit of work hands them over after its commit, and the bus calls each event's handlers. A
handler runs on the request path, so it must be cheap and must not wait: it starts background
work (deps.background) or hands ids to a component that batches them. A failing handler is logged
and never fails the change, which is committed already.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable, Iterable, Mapping

from billing.domain.events import WalletEvent

if TYPE_CHECKING:
    from billing.service.dependencies import Dependencies

log = logging.getLogger(__name__)

Handler = Callable[["Dependencies", WalletEvent], None]


class MessageBus:
    def __init__(self, handlers: Mapping[type[WalletEvent], tuple[Handler, ...]] | None = None):
        self._handlers = dict(handlers or {})

    def publish(self, deps: "Dependencies", events: Iterable[WalletEvent]) -> None:
        for event in events:
            for handler in self._handlers.get(type(event), ()):
                try:
                    handler(deps, event)
                except Exception:  # noqa: BLE001 - the change is committed; its follow-up is best effort
                    log.exception("handling %s failed", type(event).__name__)
