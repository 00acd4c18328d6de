"""Regressions found in review: clock skew between replicas, input edge cases, error mapping."""

from __future__ import annotations

import json
from types import SimpleNamespace
from datetime import datetime, timedelta, timezone

import grpc
import psycopg
import pytest

from billing.adapters.catalog_file import load_catalog
from billing.adapters.db.unit_of_work import PostgresStorage
from billing.api.interceptors import ErrorTranslationInterceptor
from billing.domain.errors import InvalidArgument
from billing.domain.limits import require_idempotency_key, require_reason, require_account_id
from billing.domain.wallet import Account, Wallet
from billing.settings import DEFAULT_CATALOG_PATH
from tests.support.grpc_context import AbortingContext

UTC = timezone.utc
CATALOG, _ = load_catalog(DEFAULT_CATALOG_PATH)


def test_a_replica_whose_clock_is_behind_does_not_grant_yesterday_again():
    free = CATALOG.plan("free")
    ahead = datetime(2026, 3, 15, 0, 0, 1, tzinfo=UTC)
    wallet = Wallet(Account("u", "free", "inactive", ahead - timedelta(days=3)), [])
    wallet.grant_daily_bonus_if_due(free, ahead)
    behind = ahead - timedelta(seconds=2)  # still March 14th on the other replica
    again = Wallet(wallet.account, wallet.buckets)
    assert again.daily_bonus_due_seconds(free, behind) == 0
    assert again.grant_daily_bonus_if_due(free, behind) is None


def test_consuming_a_next_month_bonus_on_a_lagging_replica_does_not_fail():
    free = CATALOG.plan("free")
    ahead = datetime(2026, 4, 1, 0, 0, 1, tzinfo=UTC)
    wallet = Wallet(Account("u", "free", "inactive", ahead - timedelta(days=40)), [])
    wallet.grant_daily_bonus_if_due(free, ahead)
    lagging = Wallet(wallet.account, wallet.buckets)
    lagging.consume("build", 60, ahead - timedelta(seconds=2))
    assert lagging.account.bonus.used_seconds == 60
    lagging.assert_ledger_matches_buckets()


@pytest.mark.parametrize("user_id", ["zed\n", "zed\r", "a b", "\nzed"])
def test_user_ids_with_line_breaks_or_spaces_are_refused(user_id):
    with pytest.raises(InvalidArgument) as raised:
        require_account_id(user_id)
    assert raised.value.field == "user_id"


def test_idempotency_key_with_a_trailing_newline_is_refused():
    with pytest.raises(InvalidArgument):
        require_idempotency_key("key-1\n")


@pytest.mark.parametrize("reason", ["a\x00b", "tab\there", "bell\x07"])
def test_reasons_with_control_characters_are_refused(reason):
    with pytest.raises(InvalidArgument) as raised:
        require_reason(reason)
    assert raised.value.field == "reason"


async def test_a_database_outage_is_503_unavailable_not_500():
    class Pool:
        async def getconn(self):
            raise psycopg.OperationalError("connection refused")

    async def consume(request, context):
        async with PostgresStorage(Pool()).transaction():
            pass

    details = SimpleNamespace(method="/billing.v1.BillingService/Consume", invocation_metadata=())
    context = AbortingContext()
    with pytest.raises(grpc.aio.AbortError):
        await ErrorTranslationInterceptor().wrap(consume, details)(None, context)
    code, _, metadata = context.aborted
    assert code == grpc.StatusCode.UNAVAILABLE
    assert metadata["x-http-status"] == "503"
    assert json.loads(metadata["x-error-json"])["error"] == "UNAVAILABLE"
