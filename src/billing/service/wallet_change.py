"""The one path of every change to a wallet.

A write use case describes its change (WalletChange) and calls change_wallet(); this module
owns the rest: one change per account at a time in this process (the account gate), the
stored answer of an idempotency key (checked, replayed, stored with the change), unlocked
attempts with a version check and their retries, the transaction fallback, and resume tokens.
A change is a plain function of (wallet, now): it changes the wallet through the domain's
methods and returns its result, or raises a BillingError having changed nothing.

Which unit of work an attempt gets is fixed here (unlocked first, a transaction last); how
it reaches the database (a statement shared with concurrent requests, or its own) is the
adapter's, and so is the verdict that a change needs a transaction (NeedsTransaction).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Awaitable, Callable, Generic, TypeVar

from billing.domain.audit import AuditEntry
from billing.domain.balance import BalanceTotals
from billing.domain.credit_expiry import next_notice_at, notice_due
from billing.domain.errors import AccountNotFound, BillingError, IdempotencyKeyReused
from billing.domain.events import WalletEvent
from billing.domain.idempotency import StoredAnswer
from billing.domain.resume_tokens import redeemable
from billing.domain.subscription import expired_buckets_needed_since
from billing.domain.wallet import Account, Wallet
from billing.service.answer_codec import AnswerCodec
from billing.service.dependencies import Dependencies
from billing.service.outbound_events import record_outbound
from billing.service.ports import AuditKeyTaken, ConcurrentModification, NeedsTransaction, UnitOfWork

R = TypeVar("R")

# Unlocked attempts before a transaction: a conflict needs two writers on one account at the
# same instant, so a retry almost always succeeds; the transaction bounds the worst case.
UNLOCKED_ATTEMPTS = 4


@dataclass(frozen=True)
class Idempotency(Generic[R]):
    key: str
    fingerprint: str  # what was asked: a retry with the same key must ask the same
    codec: AnswerCodec[R]


@dataclass(frozen=True)
class ResumeTokenUse:
    token: str
    operation: str


@dataclass(frozen=True)
class WalletChange(Generic[R]):
    account_id: str
    apply: Callable[[Wallet, datetime], R]
    # Runs before `apply` and stands even when `apply` refuses (today's daily bonus, granted
    # on first touch whatever the request's fate).
    prepare: Callable[[Wallet, datetime], None] | None = None
    idempotency: Idempotency[R] | None = None
    resume: ResumeTokenUse | None = None  # redeemed with the change, in the same transaction
    opens: Account | None = None  # created first when it does not exist (wallet.opened_now says so)
    # Payments (by the provider's id) loaded into wallet.payments for the change (a refund
    # needs the payment it refunds); recorded ones are saved with it.
    payment_ids: tuple[str, ...] = ()
    # A change to holds (domain/holds.py): every open hold of the account is loaded into
    # wallet.holds, and `hold_id`'s whatever its state. (Upkeep loads them too when one is due.)
    loads_holds: bool = False
    hold_id: str | None = None
    # For a change that is its own idempotency (a hold's create): true when `apply` will only
    # answer what an earlier request did, so its resume token is not checked or spent again.
    replays: Callable[[Wallet], bool] | None = None
    # Without an idempotency key, a change whose write committed but whose answer was lost (a
    # connection that died under the statement) is applied again. Only a change that checks the
    # wallet's own state first (today's bonus: once a day; opening: once per account) may say so.
    repeatable: bool = False
    # An operator action's audit entry (service/audit.py), built once the change is applied from the
    # totals before it (upkeep done) and the wallet after, and written in the change's transaction
    # (an audited change runs in one). Its idempotency key is the change's: unique over the trail,
    # so a duplicate request rolls back (AuditKeyTaken) and is answered from the entry that won.
    audit: Callable[[BalanceTotals, Wallet, datetime], AuditEntry] | None = None
    # Writes to other tables that belong to the change, in its transaction (a change with either
    # runs in one; an unlocked attempt hands over to it once its read shows the change is no
    # replay, so a replay stays one shared read). A replay runs neither: what it answers committed
    # with them. `guard` runs before `apply` and refuses by raising (nothing of the change is
    # written: a payment another account owns); `also` runs once the change is applied, with its
    # result (a webhook delivery's record of the event that made the credit).
    guard: Callable[[UnitOfWork, datetime], Awaitable[None]] | None = None
    also: Callable[[UnitOfWork, R, datetime], Awaitable[None]] | None = None

    def __post_init__(self) -> None:
        if self.idempotency is None and not self.repeatable and self.audit is None:
            raise ValueError("a wallet change needs an idempotency key or an audit entry, or must be repeatable")


async def change_wallet(deps: Dependencies, change: WalletChange[R]) -> R:
    result, events = await _change(deps, change)
    deps.bus.publish(deps, events)
    return result


async def _change(deps: Dependencies, change: WalletChange[R]) -> tuple[R, list[WalletEvent]]:
    async with deps.account_gate.passage(change.account_id):
        # A change to holds writes them in a transaction only: an unlocked attempt would read the
        # wallet just to learn that (NeedsTransaction) and read it again.
        # An audited change too: its entry is one more statement of the transaction.
        for _ in range(0 if change.loads_holds or change.audit is not None else UNLOCKED_ATTEMPTS):
            try:
                return await _attempt(deps, deps.storage.unlocked(), change, locked=False)
            except ConcurrentModification:
                continue
            except NeedsTransaction:
                break
        return await _attempt(deps, deps.storage.transaction(), change, locked=True)


async def _attempt(
    deps: Dependencies, unit: UnitOfWork, change: WalletChange[R], *, locked: bool
) -> tuple[R, list[WalletEvent]]:
    now = deps.clock.now()
    resume = change.resume
    async with unit as uow:
        # Asked first: a unit of work that cannot carry a token (or an insert) says so before any read.
        resume_tokens = uow.resume_tokens if resume is not None else None
        created = await uow.wallets.add_account(change.opens) if change.opens is not None else False
        key = change.idempotency.key if change.idempotency else None
        wallet, stored = await uow.wallets.load_for_change(change.account_id, now, key)
        if wallet is None:
            raise AccountNotFound(f"no account for user_id {change.account_id!r}", field="user_id")
        if stored is not None:
            return _replay(change, stored), []
        if change.guard is not None or change.also is not None:
            if not locked:
                raise NeedsTransaction("a change writing other tables runs in a transaction")
            if change.guard is not None:
                await change.guard(uow, now)  # raising leaves the unit of work: rolled back
        closing_since = _expired_buckets_needed_since(wallet, now)
        if closing_since is not None:
            # Closing an ended period reads its expired bucket: once a period, a second read.
            wallet, _ = await uow.wallets.load_for_change(change.account_id, now, key, closing_since)
            assert wallet is not None
        for payment_id in change.payment_ids:
            payment = await uow.payments.get(change.account_id, payment_id)
            if payment is not None:
                wallet.payments[payment_id] = payment
        if created:
            wallet.mark_opened()
        if change.loads_holds or wallet.account.holds.expiry_due(now):
            await _load_holds(uow, wallet, change.hold_id)
        # A replay answers what the first request did, which spent the token: it is not spent again.
        replaying = change.replays is not None and change.replays(wallet)
        redeeming = resume is not None and resume_tokens is not None and not replaying and redeemable(
            await resume_tokens.get(change.account_id, resume.token), resume.operation, now)
        if change.prepare is not None:
            change.prepare(wallet, now)
        before = wallet.balance(now).totals if change.audit is not None else None
        result = await _apply_or_keep_prepared(deps, uow, wallet, now, change)
        if redeeming:
            assert resume is not None and resume_tokens is not None
            await resume_tokens.mark_used(change.account_id, resume.token, now)
        await _save(deps, uow, wallet, now, _answer(change, result))
        if change.also is not None:
            await change.also(uow, result, now)
        if change.audit is not None:
            assert before is not None
            entry = change.audit(before, wallet, now)
            if not await uow.audit_entries.add(entry):
                raise AuditKeyTaken(entry.idempotency_key)  # leaves the unit of work: rolled back
        await uow.commit()
        events = uow.collect_new_events()
    return result, events


def _expired_buckets_needed_since(wallet: Wallet, now: datetime) -> datetime | None:
    """Closing an ended period reads its expired bucket; a credit expiry notice due reads the
    buckets expired since it fell due: either is once per period or bucket, a second read."""
    instants = [expired_buckets_needed_since(wallet.account.subscription, now)]
    due_at = wallet.account.credit_notice_at
    if due_at is not None and notice_due(wallet, now):
        instants.append(due_at - timedelta(microseconds=1))  # a bucket expiring at that instant included
    due = [instant for instant in instants if instant is not None]
    return min(due) if due else None


async def _load_holds(uow: UnitOfWork, wallet: Wallet, hold_id: str | None) -> None:
    holds = uow.holds  # NeedsTransaction when unlocked, before any read
    wallet.holds = {hold.hold_id: hold for hold in await holds.open_and_one(wallet.account.account_id, hold_id)}
    wallet.open_holds_loaded = True
    assert sum(h.is_open for h in wallet.holds.values()) == wallet.account.holds.open_count, "hold summary out of step"


async def _save(
    deps: Dependencies, uow: UnitOfWork, wallet: Wallet, now: datetime, answer: StoredAnswer | None,
) -> None:
    if not notice_due(wallet, now):  # else upkeep has not announced what fell due: it stays due
        wallet.set_credit_notice_at(next_notice_at(wallet.buckets))
    record_outbound(wallet, now, deps.catalog)  # written with the change: no event lost or invented
    uow.wallets.save(wallet, now, answer)
    for payment_id in wallet.changed_payment_ids:
        await uow.payments.put(wallet.payments[payment_id])
    for hold_id in wallet.changed_hold_ids:
        await uow.holds.put(wallet.holds[hold_id], now)


async def _apply_or_keep_prepared(
    deps: Dependencies, uow: UnitOfWork, wallet: Wallet, now: datetime, change: WalletChange[R]
) -> R:
    """A refusal keeps what `prepare` did (saved without an answer, so the same key may succeed
    later) and nothing else: a change raises before it changes the wallet."""
    entries_before = len(wallet.new_entries)
    account_before = wallet.account
    payments_before = len(wallet.changed_payment_ids)
    holds_before = len(wallet.changed_hold_ids)
    buckets_before = wallet.buckets
    try:
        return change.apply(wallet, now)
    except BillingError:
        changed = len(wallet.new_entries) != entries_before or len(wallet.changed_payment_ids) != payments_before
        changed = changed or len(wallet.changed_hold_ids) != holds_before or wallet.buckets != buckets_before
        if changed or wallet.account != account_before:
            # Saving it would write a debit or credit without its answer: refuse to write at all.
            raise RuntimeError("a refused change must leave the wallet as it found it") from None
        await _save(deps, uow, wallet, now, None)
        await uow.commit()
        deps.bus.publish(deps, uow.collect_new_events())  # what `prepare` decided stands
        raise


def _replay(change: WalletChange[R], stored: StoredAnswer) -> R:
    assert change.idempotency is not None
    if stored.request_fingerprint != change.idempotency.fingerprint:
        raise IdempotencyKeyReused("idempotency_key was used for a different request", field="idempotency_key")
    return change.idempotency.codec.decode(stored.document, replayed=True)


def _answer(change: WalletChange[R], result: R) -> StoredAnswer | None:
    if change.idempotency is None:
        return None
    idempotency = change.idempotency
    return StoredAnswer(idempotency.key, idempotency.fingerprint, idempotency.codec.encode(result))
