"""OperatorService over a real gRPC server (in process, memory storage): a Timestamp out of range is
INVALID_ARGUMENT naming its field (not INTERNAL), and an export that fails after its first chunk ends
with an error status, not a clean end (review of issue 23, items 4 and 5)."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from billing.adapters.catalog_file import load_catalog
from billing.adapters.clock import FixedClock
from billing.api.interceptors import interceptor_chain
from billing.api.operator_servicer import OperatorServicer
from billing.domain.console import LedgerLine, LedgerSlice
from billing.domain.expiry_timeline import ExpiredSeconds
from billing.service.ports import Unavailable
from billing.settings import DEFAULT_CATALOG_PATH
from billing.v1 import operator_pb2, operator_service_pb2_grpc
from tests.support.fake_storage import fake_dependencies

NOW = datetime(2026, 3, 14, 9, 30, tzinfo=timezone.utc)
SECONDS_PAST_9999 = 253_402_300_800


class _ReadsThatFailMidway:
    """A first chunk of rows, then the database goes away."""

    def __init__(self):
        self.reads = 0

    async def ledger_page(self, account_id, where, after_event_seq, limit, anchor=None):
        self.reads += 1
        if self.reads > 1:
            raise Unavailable("connection lost", kind="database")
        lines = [LedgerLine(seq, "adjustment", 10, "", NOW, None, 1, {}, 10 * seq, 10 * seq, 0) for seq in range(1, limit + 1)]
        return LedgerSlice(lines, NOW, ExpiredSeconds([]))


@pytest.fixture
async def operator_stub():
    catalog, _ = load_catalog(DEFAULT_CATALOG_PATH)
    deps = dataclasses.replace(fake_dependencies(catalog, FixedClock(NOW)), operator_reads=_ReadsThatFailMidway())
    server = grpc.aio.server(interceptors=interceptor_chain(None))
    operator_service_pb2_grpc.add_OperatorServiceServicer_to_server(OperatorServicer(deps), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield operator_service_pb2_grpc.OperatorServiceStub(channel)
    finally:
        await server.stop(0)


def _field_of(error: grpc.aio.AioRpcError) -> str:
    status = status_pb2.Status.FromString(dict(error.trailing_metadata())["grpc-status-details-bin"])
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            return bad.field_violations[0].field
    raise AssertionError("no BadRequest detail")


def _out_of_range(request, field: str, **timestamp):
    getattr(request, field).seconds = timestamp.get("seconds", 0)
    getattr(request, field).nanos = timestamp.get("nanos", 0)
    return request


def _requests():
    yield "ListAccountLedger", operator_pb2.ListAccountLedgerRequest(user_id="u1"), ("from_at", "to_at")
    yield "ListAuditEntries", operator_pb2.ListAuditEntriesRequest(), ("from_at", "to_at")
    yield "OperatorGrant", operator_pb2.OperatorGrantRequest(
        user_id="u1", source="gift", seconds=60, reason="sorry", idempotency_key="k1"), ("expires_at",)


@pytest.mark.parametrize("timestamp", [{"seconds": SECONDS_PAST_9999}, {"seconds": -62_135_596_801},
                                       {"seconds": 1, "nanos": -1}, {"seconds": 1, "nanos": 1_000_000_000}])
async def test_an_out_of_range_timestamp_names_its_field(operator_stub, timestamp):
    for method, request, fields in _requests():
        for field in fields:
            sent = type(request)()
            sent.CopyFrom(request)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await getattr(operator_stub, method)(_out_of_range(sent, field, **timestamp), timeout=10)
            assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT, (method, field, refused.value.details())
            assert _field_of(refused.value) == field


async def test_an_out_of_range_timestamp_on_the_export_names_its_field(operator_stub):
    for field in ("from_at", "to_at"):
        request = _out_of_range(operator_pb2.ExportAccountLedgerRequest(user_id="u1"), field, seconds=SECONDS_PAST_9999)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            [chunk async for chunk in operator_stub.ExportAccountLedger(request, timeout=10)]
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT and _field_of(refused.value) == field


async def test_an_export_cut_by_the_database_ends_with_an_error_not_a_clean_end(operator_stub):
    received = []
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        async for chunk in operator_stub.ExportAccountLedger(operator_pb2.ExportAccountLedgerRequest(user_id="u1"),
                                                            timeout=10):
            received.append(chunk.data)
    assert failed.value.code() is grpc.StatusCode.UNAVAILABLE
    assert len(received) == 1 and received[0].startswith(b"event_seq,")
    assert b"# end of export" not in received[0] and b"# export truncated" not in received[0]
