"""OperatorService (issue 23): the operator console's API. Each method maps its request to a use
case (service/operator_*.py) and its answer back (api/operator_mapping.py); a method not yet built
answers UNIMPLEMENTED (the generated base class)."""

from __future__ import annotations

from datetime import datetime, timezone

from google.api import httpbody_pb2

from billing.api import operator_mapping
from billing.service import migration_runs, operator_account, operator_health, operator_ledger, operator_search
from billing.service import operator_usage
from billing.service.dependencies import Dependencies
from billing.service.ledger_csv import csv_lines
from billing.v1 import operator_service_pb2_grpc

CSV_CONTENT_TYPE = "text/csv; charset=utf-8"


def _instant(request, field: str) -> datetime | None:
    return getattr(request, field).ToDatetime(tzinfo=timezone.utc) if request.HasField(field) else None


class OperatorServicer(operator_service_pb2_grpc.OperatorServiceServicer):
    def __init__(self, deps: Dependencies):
        self._deps = deps

    # --- Reads (accounts, ledger, usage, operations) ---------------------------------------------

    async def SearchAccounts(self, request, context):
        return operator_mapping.search(await operator_search.search_accounts(self._deps, request.query, request.limit))

    async def GetAccountOverview(self, request, context):
        return operator_mapping.overview(await operator_account.get_account_overview(self._deps, request.user_id))

    async def ListAccountLedger(self, request, context):
        page = await operator_ledger.list_account_ledger(
            self._deps, request.user_id, list(request.types), _instant(request, "from_at"), _instant(request, "to_at"),
            request.page_size, request.page_token, request.order)
        return operator_mapping.ledger(page)

    async def ExportAccountLedger(self, request, context):
        chunks = operator_ledger.export_account_ledger(
            self._deps, request.user_id, list(request.types), _instant(request, "from_at"), _instant(request, "to_at"))
        first = True
        async for lines in chunks:
            yield httpbody_pb2.HttpBody(content_type=CSV_CONTENT_TYPE, data=csv_lines(lines, header=first))
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

    # --- Actions ------------------------------------------------------------------------------------
