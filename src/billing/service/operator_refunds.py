"""An operator refunds a payment through the provider (issue 23).

The refund is the provider's: this use case asks for it (the provider's idempotency key derived
from the operator's, so a retry is the same refund) and records the audit entry once the provider
accepted it. The balance changes when the provider's charge.refunded webhook arrives, through the
same path as any refund (service/payment_credits.py refund_payment): the entry's before and after
are the totals at the moment of the request, equal, and its detail names the refund.
"""

from __future__ import annotations

from datetime import datetime

from billing.domain.audit import Action
from billing.domain.errors import AccountNotFound, ActionNotPossible, InvalidArgument, PaymentNotFound
from billing.domain.limits import require_account_id, require_token
from billing.service.audit import Acted, ActionResult, action_request, earlier_answer, record_action
from billing.service.dependencies import Dependencies
from billing.service.ports import UnitOfWork

PAYMENT_ID_LENGTH_MAX = 255
# Payments the provider refunds by their own id: a PaymentIntent or a charge. A subscription period
# recorded under its invoice (the webhook did not name the payment) is refunded in the provider's dashboard.
REFUNDABLE_ID_PREFIXES = ("pi_", "ch_")


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
    provider = deps.payment_provider()
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
    refund = await provider.create_refund(
        payment_id, amount_cents, f"operator-refund:{request.idempotency_key}",
        {"user_id": user_id, "operator_key_id": request.operator_key_id, "reason": request.reason[:400]},
    )

    async def act(uow: UnitOfWork, now: datetime) -> Acted:
        wallet, _ = await uow.wallets.read(user_id, now)
        totals = wallet.balance(now).totals if wallet is not None else None
        detail = {
            "payment_id": payment_id, "refund_id": refund.refund_id, "amount_cents": refund.amount_cents,
            "currency": refund.currency, "refund_status": refund.status,
            "refunded_cents_before": payment.refunded_cents, "payment_amount_cents": payment.amount_cents,
        }
        return Acted(user_id, totals, totals, detail)

    return await record_action(deps, request, act)
