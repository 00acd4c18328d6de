"""The audit trail of operator actions (issue 23): what each entry holds, and the rules every
action's input follows (a reason, an idempotency key, the paging of the trail)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping

from billing.domain.balance import BalanceTotals
from billing.domain.errors import InvalidArgument
from billing.domain.limits import REASON_LENGTH_MAX, bounded

NO_ACCOUNT = ""  # the account_id of an action on no account (a service or admin key revoked)
AUDIT_PAGE_DEFAULT = 50
AUDIT_PAGE_MAX = 200
OPERATOR_SECONDS_MAX = 31_536_000  # a year of AI time: the most one grant or claw back moves


class Action:
    GRANT = "grant"
    CLAW_BACK = "claw_back"
    REFUND_PAYMENT = "refund_payment"
    CANCEL_SUBSCRIPTION = "cancel_subscription"
    CHANGE_SUBSCRIPTION = "change_subscription"
    DISABLE_AUTO_TOPUP = "disable_auto_topup"
    REVOKE_KEY = "revoke_key"
    REPROCESS_STRIPE_EVENT = "reprocess_stripe_event"


ACTIONS = (
    Action.GRANT, Action.CLAW_BACK, Action.REFUND_PAYMENT, Action.CANCEL_SUBSCRIPTION, Action.CHANGE_SUBSCRIPTION,
    Action.DISABLE_AUTO_TOPUP, Action.REVOKE_KEY, Action.REPROCESS_STRIPE_EVENT,
)
OPERATOR_GRANT_SOURCES = ("gift", "adjustment")


@dataclass(frozen=True)
class AuditEntry:
    """One operator action. detail_json: a JSON object (what was asked and what was done), kept as
    its text so the entry is a plain value (stored as an idempotent answer, compared in tests)."""

    audit_id: str
    account_id: str  # NO_ACCOUNT for an action on no account
    action: str
    operator_key_id: str
    reason: str
    created_at: datetime
    before: BalanceTotals | None
    after: BalanceTotals | None
    detail_json: str
    idempotency_key: str
    request_fingerprint: str

    @property
    def detail(self) -> dict[str, Any]:
        detail = json.loads(self.detail_json)
        assert isinstance(detail, dict)
        return detail


def detail_json(detail: Mapping[str, Any]) -> str:
    return json.dumps(dict(detail), sort_keys=True, separators=(",", ":"), default=str)


# C0 and C1 controls, and the bidirectional embeddings, overrides and isolates (U+202A..U+202E,
# U+2066..U+2069) that would make the trail show one text and store another ("Trojan Source").
_REFUSED_IN_REASON = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def require_operator_reason(reason: str) -> str:
    """Every action needs a reason: 1..500 characters once trimmed, no control characters nor bidi overrides. The
    trimmed text is what the trail keeps."""
    trimmed = reason.strip()
    if not trimmed:
        raise InvalidArgument("reason is required: say why (1..500 characters)", field="reason")
    if len(trimmed) > REASON_LENGTH_MAX:
        raise InvalidArgument(f"reason is longer than {REASON_LENGTH_MAX} characters", field="reason")
    if _REFUSED_IN_REASON.search(trimmed):
        raise InvalidArgument("reason may not contain control characters (C0, C1) or bidirectional overrides",
                              field="reason")
    return trimmed


PLAN_KEY_LENGTH_MAX = 64
_PLAN_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def require_plan_key(plan_key: str) -> str:
    """Checked before it names anything (the request's fingerprint, the trail): a catalog key's shape,
    bounded; whether the catalog has it is the use case's question."""
    if not plan_key:
        raise InvalidArgument("plan_key is required", field="plan_key")
    if len(plan_key) > PLAN_KEY_LENGTH_MAX or not _PLAN_KEY.fullmatch(plan_key):
        raise InvalidArgument(f"plan_key must be a catalog key: ASCII letters, digits, '.', '_' or '-', at most "
                              f"{PLAN_KEY_LENGTH_MAX} characters", field="plan_key")
    return plan_key


def require_action(action: str) -> str:
    if action not in ACTIONS:
        raise InvalidArgument(f"action must be one of {', '.join(ACTIONS)}", field="action")
    return action


def audit_page_size(page_size: int) -> int:
    return bounded(page_size, "page_size", AUDIT_PAGE_DEFAULT, AUDIT_PAGE_MAX)


@dataclass(frozen=True)
class AuditPosition:
    """Where a page of the trail (newest first) stopped: the last entry it showed."""

    created_at: datetime
    audit_id: str


@dataclass(frozen=True)
class AuditFilter:
    account_id: str | None = None
    action: str | None = None
    operator_key_id: str | None = None
    from_at: datetime | None = None  # created at or after
    to_at: datetime | None = None  # created before

    def __post_init__(self) -> None:
        if self.from_at is not None and self.to_at is not None and self.to_at <= self.from_at:
            raise InvalidArgument("to_at must be after from_at", field="to_at")
