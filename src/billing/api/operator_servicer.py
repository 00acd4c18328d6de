"""OperatorService (issue 23): the operator console's API. Each method maps its request to a use
case (service/operator_*.py, audit.py, stripe_inbox.py, console_login.py ...) and its answer back
(api/operator_mapping.py for the reads, api/operator_action_mapping.py for the actions)."""

from __future__ import annotations

import math
import time
from typing import Awaitable, Callable

from google.api import httpbody_pb2

from billing.api import operator_action_mapping as action_mapping
from billing.api import operator_mapping
from billing.api.caller import caller_key_id
from billing.api.mapping import optional_instant
from billing.domain.errors import RateLimited
from billing.domain.rate_limit import RateLimit, TokenBuckets
from billing.service import audit, console_login, operator_actions, operator_refunds, stripe_inbox
from billing.service import migration_runs, operator_account, operator_health, operator_ledger, operator_search
from billing.service import operator_usage
from billing.service.dependencies import Dependencies
from billing.service.ledger_csv import csv_lines, trailer
from billing.v1 import operator_service_pb2_grpc

# An optional Timestamp field as a datetime, or None; out of the Timestamp's range: InvalidArgument(field).
_at = optional_instant

# Redeeming a console code needs no key: its attempts are limited per caller address in each process
# (a code is 256 random bits, so this bounds load, not guessing, which is hopeless either way). Per
# address, so one client flooding the endpoint cannot lock another out; the number of addresses
# tracked is bounded (TokenBuckets forgets full buckets first, and all at once only if it must).
REDEEM_LIMIT = RateLimit(per_second=2.0, burst=20.0)
REDEEM_ADDRESSES_MAX = 1024
CALLER_ADDRESS_LENGTH_MAX = 64


CSV_CONTENT_TYPE = "text/csv; charset=utf-8"


async def _nothing() -> None:
    return None


class OperatorServicer(operator_service_pb2_grpc.OperatorServiceServicer):
    def __init__(self, deps: Dependencies, keys_changed: Callable[[], Awaitable[None]] = _nothing):
        self._deps = deps
        # Refreshes this replica's copy of the stored keys (a revoked key refused, a console key
        # accepted, at once here; other replicas within their refresh interval).
        self._keys_changed = keys_changed
        self._redeem_attempts = TokenBuckets(max_keys=REDEEM_ADDRESSES_MAX)

    # --- Reads (accounts, ledger, usage, operations) ---------------------------------------------

    async def SearchAccounts(self, request, context):
        return operator_mapping.search(await operator_search.search_accounts(self._deps, request.query, request.limit))

    async def GetAccountOverview(self, request, context):
        return operator_mapping.overview(await operator_account.get_account_overview(self._deps, request.user_id))

    async def ListAccountLedger(self, request, context):
        page = await operator_ledger.list_account_ledger(
            self._deps, request.user_id, list(request.types), _at(request, "from_at"), _at(request, "to_at"),
            request.page_size, request.page_token, request.order)
        return operator_mapping.ledger(page)

    async def ExportAccountLedger(self, request, context):
        chunks = operator_ledger.export_account_ledger(
            self._deps, request.user_id, list(request.types), _at(request, "from_at"), _at(request, "to_at"))
        first = True
        async for chunk in chunks:
            data = csv_lines(chunk.lines, header=first)
            if chunk.end is not None:
                data += trailer(chunk.end)  # a cut stream (an error is a status, not a clean end) lacks it
            yield httpbody_pb2.HttpBody(content_type=CSV_CONTENT_TYPE, data=data)
            first = False

    async def GetAccountUsage(self, request, context):
        return operator_mapping.usage(await operator_usage.get_account_usage(self._deps, request.user_id, request.days))

    async def ListMigrationRuns(self, request, context):
        page = await migration_runs.list_migration_runs(self._deps, request.page_size, request.page_token)
        return operator_mapping.migration_runs(page)

    async def GetServiceHealth(self, request, context):
        return operator_mapping.health(await operator_health.get_service_health(self._deps))

    async def GetServiceActivity(self, request, context):
        return operator_mapping.activity(await operator_health.get_service_activity(self._deps, request.hours))

    # --- actions and the audit trail (the "actions" part of issue 23) --------------------------

    async def OperatorGrant(self, request, context):
        result = await operator_actions.grant(
            self._deps, caller_key_id(), request.user_id, request.source, request.seconds,
            _at(request, "expires_at"), request.reason, request.idempotency_key,
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
            _at(request, "from_at"), _at(request, "to_at"),
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
        wait_seconds = self._redeem_attempts.take(caller_address(context), REDEEM_LIMIT, time.monotonic())
        if wait_seconds > 0:
            raise RateLimited("too many sign-in attempts; retry after Retry-After seconds",
                              retry_after_seconds=max(1, math.ceil(wait_seconds)))
        credentials = await console_login.redeem_console_login(self._deps, request.code)
        await self._keys_changed()  # the key signs its first call on this replica without waiting
        return action_mapping.console_credentials(credentials)


def caller_address(context) -> str:
    """Who is calling, for a per-client limit: through Envoy, the address it appended last to
    x-forwarded-for (use_remote_address: the TCP peer it saw; earlier entries are the client's own
    say); called directly, the gRPC peer ("ipv4:127.0.0.1:53412", the port left out)."""
    forwarded = [value for name, value in (context.invocation_metadata() or ()) if name == "x-forwarded-for"]
    if forwarded:
        address = str(forwarded[-1]).rsplit(",", 1)[-1].strip()
    else:
        peer = str(context.peer() or "")
        address = peer.rsplit(":", 1)[0] if peer.count(":") >= 2 else peer
    return address[:CALLER_ADDRESS_LENGTH_MAX] or "unknown"
