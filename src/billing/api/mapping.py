"""Plain results of the use cases -> protobuf messages. No logic beyond shape and format."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from google.protobuf import struct_pb2, timestamp_pb2

from billing.api.errors import suggestion_proto
from billing.domain.errors import InvalidArgument
from billing.domain.auto_topup import REQUIRES_ACTION
from billing.domain.balance import BalanceTotals
from billing.domain.buckets import Bucket
from billing.domain.catalog import display_price
from billing.service.accounts import AccountResult
from billing.service.alert_thresholds import Thresholds
from billing.service.balance import BalanceReport
from billing.service.balance_watch import BalanceUpdate
from billing.service.batch_check import BatchResult
from billing.service.catalog_view import CatalogView
from billing.service.history import HistoryPage
from billing.service.results import ConsumeResult, GrantResult, HoldResult, HoldView, OpenHolds
from billing.domain.usage import UsageSummary
from billing.service.session_keys import IssuedKey
from billing.v1 import (
    accounts_pb2, alerts_pb2, balance_pb2, billing_service_pb2, catalog_pb2, consumption_pb2, holds_pb2, keys_pb2,
)


def rfc3339(instant: datetime) -> str:
    """UTC, 'Z'-suffixed, fractional seconds only when present: 2025-09-02T00:00:00Z."""
    # isoformat() writes microseconds only when non-zero, as the contract's examples do; it is
    # several times cheaper than strftime, and every balance answer formats a few of these.
    return instant.astimezone(timezone.utc).replace(tzinfo=None).isoformat() + "Z"


# google.protobuf.Timestamp's range (0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999999999Z): outside
# it ToDatetime raises ValueError, which would answer INTERNAL; the request is the one at fault.
TIMESTAMP_SECONDS_MIN, TIMESTAMP_SECONDS_MAX = -62_135_596_800, 253_402_300_799
TIMESTAMP_NANOS_MAX = 999_999_999


def optional_instant(message: Any, field: str) -> datetime | None:
    """A request's optional Timestamp field as a UTC datetime, None when absent; out of the
    Timestamp's range (seconds or nanos) is InvalidArgument naming the field."""
    if not message.HasField(field):
        return None
    value: timestamp_pb2.Timestamp = getattr(message, field)
    if not (TIMESTAMP_SECONDS_MIN <= value.seconds <= TIMESTAMP_SECONDS_MAX and 0 <= value.nanos <= TIMESTAMP_NANOS_MAX):
        raise InvalidArgument(f"{field} must be a timestamp from 0001-01-01 to 9999-12-31 (nanos 0..999999999)",
                              field=field)
    return value.ToDatetime(tzinfo=timezone.utc)


def timestamp(instant: datetime) -> timestamp_pb2.Timestamp:
    message = timestamp_pb2.Timestamp()
    message.FromDatetime(instant.astimezone(timezone.utc))
    return message


def nullable_time(instant: datetime | None) -> struct_pb2.Value:
    if instant is None:
        return struct_pb2.Value(null_value=struct_pb2.NULL_VALUE)
    return struct_pb2.Value(string_value=rfc3339(instant))


def totals(value: BalanceTotals) -> balance_pb2.BalanceTotals:
    return balance_pb2.BalanceTotals(
        total_seconds=value.total_seconds,
        paid_seconds=value.paid_seconds,
        bonus_seconds=value.bonus_seconds,
        next_expiry_at=nullable_time(value.next_expiry_at),
        held_seconds=value.held_seconds,
    )


def catalog(view: CatalogView) -> catalog_pb2.PricingCatalog:
    currency = view.currency
    tax_inclusive = view.catalog.tax_inclusive_by_currency[currency]
    message = catalog_pb2.PricingCatalog(
        version=view.catalog.version,
        rollover_policy=catalog_pb2.RolloverPolicy(days=view.catalog.rollover_days),
        currency=currency,
        subscriptions=[
            catalog_pb2.SubscriptionPlan(
                key=plan.key, name=plan.name, minutes=plan.minutes,
                price=display_price(plan.prices_cents[currency]), price_cents=plan.prices_cents[currency],
                bonusDaily=plan.bonus_daily_minutes, monthlyBonusCap=plan.monthly_bonus_cap_minutes,
                rolloverCap=plan.rollover_cap_minutes, taxInclusive=tax_inclusive,
                advisor=catalog_pb2.Advisor(eligible=plan.advisor.eligible, payoutUSD=plan.advisor.payout_usd),
            )
            for plan in view.catalog.plans
        ],
        packages=[
            catalog_pb2.Package(
                key=package.key, name=package.name, minutes=package.minutes,
                price=display_price(package.prices_cents[currency]), price_cents=package.prices_cents[currency],
                taxInclusive=tax_inclusive,
            )
            for package in view.catalog.packages
        ],
    )
    if view.fallback_from is not None:
        message.currency_fallback_from = view.fallback_from
    return message


def balance(report: BalanceReport) -> balance_pb2.EnhancedBalance:
    return balance_pb2.EnhancedBalance(
        version=BALANCE_SHAPE_VERSION,
        plan_key=report.account.plan_key,
        subscription_status=report.account.subscription_status,
        catalog_version=report.catalog_version,
        totals=totals(report.view.totals),
        buckets=balance_pb2.BalanceBuckets(
            daily=[
                balance_pb2.DailyBucket(seconds=b.free_seconds, expires_at=timestamp(_expiry_of_daily(b)))
                for b in report.view.daily
            ],
            paid=[
                balance_pb2.PaidBucket(
                    seconds=b.free_seconds, expires_at=nullable_time(b.expires_at), source=str(b.source)
                )
                for b in report.view.paid
            ],
        ),
        bonus=balance_pb2.BonusStatus(
            daily_minutes=report.bonus.daily_minutes,
            used_this_month_minutes=report.bonus.used_this_month_minutes,
            monthly_cap_minutes=report.bonus.monthly_cap_minutes,
        ),
        subscription=balance_pb2.SubscriptionPeriod(
            current_period_start_at=nullable_time(report.account.subscription.period_start),
            current_period_end_at=nullable_time(report.account.subscription.period_end),
            cancel_at_period_end=report.account.subscription.cancel_at_period_end,
            pending_plan_key=report.account.subscription.pending_plan_key or "",
        ),
        auto_topup=balance_pb2.AutoTopupState(
            enabled=report.account.auto_topup.enabled, threshold_seconds=report.account.auto_topup.threshold_seconds,
            package_key=report.account.auto_topup.package_key or "", pending=report.account.auto_topup.pending,
            last_failure=report.account.auto_topup.last_failure or "",
            action_required=report.account.auto_topup.last_failure == REQUIRES_ACTION,
        ),
    )


def balance_update(update: BalanceUpdate) -> billing_service_pb2.BalanceUpdate:
    """The GET balance's answer and the account version; a heartbeat carries neither."""
    if update.report is None:
        return billing_service_pb2.BalanceUpdate(heartbeat=True)
    return billing_service_pb2.BalanceUpdate(version=update.version, balance=balance(update.report))


def _expiry_of_daily(bucket: Bucket) -> datetime:
    assert bucket.expires_at is not None, "daily buckets always expire"
    return bucket.expires_at


# The contract's EnhancedBalance.version: the version of this response shape.
BALANCE_SHAPE_VERSION = "2025-09-01"


INT32_MAX = 2**31 - 1


def saturate_int32(seconds: int) -> int:
    """Usage sums are int32 on the wire (JSON numbers); a month over 68 years of seconds reads as the maximum."""
    return min(seconds, INT32_MAX)


def usage(summary: UsageSummary) -> balance_pb2.UsageAnalytics:
    return balance_pb2.UsageAnalytics(
        total_seconds=saturate_int32(summary.total_seconds),
        by_operation={operation: saturate_int32(s) for operation, s in summary.by_operation.items()},
        daily_trend=[
            balance_pb2.DailyUsage(date=day.isoformat(), seconds=saturate_int32(s)) for day, s in summary.daily_trend
        ],
    )


def events(page: HistoryPage) -> balance_pb2.BillingEventHistory:
    history = balance_pb2.BillingEventHistory(next_page_token=page.next_page_token)
    for row in page.events:
        event = history.events.add(type=row.type, seconds=row.seconds, reason=row.reason)
        event.timestamp.CopyFrom(timestamp(row.occurred_at))
        event.metadata.update(row.metadata)
    return history


def batch(results: list[BatchResult]) -> consumption_pb2.CheckSufficientBatchResponse:
    return consumption_pb2.CheckSufficientBatchResponse(
        results=[
            consumption_pb2.BatchOperationResult(
                operation=r.operation, ok=r.ok, deficit_seconds=r.deficit_seconds,
                suggestions=[suggestion_proto(s) for s in r.suggestions],
            )
            for r in results
        ]
    )


def consume(result: ConsumeResult) -> consumption_pb2.ConsumeResponse:
    return consumption_pb2.ConsumeResponse(
        user_id=result.user_id,
        operation=result.operation,
        consumed_seconds=result.consumed_seconds,
        taken=[
            consumption_pb2.BucketDebit(source=t.source, seconds=t.seconds, expires_at=nullable_time(t.expires_at))
            for t in result.taken
        ],
        totals=totals(result.totals),
        idempotency_key=result.idempotency_key,
        replayed=result.replayed,
    )


def hold(view: HoldView) -> holds_pb2.Hold:
    return holds_pb2.Hold(
        hold_id=view.hold_id,
        user_id=view.user_id,
        operation=view.operation,
        held_seconds=view.held_seconds,
        committed_seconds=view.committed_seconds,
        state=view.state,
        expires_at=timestamp(view.expires_at),
    )


def hold_response(result: HoldResult) -> holds_pb2.HoldResponse:
    return holds_pb2.HoldResponse(hold=hold(result.hold), totals=totals(result.totals))


def open_holds(listed: OpenHolds) -> holds_pb2.ListHoldsResponse:
    return holds_pb2.ListHoldsResponse(holds=[hold(h) for h in listed.holds], totals=totals(listed.totals))


def alert_thresholds(thresholds: Thresholds) -> alerts_pb2.AlertThresholds:
    return alerts_pb2.AlertThresholds(
        user_id=thresholds.user_id, thresholds_seconds=list(thresholds.thresholds_seconds),
        is_default=thresholds.is_default)


def account(result: AccountResult) -> accounts_pb2.CreateAccountResponse:
    return accounts_pb2.CreateAccountResponse(
        user_id=result.user_id,
        plan_key=result.plan_key,
        subscription_status=result.subscription_status,
        created_at=timestamp(result.created_at),
        created=result.created,
        totals=totals(result.totals),
    )


def grant(result: GrantResult) -> accounts_pb2.CreateGrantResponse:
    return accounts_pb2.CreateGrantResponse(
        user_id=result.user_id,
        source=result.source,
        seconds=result.seconds,
        totals=totals(result.totals),
        idempotency_key=result.idempotency_key,
        replayed=result.replayed,
    )


def session_key(issued: IssuedKey) -> keys_pb2.CreateSessionKeyResponse:
    key = issued.key
    return keys_pb2.CreateSessionKeyResponse(
        key_id=key.key_id, secret=issued.secret, scope=str(key.scope), user_id=key.user_id or "",
        expires_at=timestamp(key.expires_at),
    )
