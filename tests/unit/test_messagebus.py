"""Domain events and the message bus: what a change records is handled after its commit, once;
a change that does not commit hands over nothing; a failing handler never fails the change."""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timezone

import pytest

from billing.adapters.catalog_file import load_catalog
from billing.adapters.clock import FixedClock
from billing.domain.errors import InsufficientAiTime
from billing.domain.events import TopupDue, WalletChanged, WalletEvent
from billing.service.accounts import create_account
from billing.service.consume import consume
from billing.service.messagebus import MessageBus
from billing.settings import DEFAULT_CATALOG_PATH
from tests.support.fake_storage import FakeDatabase, fake_dependencies

NOW = datetime(2026, 3, 14, 9, 30, tzinfo=timezone.utc)


class Heard:
    def __init__(self) -> None:
        self.events: list[WalletEvent] = []

    def __call__(self, deps, event: WalletEvent) -> None:
        self.events.append(event)


@pytest.fixture
def heard():
    return Heard()


@pytest.fixture
def deps(heard):
    bus = MessageBus({WalletChanged: (heard,), TopupDue: (heard,)})
    return dataclasses.replace(
        fake_dependencies(load_catalog(DEFAULT_CATALOG_PATH)[0], FixedClock(NOW), FakeDatabase()), bus=bus)


async def test_each_committed_change_is_heard_once_and_a_replay_not_at_all(deps, heard):
    await create_account(deps, "ann", "free")
    assert heard.events == [WalletChanged("ann")]
    await consume(deps, "ann", "build", 60, "k1", None)
    await consume(deps, "ann", "build", 60, "k1", None)  # the same key: the first answer, nothing written
    assert heard.events == [WalletChanged("ann"), WalletChanged("ann")]


async def test_a_refused_change_that_wrote_nothing_hands_over_nothing(deps, heard):
    await create_account(deps, "bob", "free")
    heard.events.clear()
    with pytest.raises(InsufficientAiTime):
        await consume(deps, "bob", "build", 86400, "too-much", None)
    assert heard.events == []


def test_a_failing_handler_is_logged_and_the_others_still_run(caplog):
    ran: list[str] = []

    def broken(deps, event):
        raise RuntimeError("handler bug")

    bus = MessageBus({WalletChanged: (broken, lambda deps, event: ran.append(event.account_id))})
    with caplog.at_level(logging.ERROR, logger="billing.service.messagebus"):
        bus.publish(None, [WalletChanged("cid")])  # type: ignore[arg-type]
    assert ran == ["cid"] and "handling WalletChanged failed" in caplog.text


def test_events_of_other_types_reach_only_their_handlers():
    ran: list[WalletEvent] = []
    bus = MessageBus({TopupDue: (lambda deps, event: ran.append(event),)})
    due = TopupDue("cid", 1, "mini", "USD", resend=False)
    bus.publish(None, [WalletChanged("cid"), due])  # type: ignore[arg-type]
    assert ran == [due]
