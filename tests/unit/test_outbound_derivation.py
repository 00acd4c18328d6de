"""Outbound events derived from wallet changes (domain/outbound.py, service/outbound_events.py),
on the in-memory storage: what each change announces, once, numbered per account."""

from __future__ import annotations

from datetime import timedelta

from billing.domain.alerts import EMPTY, crossings, level_of
from billing.service.alert_thresholds import set_alert_thresholds
from billing.service.balance import get_balance
from billing.service.consume import consume
from billing.service.grants import create_grant
from billing.service.holds import place_hold
from billing.service.outbound_events import outbound_event_id
from tests.unit.memory_fixtures import START_SECONDS, USER
from tests.unit.memory_fixtures import account, clock, database, deps  # noqa: F401 - fixtures


def types(database) -> list[str]:
    return [row.type for row in database.outbox[USER]]


def test_levels_and_crossings():
    thresholds = (600, 120)
    assert level_of(700, thresholds) is None and level_of(600, thresholds) is None
    assert level_of(599, thresholds) == 600 and level_of(119, thresholds) == 120 and level_of(0, thresholds) == EMPTY
    assert [c.threshold_seconds for c in crossings(None, 120, thresholds)] == [600, 120]
    assert [c.type for c in crossings(600, EMPTY, thresholds)] == ["balance.low", "balance.depleted"]
    assert crossings(120, 600, thresholds) == []  # up, not back above them all: nothing
    assert [c.type for c in crossings(120, None, thresholds)] == ["balance.recovered"]
    assert crossings(None, None, thresholds) == [] and crossings(EMPTY, EMPTY, thresholds) == []


async def test_a_new_account_announces_its_welcome_credit(database, account):
    assert types(database) == ["credit.granted"]
    row = database.outbox[USER][0]
    assert row.seq == 1 and row.event_id == outbound_event_id(USER, 1)
    assert row.payload["data"]["events"][0]["type"] == "adjustment"
    assert row.payload["data"]["totals"]["total_seconds"] == START_SECONDS


async def test_crossing_each_threshold_once_then_empty_then_back(deps, database, account):
    await consume(deps, USER, "build", START_SECONDS - 601, "c1")  # 601 left: above both
    assert types(database) == ["credit.granted"]
    await consume(deps, USER, "build", 2, "c2")  # 599: below 600
    await consume(deps, USER, "build", 1, "c3")  # 598: still below 600, no second alert
    assert types(database)[1:] == ["balance.low"]
    assert database.outbox[USER][1].payload["data"]["threshold_seconds"] == 600
    await consume(deps, USER, "build", 598, "c4")  # 0: below 120 and empty, in one change
    assert types(database)[2:] == ["balance.low", "balance.depleted"]
    assert database.outbox[USER][2].payload["data"]["threshold_seconds"] == 120
    await create_grant(deps, USER, "gift", 1000, "sorry", "g1")
    assert types(database)[4:] == ["credit.granted", "balance.recovered"]
    assert [row.seq for row in database.outbox[USER]] == list(range(1, 7))


async def test_a_replayed_change_announces_nothing_again(deps, database, account):
    await consume(deps, USER, "build", START_SECONDS, "all")
    before = list(database.outbox[USER])
    await consume(deps, USER, "build", START_SECONDS, "all")
    assert database.outbox[USER] == before


async def test_holds_count_and_an_expired_hold_is_announced(deps, clock, database, account):
    await place_hold(deps, USER, "h-1", "build", START_SECONDS - 100, ttl_seconds=60)
    assert types(database)[1:] == ["balance.low", "balance.low"]
    clock.set(clock.now() + timedelta(seconds=61))
    await get_balance(deps, USER)  # the read settles it
    assert types(database)[3:] == ["hold.expired", "balance.recovered"]
    expired = database.outbox[USER][3].payload
    assert expired["data"]["hold_id"] == "h-1" and expired["data"]["released_seconds"] == START_SECONDS - 100


async def test_setting_thresholds_still_announces_what_its_own_upkeep_crossed(deps, clock, database, account):
    """The PUT's upkeep expires a hold (back above every threshold): that is announced against the
    thresholds the account had, before the new ones take over silently."""
    await place_hold(deps, USER, "h-1", "build", START_SECONDS - 100, ttl_seconds=60)
    assert types(database)[1:] == ["balance.low", "balance.low"]
    clock.set(clock.now() + timedelta(seconds=61))
    await set_alert_thresholds(deps, USER, [60])
    assert types(database)[3:] == ["hold.expired", "balance.recovered"]
    await consume(deps, USER, "build", START_SECONDS - 59, "c1")  # 59 left: below the new threshold only
    assert types(database)[5:] == ["balance.low"]
    assert database.outbox[USER][5].payload["data"]["threshold_seconds"] == 60


async def test_new_thresholds_take_over_silently(deps, database, account):
    await consume(deps, USER, "build", START_SECONDS - 500, "c1")  # 500 left: below 600
    assert types(database)[1:] == ["balance.low"]
    await set_alert_thresholds(deps, USER, [400])  # 500 is above 400: the state moves, nothing is said
    assert types(database)[2:] == []
    await consume(deps, USER, "build", 101, "c2")  # 399: below the new threshold
    assert types(database)[2:] == ["balance.low"]
