"""Sending an auto top-up attempt to the provider, and what its outcome does to the account.

Runs after the decision committed (service/wallet_change.py starts it in the background). A
success changes nothing here: the credit, and the end of "pending", come with the payment's
webhook (payment_credits.py). A decline or a card that needs its owner is a failure recorded
once per attempt (its idempotency key names the attempt). An outage leaves the attempt
pending: the next touch after RESEND_PENDING_AFTER sends it again, as the same payment.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from billing.domain.auto_topup import REQUIRES_ACTION
from billing.domain.events import TopupDue
from billing.domain.topup_decisions import record_failure
from billing.domain.errors import BillingError
from billing.domain.wallet import Wallet
from billing.service.answer_codec import AnswerCodec
from billing.service.dependencies import Dependencies
from billing.service.provider_events import CheckoutItem, TopupCharge
from billing.service.ports import Unavailable, outage_log
from billing.service.wallet_change import Idempotency, WalletChange, change_wallet

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FailureRecorded:
    seq: int
    turned_off: bool
    replayed: bool = False


FAILURE_ANSWERS = AnswerCodec(FailureRecorded)


async def send_topup_payment(deps: Dependencies, attempt: TopupDue) -> None:
    account_id = attempt.account_id
    try:
        customer_id = await _customer(deps, account_id)
        if customer_id is None:
            deps.metrics.topup("failed")
            await topup_failed(deps, account_id, attempt.seq, "no_customer")
            return
        package = deps.catalog.package(attempt.package_key)
        item = CheckoutItem(
            kind="package", key=package.key, name=package.name, minutes=package.minutes, currency=attempt.currency,
            unit_amount_cents=package.prices_cents[attempt.currency],
        )
        outcome = await deps.payment_provider().charge_off_session(TopupCharge(account_id, customer_id, attempt.seq, item))
    except Unavailable as outage:
        log.warning("auto top-up %s #%d not sent (sent again later): %s", account_id, attempt.seq, outage,
                    extra=outage_log(outage.kind or "payment_provider"))
        return
    except BillingError as refused:
        deps.metrics.topup("failed")
        await topup_failed(deps, account_id, attempt.seq, refused.reason.lower())
        return
    deps.metrics.topup("failed" if outcome.status in ("declined", REQUIRES_ACTION) else "succeeded")
    if outcome.status == "declined":
        await topup_failed(deps, account_id, attempt.seq, outcome.code or "declined")
    elif outcome.status == REQUIRES_ACTION:
        await topup_failed(deps, account_id, attempt.seq, REQUIRES_ACTION)


async def topup_failed(deps: Dependencies, account_id: str, seq: int, code: str) -> None:
    """Records attempt `seq` as failed, once (a later attempt's state is left alone)."""

    def fail(wallet: Wallet, now: datetime) -> FailureRecorded:
        topup = wallet.account.auto_topup
        if topup.seq != seq or not topup.pending:
            return FailureRecorded(seq, turned_off=False)
        return FailureRecorded(seq, turned_off=record_failure(wallet, now, code))

    key = f"topup-failure:{seq}"
    await change_wallet(deps, WalletChange(account_id, fail, idempotency=Idempotency(key, key, FAILURE_ANSWERS)))


async def _customer(deps: Dependencies, account_id: str) -> str | None:
    async with deps.storage.reader() as uow:
        return await uow.payment_profiles.customer_of(account_id)
