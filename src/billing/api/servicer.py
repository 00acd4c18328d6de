"""Thin gRPC servicer: request -> primitives -> use case -> response. Errors map in the interceptor chain."""

from __future__ import annotations

import grpc

from billing.api import mapping, payment_mapping, webhook_mapping
from billing.api.consume_stream import serve_consume_stream
from billing.api.meter_session import serve_session
from billing.service import (
    accounts, alert_thresholds, auto_topup, balance, balance_watch, batch_check, consume, delivery_log, grants, history,
    holds, purchases, session_keys, subscriptions, usage, webhook_endpoints, webhooks,
)
from billing.service.balance_hub import BalanceHub
from billing.service.catalog_view import catalog_in_currency, etag_matches
from billing.service.dependencies import Dependencies
from billing.v1 import billing_service_pb2_grpc, catalog_pb2

CATALOG_CACHE_CONTROL = "public, max-age=300"
# Tells Envoy's Lua filter to serve the named field alone as the REST body (a bare array).
UNWRAP_HEADER = "x-rest-unwrap"


def _metadata(context: grpc.aio.ServicerContext, name: str) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == name:
            return value
    return ""


class BillingServicer(billing_service_pb2_grpc.BillingServiceServicer):
    def __init__(self, deps: Dependencies, catalog_fingerprint: str, watchers: BalanceHub):
        """watchers: the process's live-balance hub (the server feeds it changes from every replica)."""
        self._deps = deps
        self._catalog_fingerprint = catalog_fingerprint
        self.watchers = watchers

    async def GetCatalog(self, request, context):
        view = catalog_in_currency(self._deps.catalog, self._catalog_fingerprint, request.currency)
        headers = [("etag", view.etag), ("cache-control", CATALOG_CACHE_CONTROL)]
        if_none_match = _metadata(context, "if-none-match")
        if if_none_match and etag_matches(if_none_match, view.etag):
            await context.send_initial_metadata([*headers, ("x-http-status", "304")])
            return catalog_pb2.PricingCatalog()
        await context.send_initial_metadata(headers)
        return mapping.catalog(view)

    async def GetBalance(self, request, context):
        return mapping.balance(await balance.get_balance(self._deps, request.user_id))

    async def WatchBalance(self, request, context):
        updates = balance_watch.watch_balance(self._deps, self.watchers, request.user_id, request.since_version)
        async for update in updates:
            yield mapping.balance_update(update)

    async def GetUsage(self, request, context):
        return mapping.usage(await usage.get_usage(self._deps, request.user_id, request.period))

    async def ListEvents(self, request, context):
        page = await history.list_events(self._deps, request.user_id, request.limit, request.page_token)
        return mapping.events(page)

    async def CheckSufficientBatch(self, request, context):
        estimates = [(op.operation, op.estimate_seconds) for op in request.operations]
        results = await batch_check.check_sufficient_batch(self._deps, request.user_id, estimates)
        await context.send_initial_metadata([(UNWRAP_HEADER, "results")])
        return mapping.batch(results)

    async def Consume(self, request, context):
        resume_token = request.resume_token or _metadata(context, "x-resume-token")
        key = request.idempotency_key
        result = await consume.consume(self._deps, request.user_id, request.operation, request.seconds, key, resume_token)
        return mapping.consume(result)

    async def CreateHold(self, request, context):
        resume_token = request.resume_token or _metadata(context, "x-resume-token")
        result = await holds.place_hold(
            self._deps, request.user_id, request.hold_id, request.operation, request.seconds, request.ttl_seconds,
            resume_token,
        )
        return mapping.hold_response(result)

    async def ExtendHold(self, request, context):
        result = await holds.extend_hold(
            self._deps, request.user_id, request.hold_id, request.seconds, request.ttl_seconds, request.idempotency_key
        )
        return mapping.hold_response(result)

    async def CommitHold(self, request, context):
        result = await holds.commit_hold(self._deps, request.user_id, request.hold_id, request.used_seconds, request.final)
        return mapping.hold_response(result)

    async def ReleaseHold(self, request, context):
        return mapping.hold_response(await holds.release_hold(self._deps, request.user_id, request.hold_id))

    async def ListHolds(self, request, context):
        return mapping.open_holds(await holds.list_open_holds(self._deps, request.user_id))

    async def GetAlertThresholds(self, request, context):
        return mapping.alert_thresholds(await alert_thresholds.get_alert_thresholds(self._deps, request.user_id))

    async def SetAlertThresholds(self, request, context):
        return mapping.alert_thresholds(await alert_thresholds.set_alert_thresholds(
            self._deps, request.user_id, list(request.thresholds_seconds), request.use_default))

    async def MeterSession(self, request_iterator, context):
        async for answer in serve_session(self._deps, request_iterator):
            yield answer

    async def ConsumeStream(self, request_iterator, context):
        async for answer in serve_consume_stream(self._deps, request_iterator):
            yield answer

    async def CreateAccount(self, request, context):
        return mapping.account(await accounts.create_account(self._deps, request.user_id, request.plan_key))

    async def CreateSessionKey(self, request, context):
        return mapping.session_key(session_keys.create_session_key(self._deps, request.user_id, request.ttl_seconds))

    async def CreateGrant(self, request, context):
        key = request.idempotency_key
        result = await grants.create_grant(self._deps, request.user_id, request.source, request.seconds, request.reason, key)
        return mapping.grant(result)

    async def PurchasePackage(self, request, context):
        result = await purchases.purchase_package(
            self._deps, request.user_id, request.package_key, request.currency, request.idempotency_key
        )
        return payment_mapping.package_purchase(result)

    async def CreateSubscriptionCheckout(self, request, context):
        result = await purchases.subscription_checkout(
            self._deps, request.user_id, request.plan_key, request.currency, request.idempotency_key
        )
        return payment_mapping.subscription_checkout(result)

    async def CancelSubscription(self, request, context):
        status = await subscriptions.cancel_subscription(self._deps, request.user_id, request.idempotency_key)
        return payment_mapping.subscription_state(status)

    async def ChangeSubscriptionPlan(self, request, context):
        status = await subscriptions.change_plan(self._deps, request.user_id, request.plan_key, request.idempotency_key)
        return payment_mapping.subscription_state(status)

    async def HandleStripeWebhook(self, request, context):
        outcome = await webhooks.handle_webhook(self._deps, request.raw.data, _metadata(context, "stripe-signature"))
        return payment_mapping.webhook(outcome)

    async def GetAutoTopup(self, request, context):
        return payment_mapping.auto_topup_settings(await auto_topup.get_auto_topup(self._deps, request.user_id))

    async def UpdateAutoTopup(self, request, context):
        status = await auto_topup.set_auto_topup(
            self._deps, request.user_id, request.enabled, request.threshold_seconds, request.package_key,
            request.currency,
        )
        return payment_mapping.auto_topup_settings(status)

    async def CreateAutoTopupSetup(self, request, context):
        return payment_mapping.auto_topup_setup(await auto_topup.setup_checkout(self._deps, request.user_id))

    # Outbound events (issue 22): webhook endpoints and the delivery log (admin keys: api/access.py).
    async def CreateWebhookEndpoint(self, request, context):
        created = await webhook_endpoints.create_endpoint(
            self._deps, request.url, list(request.event_types), request.description)
        return webhook_mapping.endpoint_with_secret(created)

    async def ListWebhookEndpoints(self, request, context):
        return webhook_mapping.endpoints(await webhook_endpoints.list_endpoints(self._deps))

    async def DisableWebhookEndpoint(self, request, context):
        return webhook_mapping.endpoint(await webhook_endpoints.disable_endpoint(self._deps, request.endpoint_id))

    async def EnableWebhookEndpoint(self, request, context):
        return webhook_mapping.endpoint(await webhook_endpoints.enable_endpoint(self._deps, request.endpoint_id))

    async def DeleteWebhookEndpoint(self, request, context):
        return webhook_mapping.deleted(await webhook_endpoints.delete_endpoint(self._deps, request.endpoint_id))

    async def RotateWebhookEndpointSecret(self, request, context):
        rotated = await webhook_endpoints.rotate_secret(self._deps, request.endpoint_id)
        return webhook_mapping.endpoint_with_secret(rotated)

    async def ListWebhookDeliveries(self, request, context):
        page = await delivery_log.list_deliveries(
            self._deps, request.endpoint_id, request.user_id, request.status, request.limit, request.page_token)
        return webhook_mapping.deliveries(page)

    async def ReplayWebhookEvent(self, request, context):
        return webhook_mapping.replayed(await delivery_log.replay_event(self._deps, request.event_id))

    async def ReplayFailedWebhookDeliveries(self, request, context):
        since = mapping.optional_instant(request, "since")
        return webhook_mapping.replayed(await delivery_log.replay_failed(self._deps, since, request.endpoint_id))
