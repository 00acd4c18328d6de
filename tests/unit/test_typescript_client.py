"""The TypeScript client's types cannot drift from the protos (clients/typescript/src/types.ts).

Each interface of types.ts that mirrors a proto message is held to it, field by field, read from
gen/billing_descriptor.pb (the FileDescriptorSet `make gen` writes and test_generated_code keeps
fresh): a proto field without its property fails, a property the proto lacks fails, and so does a
property of the wrong kind (number / string / boolean / array / nullable time / nested interface)
or a wrong `?` (proto3 `optional` fields are absent when unset; every other scalar is always
printed). Every message the browser can receive or send (the BillingService RPCs' replies and
JSON bodies, closed over their nested messages) must be mapped here or excluded with a reason,
so a new RPC or message fails too.

The recorded answers the TypeScript unit tests replay (clients/typescript/test/fixtures/) are
walked against the same interfaces, and its signing vectors against billing.domain.auth."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

from billing.domain.auth import body_digest, canonical_request, sign

from tests.support.ts_drift import (  # noqa: F401 - fixtures and helpers
    DESCRIPTOR_SET, F, FIXTURES, FIXTURE_TYPES, RESPONSES, TYPES_TS, _conforms, parse_types, problems,
)


def test_types_ts_mirrors_the_protos():
    assert problems(DESCRIPTOR_SET.read_bytes(), TYPES_TS.read_text()) == []


def test_the_check_sees_a_missing_property_and_a_new_proto_field():
    text = TYPES_TS.read_text()
    assert "  auto_topup: AutoTopupState;\n" in text
    dropped = problems(DESCRIPTOR_SET.read_bytes(), text.replace("  auto_topup: AutoTopupState;\n", "", 1))
    assert dropped == ["EnhancedBalance.auto_topup: proto field of EnhancedBalance missing from the interface"]

    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET.read_bytes())
    balance_file = next(f for f in files.file if f.name == "billing/v1/balance.proto")
    totals = next(m for m in balance_file.message_type if m.name == "BalanceTotals")
    totals.field.add(name="gift_seconds", json_name="giftSeconds", number=99, type=F.TYPE_INT32, label=F.LABEL_OPTIONAL)
    assert problems(files.SerializeToString(), text) == [
        "BalanceTotals.gift_seconds: proto field of BalanceTotals missing from the interface"]

    wrong = text.replace("  paid_seconds: number;\n", "  paid_seconds?: string;\n", 1)
    assert problems(DESCRIPTOR_SET.read_bytes(), wrong) == [
        "BalanceTotals.paid_seconds: expected number, found string",
        "BalanceTotals.paid_seconds: always sent (default values are printed): drop the `?`",
    ]


def test_a_new_rpc_reply_must_be_typed():
    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET.read_bytes())
    service_file = next(f for f in files.file if any(s.name == "BillingService" for s in f.service))
    service_file.message_type.add(name="WatchUsageEvent").field.add(
        name="seconds", json_name="seconds", number=1, type=F.TYPE_INT32, label=F.LABEL_OPTIONAL)
    service = next(s for s in service_file.service if s.name == "BillingService")
    service.method.add(name="WatchUsage", input_type=".billing.v1.GetUsageRequest",
                       output_type=".billing.v1.WatchUsageEvent", server_streaming=True)
    assert problems(files.SerializeToString(), TYPES_TS.read_text()) == [
        "message WatchUsageEvent reaches the browser but no interface of types.ts mirrors it (RESPONSES)"]


# ---------------------------------------------------------------- recorded answers against the interfaces

def test_recorded_answers_have_exactly_the_declared_shapes():
    ts = parse_types(TYPES_TS.read_text())
    names = sorted(p.stem for p in FIXTURES.glob("*.json") if p.stem != "signing_vectors")
    assert sorted(FIXTURE_TYPES) == names, "type every fixture in FIXTURE_TYPES"
    out: list[str] = []
    for name in names:
        response = json.loads((FIXTURES / f"{name}.json").read_text())["response"]
        if FIXTURE_TYPES[name] is None:
            assert response["body"] is None
            continue
        _conforms(ts, response["body"], FIXTURE_TYPES[name], name, out)
    assert out == []


def test_the_walk_sees_extra_missing_and_mistyped_fields():
    ts = parse_types(TYPES_TS.read_text())
    balance = json.loads((FIXTURES / "balance_new.json").read_text())["response"]["body"]
    balance["totals"]["gift_seconds"] = 5
    del balance["bonus"]["daily_minutes"]
    balance["buckets"]["paid"][0]["source"] = "coupon"
    balance["totals"]["next_expiry_at"] = 7
    out: list[str] = []
    _conforms(ts, balance, "EnhancedBalance", "b", out)
    assert out == [
        "b.totals.gift_seconds: sent by the server, not in BalanceTotals",
        "b.totals.next_expiry_at: number where Timestamp | null is declared",
        "b.buckets.paid[0].source: 'coupon' is none of BucketSource",
        "b.bonus.daily_minutes: declared required in BonusStatus, not sent",
    ]


def test_signing_vectors_agree_with_the_server():
    vectors = json.loads((FIXTURES / "signing_vectors.json").read_text())
    assert len(vectors) >= 3
    for v in vectors:
        digest = body_digest(v["body"].encode())
        canonical = canonical_request(v["method"], v["path_and_query"], str(v["timestamp"]), digest)
        assert (digest, canonical.decode(), sign(v["secret"], canonical)) == (v["body_sha256"], v["canonical"], v["signature"])


@pytest.mark.parametrize("name", sorted(RESPONSES))
def test_every_mapped_interface_exists(name):
    assert name in parse_types(TYPES_TS.read_text()).interfaces
