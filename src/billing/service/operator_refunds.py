"""An operator refunds a payment through the provider (issue 23).

The refund is the provider's; the balance changes when its charge.refunded webhook arrives, through
the same path as any refund (service/payment_credits.py refund_payment). A refund must never happen
twice nor exist without its audit entry, whatever fails between the provider's answer and the
commit and however late the retry (the provider forgets its idempotency keys after 24 h):

1. the request is recorded first, in its own committed transaction: a refund intent keyed by the
   operator's idempotency key (service/refund_intents.py). A concurrent duplicate fails to insert it
   and answers RequestInProgress (retry), or the first answer once there is one;
2. the provider is asked with an idempotency key derived from the operator's, the intent's id in
   the refund's metadata;
3. one transaction marks the intent done (the refund's id) and writes the audit entry.

A retry finds the intent. Done: the audit entry answers (replayed). Still 'requested': the provider
is asked whether a refund with the intent's id in its metadata exists on the payment, and only if
none does is one created; then 3. The payment's state is checked when the intent is recorded only:
a retry after the webhook applied the refund completes it (no "refunded in full" refusal).
The entry's before and after are the account's totals when it is written, equal.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from datetime import datetime, timedelta

from billing.domain.audit import Action
from billing.domain.errors import (
    AccountNotFound, ActionNotPossible, IdempotencyKeyReused, InvalidArgument, PaymentNotFound,
    PaymentProviderRefused, RequestInProgress,
)
from billing.domain.limits import require_account_id, require_token
from billing.service.audit import Acted, ActionRequest, ActionResult, action_request, earlier_answer, record_action
from billing.service.dependencies import Dependencies
from billing.service.ports import UnitOfWork
from billing.service.provider_events import RefundCreated
from billing.service.refund_intents import INTENT_ID_PREFIX, METADATA_KEY, REQUESTED, RefundIntent

log = logging.getLogger(__name__)

PAYMENT_ID_LENGTH_MAX = 255
# Payments the provider refunds by their own id: a PaymentIntent or a charge. A subscription period
# recorded under its invoice (the webhook did not name the payment) is refunded in the provider's dashboard.
REFUNDABLE_ID_PREFIXES = ("pi_", "ch_")
# How long the request carrying out an intent has it to itself (a duplicate meanwhile: retry). Past
# it (the request died, or the provider is that slow) another may take over: safe, as the provider's
# idempotency key and the metadata lookup find the first attempt's refund.
CLAIM_LEASE = timedelta(seconds=60)
RETRY_AFTER_SECONDS = 2


async def refund_payment(
    deps: Dependencies, operator_key_id: str, user_id: str, payment_id: str, amount_cents: int, reason: str,
    idempotency_key: str,
) -> ActionResult:
    """amount_cents 0: what is not refunded yet. More than that is refused (the provider would too)."""
    require_account_id(user_id)
    require_token(payment_id, field="payment_id", max_length=PAYMENT_ID_LENGTH_MAX, required=True)
    if amount_cents < 0:
        raise InvalidArgument("amount_cents must be 0 (the rest) or positive", field="amount_cents")
    request = action_request(Action.REFUND_PAYMENT, operator_key_id, reason, idempotency_key, user_id=user_id,
                             payment_id=payment_id, amount_cents=amount_cents)
    earlier = await earlier_answer(deps, request)
    if earlier is not None:
        return earlier
    recorded = await _intent_of(deps, request)
    if recorded is None:
        taken = await _record_intent(deps, request, user_id, payment_id, amount_cents)
    else:
        taken = await _claim(deps, request, recorded)
    if isinstance(taken, ActionResult):
        return taken
    return await _carry_out(deps, request, taken)


async def _intent_of(deps: Dependencies, request: ActionRequest) -> RefundIntent | None:
    async with deps.storage.reader() as uow:
        intent = await uow.refund_intents.by_idempotency_key(request.idempotency_key)
    if intent is not None and intent.request_fingerprint != request.fingerprint:
        raise IdempotencyKeyReused("idempotency_key was used for a different request", field="idempotency_key")
    return intent


async def _record_intent(
    deps: Dependencies, request: ActionRequest, user_id: str, payment_id: str, amount_cents: int,
) -> RefundIntent | ActionResult:
    """Checks the payment and records the request (committed) before the provider hears of it."""
    async with deps.storage.reader() as uow:
        if not await uow.wallets.exists(user_id):
            raise AccountNotFound(f"no account for user_id {user_id!r}", field="user_id")
        payment = await uow.payments.get(user_id, payment_id)
    if payment is None:
        raise PaymentNotFound(f"the account has no payment {payment_id!r}", field="payment_id")
    remaining = payment.amount_cents - payment.refunded_cents
    if remaining <= 0:
        raise ActionNotPossible(f"payment {payment_id} is refunded in full already", field="payment_id")
    if amount_cents > remaining:
        raise InvalidArgument(
            f"amount_cents {amount_cents} is more than the {remaining} not refunded yet", field="amount_cents")
    if not payment_id.startswith(REFUNDABLE_ID_PREFIXES):
        raise ActionNotPossible(
            f"{payment_id} is an invoice's record, not a payment the provider refunds by id: refund it in the "
            "provider's dashboard (its webhook applies it here as any refund)", field="payment_id")
    now = deps.clock.now()
    intent = RefundIntent(
        account_id=user_id, intent_id=INTENT_ID_PREFIX + secrets.token_hex(12),
        idempotency_key=request.idempotency_key, request_fingerprint=request.fingerprint,
        operator_key_id=request.operator_key_id, payment_id=payment_id, amount_cents=amount_cents,
        reason=request.reason, payment_amount_cents=payment.amount_cents,
        refunded_cents_before=payment.refunded_cents, state=REQUESTED, refund_id=None, created_at=now,
        claimed_until=now + CLAIM_LEASE, completed_at=None, claim_token=secrets.token_hex(16),
    )
    async with deps.storage.transaction() as uow:
        added = await uow.refund_intents.add(intent)
        await uow.commit()
    if added:
        return intent
    # A duplicate recorded it first, between our look and our insert: it is carrying it out.
    found = await _intent_of(deps, request)
    assert found is not None, "an intent with this key was committed"
    return await _claim(deps, request, found)


async def _claim(deps: Dependencies, request: ActionRequest, intent: RefundIntent) -> RefundIntent | ActionResult:
    """An intent recorded by an earlier request: its answer if it is done, else this request takes it
    over once no other request is carrying it out."""
    if intent.state != REQUESTED:
        return await _answer_of_done(deps, request)
    now = deps.clock.now()
    token = secrets.token_hex(16)
    async with deps.storage.transaction() as uow:
        claimed = await uow.refund_intents.claim(intent, now, now + CLAIM_LEASE, token)
        await uow.commit()
    if claimed:
        return dataclasses.replace(intent, claim_token=token)
    earlier = await earlier_answer(deps, request)  # done meanwhile
    if earlier is not None:
        return earlier
    raise RequestInProgress("a refund with this idempotency_key is being carried out; retry with the same key",
                            retry_after_seconds=RETRY_AFTER_SECONDS)


async def _answer_of_done(deps: Dependencies, request: ActionRequest) -> ActionResult:
    answer = await earlier_answer(deps, request)
    assert answer is not None, "a refunded intent commits with its audit entry"
    return answer


async def _carry_out(deps: Dependencies, request: ActionRequest, intent: RefundIntent) -> ActionResult:
    try:
        refund = await _provider_refund(deps, request, intent)
        return await _complete(deps, request, intent, refund)
    except PaymentProviderRefused:
        # A final refusal: no refund exists (a first attempt's would have been found): the request
        # leaves nothing, as any refused action, and its key may be used again.
        await _settle(deps, intent, remove=True)
        raise
    except BaseException:
        await _settle(deps, intent, remove=False)
        raise


async def _provider_refund(deps: Dependencies, request: ActionRequest, intent: RefundIntent) -> RefundCreated:
    provider = deps.payment_provider()
    existing = await provider.find_refund(intent.payment_id, METADATA_KEY, intent.intent_id)
    if existing is not None:
        return existing
    metadata = {METADATA_KEY: intent.intent_id, "user_id": intent.account_id,
                "operator_key_id": request.operator_key_id, "reason": request.reason[:400]}
    return await provider.create_refund(
        intent.payment_id, intent.amount_cents, f"operator-refund:{request.idempotency_key}", metadata)


async def _complete(
    deps: Dependencies, request: ActionRequest, intent: RefundIntent, refund: RefundCreated,
) -> ActionResult:
    async def act(uow: UnitOfWork, now: datetime) -> Acted:
        if not await uow.refund_intents.complete(intent, refund.refund_id, now):
            raise _ClaimLost()  # another request completed it, or carries it out now
        wallet, _ = await uow.wallets.read(intent.account_id, now)
        totals = wallet.balance(now).totals if wallet is not None else None
        detail = {
            "payment_id": intent.payment_id, "refund_id": refund.refund_id, "amount_cents": refund.amount_cents,
            "currency": refund.currency, "refund_status": refund.status, "refund_intent_id": intent.intent_id,
            "refunded_cents_before": intent.refunded_cents_before,
            "payment_amount_cents": intent.payment_amount_cents,
        }
        return Acted(intent.account_id, totals, totals, detail)

    try:
        return await record_action(deps, request, act)
    except _ClaimLost:
        earlier = await earlier_answer(deps, request)  # the other request's entry answers
        if earlier is not None:
            return earlier
        raise RequestInProgress("a refund with this idempotency_key is being carried out; retry with the same key",
                                retry_after_seconds=RETRY_AFTER_SECONDS) from None


class _ClaimLost(Exception):
    """This request's lease ran out and another took the intent over (or completed it)."""


async def _settle(deps: Dependencies, intent: RefundIntent, *, remove: bool) -> None:
    """After a failure: frees the intent for a retry at once (or removes a refused one). Best effort:
    if the database is what failed, the lease runs out by itself."""
    try:
        async with deps.storage.transaction() as uow:
            if remove:
                await uow.refund_intents.remove(intent)
            else:
                await uow.refund_intents.release(intent, deps.clock.now())
            await uow.commit()
    except Exception:  # noqa: BLE001 - the original failure is what the caller must see
        log.warning("could not release refund intent %s; it frees itself within %s", intent.intent_id, CLAIM_LEASE,
                    exc_info=True)
