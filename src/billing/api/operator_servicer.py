"""OperatorService (issue 23): the operator console's API. Each method maps its request to a use
case (service/operator_*.py) and its answer back (api/operator_mapping.py); a method not yet built
answers UNIMPLEMENTED (the generated base class)."""

from __future__ import annotations

import math
import time
from typing import Awaitable, Callable

from billing.api import operator_action_mapping as action_mapping
from billing.api.caller import caller_key_id
from billing.domain.errors import RateLimited
from billing.domain.rate_limit import RateLimit, TokenBuckets
from billing.service import audit, console_login, operator_actions, operator_refunds, stripe_inbox
from billing.service.dependencies import Dependencies
from billing.v1 import operator_service_pb2_grpc

# Redeeming a console code needs no key: its attempts are limited per process (a code is 256 random
# bits, so this bounds load, not guessing, which is hopeless either way).
REDEEM_LIMIT = RateLimit(per_second=2.0, burst=20.0)


async def _nothing() -> None:
    return None


class OperatorServicer(operator_service_pb2_grpc.OperatorServiceServicer):
    def __init__(self, deps: Dependencies, keys_changed: Callable[[], Awaitable[None]] = _nothing):
        self._deps = deps
        # Refreshes this replica's copy of the stored keys (a revoked key refused, a console key
        # accepted, at once here; other replicas within their refresh interval).
        self._keys_changed = keys_changed
        self._redeem_attempts = TokenBuckets(max_keys=1)

    # --- actions and the audit trail (the "actions" part of issue 23) --------------------------

    async def OperatorGrant(self, request, context):
        result = await operator_actions.grant(
            self._deps, caller_key_id(), request.user_id, request.source, request.seconds,
            action_mapping.optional_instant(request, "expires_at"), request.reason, request.idempotency_key,
        )
        return action_mapping.action_response(result)

    async def OperatorClawBack(self, request, context):
        result = await operator_actions.claw_back(
            self._deps, caller_key_id(), request.user_id, request.seconds, request.reason, request.idempotency_key)
        return action_mapping.action_response(result)

    async def OperatorRefundPayment(self, request, context):
        result = await operator_refunds.refund_payment(
            self._deps, caller_key_id(), request.user_id, request.payment_id, request.amount_cents, request.reason,
            request.idempotency_key,
        )
        return action_mapping.action_response(result)

    async def OperatorCancelSubscription(self, request, context):
        result = await operator_actions.cancel_subscription(
            self._deps, caller_key_id(), request.user_id, request.reason, request.idempotency_key)
        return action_mapping.action_response(result)

    async def OperatorChangeSubscription(self, request, context):
        result = await operator_actions.change_subscription(
            self._deps, caller_key_id(), request.user_id, request.plan_key, request.reason, request.idempotency_key)
        return action_mapping.action_response(result)

    async def OperatorDisableAutoTopup(self, request, context):
        result = await operator_actions.disable_auto_topup(
            self._deps, caller_key_id(), request.user_id, request.reason, request.idempotency_key)
        return action_mapping.action_response(result)

    async def OperatorRevokeKey(self, request, context):
        result = await operator_actions.revoke_key(
            self._deps, caller_key_id(), request.key_id, request.reason, request.idempotency_key)
        if not result.replayed:
            await self._keys_changed()
        return action_mapping.action_response(result)

    async def ListAuditEntries(self, request, context):
        page = await audit.list_audit_entries(
            self._deps, request.user_id, request.action, request.operator_key_id,
            action_mapping.optional_instant(request, "from_at"), action_mapping.optional_instant(request, "to_at"),
            request.page_size, request.page_token,
        )
        return action_mapping.audit_page(page)

    # --- Stripe's deliveries -------------------------------------------------------------------

    async def ListStripeEvents(self, request, context):
        page = await stripe_inbox.list_stripe_events(
            self._deps, request.outcome, request.user_id, request.page_size, request.page_token)
        return action_mapping.inbox_page(page)

    async def ReprocessStripeEvent(self, request, context):
        result = await stripe_inbox.reprocess_stripe_event(
            self._deps, caller_key_id(), request.event_id, request.reason, request.idempotency_key)
        return action_mapping.reprocessed(result)

    # --- signing in ----------------------------------------------------------------------------

    async def RedeemConsoleLogin(self, request, context):
        wait_seconds = self._redeem_attempts.take("redeem", REDEEM_LIMIT, time.monotonic())
        if wait_seconds > 0:
            raise RateLimited("too many sign-in attempts; retry after Retry-After seconds",
                              retry_after_seconds=max(1, math.ceil(wait_seconds)))
        credentials = await console_login.redeem_console_login(self._deps, request.code)
        await self._keys_changed()  # the key signs its first call on this replica without waiting
        return action_mapping.console_credentials(credentials)
