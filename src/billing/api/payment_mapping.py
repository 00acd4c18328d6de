"""Payment use cases' results as billing.v1 messages."""

from __future__ import annotations

from billing.api.mapping import nullable_time
from billing.domain.auto_topup import REQUIRES_ACTION
from billing.service.auto_topup import AutoTopupStatus
from billing.service.purchases import CheckoutResult
from billing.service.subscriptions import SubscriptionStatus
from billing.service.webhooks import WebhookOutcome
from billing.v1 import payments_pb2


def package_purchase(result: CheckoutResult) -> payments_pb2.PackagePurchaseResponse:
    item = result.item
    message = payments_pb2.PackagePurchaseResponse(
        checkout_url=result.checkout_url, session_id=result.session_id, currency=item.currency,
        unit_amount_cents=item.unit_amount_cents, display_price=result.display_price, package_minutes=item.minutes,
        package_key=item.key,
    )
    if result.currency_fallback_from is not None:
        message.currency_fallback_from = result.currency_fallback_from
    return message


def subscription_checkout(result: CheckoutResult) -> payments_pb2.SubscriptionCheckoutResponse:
    item = result.item
    message = payments_pb2.SubscriptionCheckoutResponse(
        checkout_url=result.checkout_url, session_id=result.session_id, plan_key=item.key, currency=item.currency,
        unit_amount_cents=item.unit_amount_cents, display_price=result.display_price, plan_minutes=item.minutes,
    )
    if result.currency_fallback_from is not None:
        message.currency_fallback_from = result.currency_fallback_from
    return message


def subscription_state(status: SubscriptionStatus) -> payments_pb2.SubscriptionState:
    return payments_pb2.SubscriptionState(
        user_id=status.user_id, plan_key=status.plan_key, subscription_status=status.subscription_status,
        cancel_at_period_end=status.cancel_at_period_end, pending_plan_key=status.pending_plan_key or "",
        current_period_start_at=nullable_time(status.current_period_start_at),
        current_period_end_at=nullable_time(status.current_period_end_at),
    )


def webhook(outcome: WebhookOutcome) -> payments_pb2.StripeWebhookResponse:
    return payments_pb2.StripeWebhookResponse(received=True, outcome=outcome.outcome)


def auto_topup_settings(status: AutoTopupStatus) -> payments_pb2.AutoTopupSettings:
    setting = status.setting
    return payments_pb2.AutoTopupSettings(
        user_id=status.user_id, enabled=setting.enabled, threshold_seconds=setting.threshold_seconds,
        package_key=setting.package_key or "", currency=setting.currency or "", pending=setting.pending,
        failures=setting.failures, last_failure=setting.last_failure or "",
        action_required=setting.last_failure == REQUIRES_ACTION,
    )


def auto_topup_setup(result: CheckoutResult) -> payments_pb2.AutoTopupSetupResponse:
    return payments_pb2.AutoTopupSetupResponse(checkout_url=result.checkout_url, session_id=result.session_id)
