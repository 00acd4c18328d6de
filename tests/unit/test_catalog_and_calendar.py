"""Example-based tests of the catalog (suggestions, currencies) and the UTC calendar arithmetic."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from billing.domain.catalog import Catalog, parse_catalog
from billing.domain.clock_math import add_months, next_utc_midnight
from billing.domain.errors import InvalidArgument, Suggestion

UTC = timezone.utc
ROOT = Path(__file__).resolve().parents[2]
CATALOG: Catalog = parse_catalog(json.loads((ROOT / "catalog" / "catalog.json").read_text()))
MIN = 60
FREE = CATALOG.plan("free")


# --------------------------------------------------------------------------- catalog


@pytest.mark.parametrize(
    ("deficit_seconds", "package"),
    [
        (1, "mini"),
        (60 * MIN, "mini"),  # exactly covered
        (60 * MIN + 1, "booster"),
        (300 * MIN, "booster"),
        (300 * MIN + 1, "mega"),
        (1000 * MIN, "mega"),
        (1000 * MIN + 1, "mega"),  # nothing covers it: the largest
        (10**8, "mega"),
    ],
)
def test_suggestions_pick_smallest_package_covering_deficit_else_largest(deficit_seconds, package):
    suggestions = CATALOG.suggestions_for(deficit_seconds, "free")
    minutes = {p.key: p.minutes for p in CATALOG.packages}
    assert suggestions == (
        Suggestion(type="package", key=package, minutes=minutes[package]),
        Suggestion(type="upgrade", plan="starter"),
    )


@pytest.mark.parametrize(("plan", "upgrade"), [("free", "starter"), ("starter", "pro"), ("pro", "business")])
def test_suggestions_offer_the_next_plan_up(plan, upgrade):
    assert CATALOG.suggestions_for(1, plan)[-1] == Suggestion(type="upgrade", plan=upgrade)
    assert CATALOG.next_plan_up(plan).key == upgrade


def test_no_upgrade_is_suggested_above_the_top_plan():
    assert CATALOG.next_plan_up("business") is None
    assert CATALOG.suggestions_for(1, "business") == (Suggestion(type="package", key="mini", minutes=60),)


def test_catalog_plans_carry_bonus_rules():
    assert (FREE.daily_bonus_seconds, FREE.monthly_bonus_cap_seconds) == (15 * MIN, 300 * MIN)
    business = CATALOG.plan("business")
    assert (business.daily_bonus_seconds, business.monthly_bonus_cap_seconds) == (0, None)
    assert [p.rank for p in CATALOG.plans] == [0, 1, 2, 3]
    with pytest.raises(InvalidArgument) as raised:
        CATALOG.plan("platinum")
    assert raised.value.field == "plan_key"


@pytest.mark.parametrize("requested", ["EU", "EURO", "E1R", "€UR", "U D", "usd1", "12345", "-"])
def test_resolve_currency_rejects_malformed_codes(requested):
    with pytest.raises(InvalidArgument) as raised:
        CATALOG.resolve_currency(requested)
    assert raised.value.field == "currency"


@pytest.mark.parametrize(
    ("requested", "served"),
    [
        ("jpy", ("USD", "JPY")),
        ("JPY", ("USD", "JPY")),
        ("eur", ("EUR", None)),
        ("EUR", ("EUR", None)),
        (" gbp ", ("GBP", None)),
        ("", ("USD", None)),
        ("usd", ("USD", None)),
    ],
)
def test_resolve_currency_serves_priced_codes_and_falls_back_to_default(requested, served):
    assert CATALOG.resolve_currency(requested) == served


# --------------------------------------------------------------------------- clock math


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (datetime(2026, 1, 31, 15, 30, tzinfo=UTC), 1, datetime(2026, 2, 28, 15, 30, tzinfo=UTC)),
        (datetime(2028, 1, 31, 15, 30, tzinfo=UTC), 1, datetime(2028, 2, 29, 15, 30, tzinfo=UTC)),
        (datetime(2026, 3, 31, tzinfo=UTC), 1, datetime(2026, 4, 30, tzinfo=UTC)),
        (datetime(2026, 12, 31, tzinfo=UTC), 2, datetime(2027, 2, 28, tzinfo=UTC)),
        (datetime(2026, 12, 15, tzinfo=UTC), 1, datetime(2027, 1, 15, tzinfo=UTC)),
        (datetime(2028, 2, 29, tzinfo=UTC), 12, datetime(2029, 2, 28, tzinfo=UTC)),
        (datetime(2026, 3, 31, tzinfo=UTC), -1, datetime(2026, 2, 28, tzinfo=UTC)),
        (datetime(2026, 5, 10, 1, 2, 3, 4, tzinfo=UTC), 0, datetime(2026, 5, 10, 1, 2, 3, 4, tzinfo=UTC)),
    ],
)
def test_add_months_clamps_to_the_last_day_of_the_month(start, months, expected):
    assert add_months(start, months) == expected
    assert add_months(start, months).tzinfo == UTC


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(2026, 3, 14, 13, 45, tzinfo=UTC), datetime(2026, 3, 15, tzinfo=UTC)),
        (datetime(2026, 3, 14, tzinfo=UTC), datetime(2026, 3, 15, tzinfo=UTC)),  # midnight itself: the next one
        (datetime(2026, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
        (datetime(2028, 2, 28, 6, tzinfo=UTC), datetime(2028, 2, 29, tzinfo=UTC)),
    ],
)
def test_next_utc_midnight(now, expected):
    assert next_utc_midnight(now) == expected


@pytest.mark.parametrize(
    "instant", [datetime(2026, 3, 14, 13, 45), datetime(2026, 3, 14, 13, 45, tzinfo=timezone(timedelta(hours=2)))]
)
def test_clock_math_refuses_naive_and_non_utc_instants(instant):
    with pytest.raises(AssertionError):
        next_utc_midnight(instant)
    with pytest.raises(AssertionError):
        add_months(instant, 1)
