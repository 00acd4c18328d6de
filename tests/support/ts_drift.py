"""Holds clients/typescript/src/types.ts to the protos: parses the interfaces, reads gen/billing_descriptor.pb, and lists every field that differs (name, kind, optionality) and every browser-facing message left unmapped; walks recorded answers against the interfaces."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

from billing.domain.auth import body_digest, canonical_request, sign



ROOT = Path(__file__).resolve().parents[2]
TYPES_TS = ROOT / "clients" / "typescript" / "src" / "types.ts"
DESCRIPTOR_SET = ROOT / "gen" / "billing_descriptor.pb"
FIXTURES = ROOT / "clients" / "typescript" / "test" / "fixtures"
SERVICE = "billing.v1.BillingService"

# TypeScript interface -> proto message, for what the server sends (checked strictly).
RESPONSES = {
    "PricingCatalog": "PricingCatalog", "RolloverPolicy": "RolloverPolicy", "SubscriptionPlan": "SubscriptionPlan",
    "Advisor": "Advisor", "Package": "Package",
    "EnhancedBalance": "EnhancedBalance", "BalanceTotals": "BalanceTotals", "BalanceBuckets": "BalanceBuckets",
    "DailyBucket": "DailyBucket", "PaidBucket": "PaidBucket", "BonusStatus": "BonusStatus",
    "SubscriptionPeriod": "SubscriptionPeriod", "AutoTopupState": "AutoTopupState",
    "UsageAnalytics": "UsageAnalytics", "DailyUsage": "DailyUsage",
    "BillingEventHistory": "BillingEventHistory", "BillingEvent": "BillingEvent",
    "ConsumeResponse": "ConsumeResponse", "BucketDebit": "BucketDebit",
    "BatchOperationResult": "BatchOperationResult", "Suggestion": "Suggestion",
    "InsufficientFundsErrorBody": "InsufficientAiTime", "BreakdownSeconds": "BreakdownSeconds",
    "CreateAccountResponse": "CreateAccountResponse", "CreateSessionKeyResponse": "CreateSessionKeyResponse",
    "PackagePurchaseResponse": "PackagePurchaseResponse", "SubscriptionCheckoutResponse": "SubscriptionCheckoutResponse",
    "SubscriptionState": "SubscriptionState", "AutoTopupSettings": "AutoTopupSettings",
    "AutoTopupSetupResponse": "AutoTopupSetupResponse",
    "BalanceUpdate": "BalanceUpdate",
}
# ... and for the JSON bodies the client sends (names and kinds; a request may mark fields optional).
REQUESTS = {
    "ConsumeRequest": "ConsumeRequest", "PurchaseRequest": "PurchasePackageRequest",
    "CreateSubscriptionCheckoutRequest": "CreateSubscriptionCheckoutRequest",
    "CancelSubscriptionRequest": "CancelSubscriptionRequest",
    "ChangeSubscriptionPlanRequest": "ChangeSubscriptionPlanRequest", "UpdateAutoTopupRequest": "UpdateAutoTopupRequest",
    "CreateAutoTopupSetupRequest": "CreateAutoTopupSetupRequest", "CreateAccountRequest": "CreateAccountRequest",
    "BatchCheckRequest": "CheckSufficientBatchRequest", "BatchOperationRequest": "OperationEstimate",
}
# Messages the browser never sees, and why.
EXCLUDED = {
    "CreateGrantRequest": "admin path, internal listener only",
    "CreateGrantResponse": "admin path, internal listener only",
    "CreateSessionKeyRequest": "called by the app backend, not the browser",
    "CheckSufficientBatchResponse": "REST unwraps it: the body is its `results` array (BatchOperationResult[])",
    "HandleStripeWebhookRequest": "Stripe's delivery",
    "StripeWebhookResponse": "answered to Stripe",
}
# The REST body differs from its proto message where the API says so (docs/decisions.md).
REST_ONLY = {("InsufficientFundsErrorBody", "error"), ("InsufficientFundsErrorBody", "http_status")}
PROTO_ONLY = {("InsufficientFundsErrorBody", "deficit_seconds"): "gRPC detail only; the 402 body is the contract's"}

NUMBER_TYPES = {
    descriptor_pb2.FieldDescriptorProto.TYPE_INT32, descriptor_pb2.FieldDescriptorProto.TYPE_UINT32,
    descriptor_pb2.FieldDescriptorProto.TYPE_SINT32, descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE,
    descriptor_pb2.FieldDescriptorProto.TYPE_FLOAT,
}
# The transcoder prints 64-bit integers as JSON strings ("42"): a number could not hold them all.
INT64_TYPES = {
    descriptor_pb2.FieldDescriptorProto.TYPE_INT64, descriptor_pb2.FieldDescriptorProto.TYPE_UINT64,
    descriptor_pb2.FieldDescriptorProto.TYPE_SINT64,
}
F = descriptor_pb2.FieldDescriptorProto


# ---------------------------------------------------------------- types.ts, read with regular expressions


@dataclass(frozen=True)
class Prop:
    name: str
    optional: bool
    type: str


@dataclass(frozen=True)
class TsTypes:
    interfaces: dict[str, dict[str, Prop]]
    aliases: dict[str, str]

    def string_alias(self, name: str) -> bool:
        body = self.aliases.get(name, "")
        return body == "string" or bool(body) and all(re.fullmatch(r"'[^']*'", p.strip()) for p in body.split("|") if p.strip())


INTERFACE = re.compile(r"^export interface (\w+)(?: extends [\w, ]+)? \{\n(.*?)^\}", re.S | re.M)
PROPERTY = re.compile(r"^\s+(\w+)(\?)?: ([^;]+);\s*(?://.*)?$", re.M)
ALIAS = re.compile(r"^export type (\w+) =\s*(.+?);\s*$", re.S | re.M)


def parse_types(text: str) -> TsTypes:
    interfaces = {}
    for name, body in INTERFACE.findall(text):
        props = {m.group(1): Prop(m.group(1), bool(m.group(2)), m.group(3).strip()) for m in PROPERTY.finditer(body)}
        interfaces[name] = props
    aliases = {name: " ".join(body.split()).lstrip("| ").strip() for name, body in ALIAS.findall(text)}
    return TsTypes(interfaces, aliases)


# ---------------------------------------------------------------- the descriptor set


def load_messages(data: bytes) -> tuple[dict[str, descriptor_pb2.DescriptorProto], descriptor_pb2.FileDescriptorSet]:
    files = descriptor_pb2.FileDescriptorSet.FromString(data)
    messages: dict[str, descriptor_pb2.DescriptorProto] = {}

    def add(prefix: str, message: descriptor_pb2.DescriptorProto) -> None:
        full = f"{prefix}.{message.name}"
        messages[full] = message
        for nested in message.nested_type:
            add(full, nested)

    for file in files.file:
        for message in file.message_type:
            add(f".{file.package}" if file.package else "", message)
    return messages, files


def browser_messages(files: descriptor_pb2.FileDescriptorSet, messages) -> tuple[set[str], set[str]]:
    """billing.v1 messages reachable from the service's replies (plus the 402 detail) and from the
    bodies of its body-carrying methods, closed over nested message fields (map entries excluded)."""
    from google.api import annotations_pb2

    replies, bodies = {".billing.v1.InsufficientAiTime"}, set()
    for file in files.file:
        for service in file.service:
            if f"{file.package}.{service.name}" != SERVICE:
                continue
            for method in service.method:
                replies.add(method.output_type)
                rule = method.options.Extensions[annotations_pb2.http]
                if rule.body:
                    bodies.add(method.input_type)

    def close(roots: set[str]) -> set[str]:
        seen, todo = set(), list(roots)
        while todo:
            name = todo.pop()
            if name in seen or not name.startswith(".billing."):
                continue
            seen.add(name)
            for field in messages[name].field:
                if field.type == F.TYPE_MESSAGE and not messages[field.type_name].options.map_entry:
                    todo.append(field.type_name)
        return {n.rsplit(".", 1)[1] for n in seen}

    return close(replies), close(bodies)


# ---------------------------------------------------------------- the check


def _kind_problem(ts: TsTypes, field, prop: Prop, messages) -> str | None:
    t = prop.type
    repeated = field.label == F.LABEL_REPEATED
    if field.type == F.TYPE_MESSAGE and messages[field.type_name].options.map_entry:
        value = next(f for f in messages[field.type_name].field if f.name == "value")
        expected = "number" if value.type in NUMBER_TYPES else None
        return None if t == f"Record<string, {expected}>" else f"a map: expected Record<string, {expected}>, found {t}"
    if repeated:
        if not t.endswith("[]"):
            return f"repeated: expected an array, found {t}"
        t = t[:-2]
    if field.type in NUMBER_TYPES:
        return None if t == "number" or re.fullmatch(r"\d+", t) else f"expected number, found {t}"
    if field.type in INT64_TYPES:
        return None if t == "string" else f"a 64-bit integer (a JSON string): expected string, found {t}"
    if field.type == F.TYPE_BOOL:
        return None if t == "boolean" else f"expected boolean, found {t}"
    if field.type == F.TYPE_STRING:
        parts = [p.strip() for p in t.split("|")]
        nullable_ok = field.name == "resume_token"  # the 402 body says null when no token was issued
        ok = all(p == "string" or re.fullmatch(r"'[^']*'", p) or ts.string_alias(p) or (nullable_ok and p == "null")
                 for p in parts)
        return None if ok else f"expected a string type, found {t}"
    if field.type == F.TYPE_MESSAGE:
        well_known = {
            ".google.protobuf.Timestamp": {"Timestamp"},
            ".google.protobuf.Value": {"Timestamp | null"},  # this API's Values are times or null
            ".google.protobuf.Struct": {"Record<string, unknown>"},
        }
        if field.type_name in well_known:
            return None if t in well_known[field.type_name] else f"{field.type_name}: expected {well_known[field.type_name]}, found {t}"
        proto = field.type_name.rsplit(".", 1)[1]
        wanted = {ts_name for ts_name, p in (RESPONSES | REQUESTS).items() if p == proto}
        return None if t in wanted else f"message {proto}: expected one of {sorted(wanted)}, found {t}"
    return f"proto type {field.type} not handled by this test"


def problems(descriptor_set: bytes, types_text: str) -> list[str]:
    messages, files = load_messages(descriptor_set)
    ts = parse_types(types_text)
    found: list[str] = []
    replies, bodies = browser_messages(files, messages)
    mapped_replies, mapped_bodies = set(RESPONSES.values()), set(REQUESTS.values())
    for name in sorted(replies - mapped_replies - set(EXCLUDED)):
        found.append(f"message {name} reaches the browser but no interface of types.ts mirrors it (RESPONSES)")
    for name in sorted(bodies - mapped_bodies - set(EXCLUDED) - mapped_replies):
        found.append(f"message {name} is a request body but no interface of types.ts mirrors it (REQUESTS)")
    for ts_name, proto_name in (RESPONSES | REQUESTS).items():
        strict = ts_name in RESPONSES
        message = messages.get(f".billing.v1.{proto_name}")
        if message is None:
            found.append(f"{ts_name}: proto message {proto_name} is gone")
            continue
        props = ts.interfaces.get(ts_name)
        if props is None:
            found.append(f"{ts_name}: no `export interface {ts_name}` in types.ts")
            continue
        # Over REST a field is named by the proto name (responses) or its JSON name (accepted in bodies).
        fields = {}
        for field in message.field:
            if (ts_name, field.name) in PROTO_ONLY:
                continue
            key = field.name if field.name in props or strict else field.json_name
            fields[key] = field
        for key, field in fields.items():
            prop = props.get(key)
            if prop is None:
                found.append(f"{ts_name}.{field.name}: proto field of {proto_name} missing from the interface")
                continue
            kind = _kind_problem(ts, field, prop, messages)
            if kind:
                found.append(f"{ts_name}.{key}: {kind}")
            if strict:
                is_message = field.type == F.TYPE_MESSAGE and field.label != F.LABEL_REPEATED and not messages[field.type_name].options.map_entry
                if field.proto3_optional and not prop.optional:
                    found.append(f"{ts_name}.{key}: proto3 optional (absent when unset): write `{key}?:`")
                if not field.proto3_optional and not is_message and prop.optional:
                    found.append(f"{ts_name}.{key}: always sent (default values are printed): drop the `?`")
        for key in props:
            if key not in fields and (ts_name, key) not in REST_ONLY:
                found.append(f"{ts_name}.{key}: not a field of {proto_name}")
    return found


FIXTURE_TYPES = {
    "catalog_usd": "PricingCatalog", "catalog_eur": "PricingCatalog", "catalog_jpy_fallback": "PricingCatalog",
    "catalog_usd_not_modified": None,
    "session_key": "CreateSessionKeyResponse", "create_account": "CreateAccountResponse",
    "balance_new": "EnhancedBalance", "balance_with_package": "EnhancedBalance", "balance_subscribed": "EnhancedBalance",
    "consume": "ConsumeResponse", "consume_replayed": "ConsumeResponse", "consume_resumed": "ConsumeResponse",
    "consume_insufficient": "InsufficientFundsErrorBody", "batch_check": "BatchOperationResult[]",
    "purchase_package": "PackagePurchaseResponse", "usage_month": "UsageAnalytics", "usage_day": "UsageAnalytics",
    "events_page1": "BillingEventHistory", "events_page2": "BillingEventHistory",
    "auto_topup_get": "AutoTopupSettings", "auto_topup_put": "AutoTopupSettings", "auto_topup_setup": "AutoTopupSetupResponse",
    "subscription_checkout": "SubscriptionCheckoutResponse", "subscription_change": "SubscriptionState",
    "subscription_cancel": "SubscriptionState",
    "consume_resume_token_used": "ErrorBody", "auto_topup_no_card": "ErrorBody", "error_invalid_argument": "ErrorBody",
    "error_unauthenticated": "ErrorBody", "error_permission_denied": "ErrorBody",
    "error_idempotency_key_reused": "ErrorBody", "error_unavailable": "ErrorBody", "error_rate_limited": "ErrorBody",
}


def _conforms(ts: TsTypes, value, type_text: str, where: str, out: list[str]) -> None:
    type_text = type_text.strip()
    if type_text.endswith("[]"):
        if not isinstance(value, list):
            out.append(f"{where}: expected an array")
            return
        for i, item in enumerate(value):
            _conforms(ts, item, type_text[:-2], f"{where}[{i}]", out)
        return
    options = [p.strip() for p in type_text.split("|")]
    if value is None:
        if "null" not in options:
            out.append(f"{where}: null where {type_text} is declared")
        return
    options = [p for p in options if p != "null"]
    if len(options) == 1 and options[0] in ts.interfaces:
        props = ts.interfaces[options[0]]
        if not isinstance(value, dict):
            out.append(f"{where}: expected an object ({options[0]})")
            return
        for key in value:
            if key not in props:
                out.append(f"{where}.{key}: sent by the server, not in {options[0]}")
        for key, prop in props.items():
            if key not in value:
                if not prop.optional:
                    out.append(f"{where}.{key}: declared required in {options[0]}, not sent")
                continue
            _conforms(ts, value[key], prop.type, f"{where}.{key}", out)
        return
    if options[0].startswith("Record<string, "):
        if not isinstance(value, dict):
            out.append(f"{where}: expected an object")
        elif options[0] == "Record<string, number>" and not all(isinstance(v, int) for v in value.values()):
            out.append(f"{where}: expected number values")
        return
    kinds = set()
    for option in options:
        if option == "number" or re.fullmatch(r"\d+", option):
            kinds.add("number")
        elif option == "boolean":
            kinds.add("boolean")
        elif option in ("string", "Timestamp") or re.fullmatch(r"'[^']*'", option) or ts.string_alias(option):
            kinds.add("string")
        else:
            out.append(f"{where}: type {option} unknown to this test")
            return
    actual = "boolean" if isinstance(value, bool) else "number" if isinstance(value, (int, float)) else \
        "string" if isinstance(value, str) else type(value).__name__
    if actual not in kinds:
        out.append(f"{where}: {actual} where {type_text} is declared")
    literals = [o[1:-1] for o in options if re.fullmatch(r"'[^']*'", o)]
    for option in options:
        if ts.string_alias(option) and ts.aliases[option] != "string":
            literals += [p.strip()[1:-1] for p in ts.aliases[option].split("|")]
    if literals and "string" not in kinds_of_plain_string(options) and isinstance(value, str) and value not in literals:
        out.append(f"{where}: {value!r} is none of {type_text}")


def kinds_of_plain_string(options: list[str]) -> set[str]:
    return {"string"} if any(o in ("string", "Timestamp") for o in options) else set()
