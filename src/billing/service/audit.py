"""The audit trail of operator actions: each action's entry, written in the transaction of its
change, and the trail read back a page at a time.

An operator request is named by its idempotency key over the whole trail: the entry is the action's
stored answer. A retry finds it and is answered from it (replayed, nothing done again); the same key
with another request is IdempotencyKeyReused; two requests with one key at once both act in their
transaction, one commits, the other's entry meets the unique key (AuditKeyTaken) and its change is
rolled back with it, then it answers from the winner's entry.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Awaitable, Callable

from billing.domain.audit import (
    NO_ACCOUNT, AuditEntry, AuditFilter, AuditPosition, audit_page_size, detail_json, require_action,
    require_operator_reason,
)
from billing.domain.balance import BalanceTotals
from billing.domain.errors import IdempotencyKeyReused
from billing.domain.limits import require_account_id, require_idempotency_key, require_token
from billing.domain.wallet import Wallet
from billing.service.dependencies import Dependencies
from billing.service.operator_inputs import decode_instant, decode_token, encode_token
from billing.service.ports import AuditKeyTaken, UnitOfWork
from billing.service.wallet_change import WalletChange, change_wallet

AUDIT_ID_PREFIX = "aud_"
_TOKEN_KIND = "audit"
# Operator keys are admin keys; a server without authentication (BILLING_AUTHENTICATION=off, local
# use only) has no caller to name, and says so.
UNAUTHENTICATED_OPERATOR = "(authentication off)"


@dataclass(frozen=True)
class ActionRequest:
    """What an operator asked, checked: who, why, under which key, and what (for the fingerprint)."""

    action: str
    operator_key_id: str
    reason: str  # trimmed
    idempotency_key: str
    asked: tuple[tuple[str, Any], ...]  # the request's own fields: a retry must ask the same

    @property
    def fingerprint(self) -> str:
        text = json.dumps([self.action, self.reason, [list(pair) for pair in self.asked]], default=str)
        return hashlib.sha256(text.encode()).hexdigest()


def action_request(action: str, operator_key_id: str, reason: str, idempotency_key: str, **asked: Any) -> ActionRequest:
    """Checks what every action takes: a reason (trimmed, 1..500) and an idempotency key."""
    return ActionRequest(
        action=require_action(action), operator_key_id=operator_key_id or UNAUTHENTICATED_OPERATOR,
        reason=require_operator_reason(reason), idempotency_key=require_idempotency_key(idempotency_key),
        asked=tuple(sorted(asked.items())),
    )


@dataclass(frozen=True)
class ActionResult:
    audit: AuditEntry
    replayed: bool = False


def new_entry(
    request: ActionRequest, account_id: str, before: BalanceTotals | None, after: BalanceTotals | None,
    now: datetime, detail: dict[str, Any],
) -> AuditEntry:
    return AuditEntry(
        audit_id=AUDIT_ID_PREFIX + secrets.token_hex(12), account_id=account_id, action=request.action,
        operator_key_id=request.operator_key_id, reason=request.reason, created_at=now, before=before, after=after,
        detail_json=detail_json(detail), idempotency_key=request.idempotency_key,
        request_fingerprint=request.fingerprint,
    )


@dataclass
class AuditBuilder:
    """WalletChange.audit for one action: the entry from the totals around the change and the
    detail the change filled in; kept here once built (the change ran and will commit with it)."""

    request: ActionRequest
    detail: dict[str, Any] = field(default_factory=dict)
    # What the wallet says after the change, added to the detail (a subscription's state).
    describe: Callable[[Wallet], dict[str, Any]] | None = None
    entry: AuditEntry | None = None

    def __call__(self, before: BalanceTotals, wallet: Wallet, now: datetime) -> AuditEntry:
        if self.describe is not None:
            self.detail.update(self.describe(wallet))
        self.entry = new_entry(self.request, wallet.account.account_id, before, wallet.balance(now).totals, now,
                               self.detail)
        return self.entry


async def earlier_answer(deps: Dependencies, request: ActionRequest) -> ActionResult | None:
    """The answer of an earlier request with this key, or None; IdempotencyKeyReused if it asked otherwise."""
    async with deps.storage.reader() as uow:
        found = await uow.audit_entries.by_idempotency_key(request.idempotency_key)
    if found is None:
        return None
    if found.request_fingerprint != request.fingerprint:
        raise IdempotencyKeyReused("idempotency_key was used for a different request", field="idempotency_key")
    return ActionResult(found, replayed=True)


async def answer_of_winner(deps: Dependencies, request: ActionRequest) -> ActionResult:
    """After AuditKeyTaken: the entry that committed first answers."""
    answer = await earlier_answer(deps, request)
    assert answer is not None, "an entry with this key was committed"
    return answer


async def audited_change(
    deps: Dependencies, request: ActionRequest, account_id: str,
    apply: Callable[[Wallet, datetime, dict[str, Any]], None],
    prepare: Callable[[Wallet, datetime], None] | None = None,
) -> ActionResult:
    """An action on one wallet: `apply` changes it (or raises, changing nothing) and fills in the
    entry's detail; the entry is written in the change's transaction."""
    earlier = await earlier_answer(deps, request)
    if earlier is not None:
        return earlier
    builder = AuditBuilder(request)

    def run(wallet: Wallet, now: datetime) -> None:
        apply(wallet, now, builder.detail)

    try:
        await change_wallet(deps, WalletChange(account_id, run, prepare=prepare, audit=builder))
    except AuditKeyTaken:
        return await answer_of_winner(deps, request)
    assert builder.entry is not None
    return ActionResult(builder.entry)


@dataclass(frozen=True)
class Acted:
    """What an action outside a wallet change did (act() of record_action)."""

    account_id: str
    before: BalanceTotals | None
    after: BalanceTotals | None
    detail: dict[str, Any]


async def record_action(
    deps: Dependencies, request: ActionRequest, act: Callable[[UnitOfWork, datetime], Awaitable[Acted]],
) -> ActionResult:
    """An action whose change is not a wallet's (a key revoked, a refund the provider accepted):
    `act` does it in this transaction (or raises, and nothing is written), and its entry commits with it."""
    try:
        async with deps.storage.transaction() as uow:
            now = deps.clock.now()
            acted = await act(uow, now)
            entry = new_entry(request, acted.account_id, acted.before, acted.after, now, acted.detail)
            if not await uow.audit_entries.add(entry):
                raise AuditKeyTaken(request.idempotency_key)
            await uow.commit()
    except AuditKeyTaken:
        return await answer_of_winner(deps, request)
    return ActionResult(entry)


# --- the trail ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]
    next_page_token: str


async def list_audit_entries(
    deps: Dependencies, user_id: str, action: str, operator_key_id: str, from_at: datetime | None,
    to_at: datetime | None, page_size: int, page_token: str,
) -> AuditPage:
    """Newest first; each filter optional (empty: any)."""
    where = AuditFilter(
        account_id=require_account_id(user_id) if user_id else None,
        action=require_action(action) if action else None,
        operator_key_id=require_token(operator_key_id, field="operator_key_id", max_length=256, required=False) or None,
        from_at=from_at, to_at=to_at,
    )
    size = audit_page_size(page_size)
    before = decode_page_token(page_token)
    async with deps.storage.reader() as uow:
        rows = await uow.audit_entries.page(where, before, size + 1)
    page, more = rows[:size], len(rows) > size
    last = page[-1] if page else None
    return AuditPage(page, encode_page_token(AuditPosition(last.created_at, last.audit_id)) if more and last else "")


def encode_page_token(position: AuditPosition) -> str:
    return encode_token(_TOKEN_KIND, position.created_at.isoformat(), position.audit_id)


def decode_page_token(token: str) -> AuditPosition | None:
    parts = decode_token(token, _TOKEN_KIND, 2)
    if parts is None:
        return None
    created_at, audit_id = parts
    return AuditPosition(decode_instant(created_at), audit_id)


__all__ = ["NO_ACCOUNT", "ActionRequest", "ActionResult", "Acted", "AuditBuilder", "action_request"]
