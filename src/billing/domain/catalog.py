"""The pricing catalog: plans, packages and prices per currency, parsed from a plain dict."""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping

from billing.domain.alerts import DEFAULT_THRESHOLDS_SECONDS, require_thresholds
from billing.domain.errors import InvalidArgument, Suggestion

SECONDS_PER_MINUTE = 60
CURRENCY_PATTERN = re.compile(r"^[A-Z]{3}$")
MINOR_UNITS_PER_MAJOR = 100  # every currency the catalog prices has two decimals


@dataclass(frozen=True)
class Advisor:
    eligible: bool
    payout_usd: int | None


@dataclass(frozen=True)
class Plan:
    key: str
    name: str
    minutes: int
    prices_cents: Mapping[str, int]
    bonus_daily_minutes: int
    monthly_bonus_cap_minutes: int | None  # None: no cap
    rollover_cap_minutes: int | None
    advisor: Advisor
    rank: int  # position in the catalog: upgrades go to a higher rank

    @property
    def daily_bonus_seconds(self) -> int:
        return self.bonus_daily_minutes * SECONDS_PER_MINUTE

    @property
    def rollover_cap_seconds(self) -> int | None:
        if self.rollover_cap_minutes is None:
            return None
        return self.rollover_cap_minutes * SECONDS_PER_MINUTE

    @property
    def monthly_bonus_cap_seconds(self) -> int | None:
        if self.monthly_bonus_cap_minutes is None:
            return None
        return self.monthly_bonus_cap_minutes * SECONDS_PER_MINUTE


@dataclass(frozen=True)
class Package:
    key: str
    name: str
    minutes: int
    prices_cents: Mapping[str, int]


@dataclass(frozen=True)
class Catalog:
    version: str
    default_currency: str
    tax_inclusive_by_currency: Mapping[str, bool]
    rollover_days: int
    welcome_bonus_minutes: int
    package_validity_days: int
    plans: tuple[Plan, ...]
    packages: tuple[Package, ...]
    # Where `balance.low` fires for accounts that chose none (domain/alerts.py), highest first.
    alert_thresholds_seconds: tuple[int, ...] = DEFAULT_THRESHOLDS_SECONDS

    def plan(self, key: str) -> Plan:
        for plan in self.plans:
            if plan.key == key:
                return plan
        known = ", ".join(p.key for p in self.plans)
        raise InvalidArgument(f"plan_key must be one of {known}", field="plan_key")

    def package(self, key: str) -> Package:
        for package in self.packages:
            if package.key == key:
                return package
        known = ", ".join(p.key for p in self.packages)
        raise InvalidArgument(f"package_key must be one of {known}", field="package_key")

    def has_package(self, key: str | None) -> bool:
        return any(package.key == key for package in self.packages)

    def has_plan(self, key: str) -> bool:
        return any(plan.key == key for plan in self.plans)

    def is_priced_in(self, currency: str) -> bool:
        items: list[Plan | Package] = [*self.plans, *self.packages]
        return currency in self.tax_inclusive_by_currency and all(
            currency in item.prices_cents for item in items
        )

    def resolve_currency(self, requested: str) -> tuple[str, str | None]:
        """Returns (currency served, currency it fell back from or None).

        A malformed code is a client error; a well-formed one without prices falls
        back to the default currency so the page still renders.
        """
        code = (requested or self.default_currency).strip().upper()
        if not CURRENCY_PATTERN.match(code):
            raise InvalidArgument("currency must be a 3-letter ISO 4217 code", field="currency")
        if self.is_priced_in(code):
            return code, None
        return self.default_currency, code

    def suggestions_for(self, deficit_seconds: int, plan_key: str) -> tuple[Suggestion, ...]:
        """The smallest package that covers the deficit (else the largest), and the next plan up."""
        assert deficit_seconds > 0
        suggestions: list[Suggestion] = []
        package = smallest_package_covering(self.packages, deficit_seconds)
        if package is not None:
            suggestions.append(Suggestion(type="package", key=package.key, minutes=package.minutes))
        upgrade = self.next_plan_up(plan_key)
        if upgrade is not None:
            suggestions.append(Suggestion(type="upgrade", plan=upgrade.key))
        return tuple(suggestions)

    def next_plan_up(self, plan_key: str) -> Plan | None:
        current_rank = self.plan(plan_key).rank if self.has_plan(plan_key) else -1
        higher = [plan for plan in self.plans if plan.rank > current_rank]
        return min(higher, key=lambda plan: plan.rank) if higher else None


def smallest_package_covering(packages: tuple[Package, ...], deficit_seconds: int) -> Package | None:
    by_size = sorted(packages, key=lambda package: (package.minutes, package.key))
    for package in by_size:
        if package.minutes * SECONDS_PER_MINUTE >= deficit_seconds:
            return package
    return by_size[-1] if by_size else None


def display_price(price_cents: int) -> float:
    """Major units for display (999 -> 9.99); exact for two-decimal currencies."""
    return round(price_cents / MINOR_UNITS_PER_MAJOR, 2)


def minutes_floor(seconds: int) -> int:
    """Whole minutes, rounded down (a partial minute is not shown as a minute)."""
    return seconds // SECONDS_PER_MINUTE


def parse_catalog(raw: Mapping[str, Any]) -> Catalog:
    currencies = {code: bool(spec.get("tax_inclusive", False)) for code, spec in raw["currencies"].items()}
    default_currency = raw["default_currency"]
    plans = tuple(_parse_plan(item, rank) for rank, item in enumerate(raw["subscriptions"]))
    packages = tuple(
        Package(
            key=item["key"],
            name=item["name"],
            minutes=int(item["minutes"]),
            prices_cents=MappingProxyType(dict(item["prices"])),
        )
        for item in raw["packages"]
    )
    catalog = Catalog(
        version=str(raw["version"]),
        default_currency=default_currency,
        tax_inclusive_by_currency=MappingProxyType(currencies),
        rollover_days=int(raw["rollover_policy"]["days"]),
        welcome_bonus_minutes=int(raw["welcome_bonus_minutes"]),
        package_validity_days=int(raw["package_validity_days"]),
        plans=plans,
        packages=packages,
        alert_thresholds_seconds=require_thresholds(raw.get("alert_thresholds_seconds", DEFAULT_THRESHOLDS_SECONDS)),
    )
    _assert_well_formed(catalog)
    return catalog


def _parse_plan(item: Mapping[str, Any], rank: int) -> Plan:
    advisor = item.get("advisor", {})
    return Plan(
        key=item["key"],
        name=item["name"],
        minutes=int(item["minutes"]),
        prices_cents=MappingProxyType(dict(item["prices"])),
        bonus_daily_minutes=int(item.get("bonusDaily", 0)),
        monthly_bonus_cap_minutes=item.get("monthlyBonusCap"),
        rollover_cap_minutes=item.get("rolloverCap"),
        advisor=Advisor(eligible=bool(advisor.get("eligible", False)), payout_usd=advisor.get("payoutUSD")),
        rank=rank,
    )


def _assert_well_formed(catalog: Catalog) -> None:
    assert catalog.version, "catalog needs a version"
    assert catalog.is_priced_in(catalog.default_currency), "every item needs a default-currency price"
    assert catalog.has_plan("free"), "catalog needs a free plan"
    keys = [plan.key for plan in catalog.plans] + [package.key for package in catalog.packages]
    assert len(keys) == len(set(keys)), "plan and package keys must be unique"
    items: list[Plan | Package] = [*catalog.plans, *catalog.packages]
    for item in items:
        assert item.minutes >= 0
        assert all(isinstance(cents, int) and cents >= 0 for cents in item.prices_cents.values())
    for plan in catalog.plans:
        assert plan.bonus_daily_minutes >= 0
        cap = plan.monthly_bonus_cap_minutes
        assert cap is None or cap >= 0
