"""SearchAccounts: an account by user id prefix, or by a Stripe customer, payment or subscription id."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from billing.domain.balance import BalanceTotals
from billing.domain.errors import InvalidArgument
from billing.domain.limits import ACCOUNT_ID_LENGTH_MAX
from billing.service.dependencies import Dependencies
from billing.service.operator_inputs import bounded

QUERY_LENGTH_MAX = 200
SEARCH_LIMIT_DEFAULT, SEARCH_LIMIT_MAX = 20, 50
USER_ID_PREFIX = "user_id_prefix"
# What a Stripe id looks like by its prefix; the id is then looked up exactly.
STRIPE_KINDS = (
    (("cus_",), "stripe_customer"),
    (("pi_", "ch_", "cs_", "in_"), "stripe_payment"),
    (("sub_",), "stripe_subscription"),
)


@dataclass(frozen=True)
class AccountFound:
    user_id: str
    matched_by: str
    plan_key: str
    subscription_status: str
    totals: BalanceTotals
    created_at: datetime


def stripe_kind(query: str) -> str | None:
    for prefixes, kind in STRIPE_KINDS:
        if query.startswith(prefixes):
            return kind
    return None


def require_query(query: str) -> str:
    if not query:
        raise InvalidArgument("query is required", field="query")
    if len(query) > QUERY_LENGTH_MAX:
        raise InvalidArgument(f"query is longer than {QUERY_LENGTH_MAX} characters", field="query")
    if not query.isprintable():
        raise InvalidArgument("query may not hold control characters", field="query")
    return query


async def search_accounts(deps: Dependencies, query: str, limit: int) -> list[AccountFound]:
    """A Stripe id's account first (an id that looks like one), then user ids with the prefix, in order.
    Totals are as of now, read without the accounts' upkeep (a search writes nothing)."""
    require_query(query)
    size = bounded(limit, "limit", SEARCH_LIMIT_DEFAULT, SEARCH_LIMIT_MAX)
    reads = deps.console_reads()
    matched: list[tuple[str, str]] = []
    kind = stripe_kind(query)
    if kind is not None:
        owner = await reads.account_of_stripe_id(kind, query)
        if owner is not None:
            matched.append((owner, kind))
    if len(query) <= ACCOUNT_ID_LENGTH_MAX:
        for account_id in await reads.accounts_by_prefix(query, size):
            if all(account_id != seen for seen, _ in matched):
                matched.append((account_id, USER_ID_PREFIX))
    return await _found(deps, matched[:size])


async def _found(deps: Dependencies, matched: list[tuple[str, str]]) -> list[AccountFound]:
    now = deps.clock.now()
    found = []
    async with deps.storage.reader() as uow:
        for account_id, matched_by in matched:
            wallet, _ = await uow.wallets.read(account_id, now)
            if wallet is None:  # a Stripe id recorded for an account that was never opened
                continue
            account = wallet.account
            found.append(AccountFound(account_id, matched_by, account.plan_key, account.subscription_status,
                                      wallet.balance(now).totals, account.created_at))
    return found
