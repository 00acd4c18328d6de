"""A signed REST request must be the call the server runs.

The signature covers the method, path and query and body as the client sent them (Envoy copies
them into x-billing-signed-* headers); the server runs the gRPC method and message the transcoder
made of them. Without this check a valid signature over one request (say a GET of a balance)
could be attached to any other call by whoever can reach the gRPC port with the edge token.
So the signed request is transcoded again here, by the method's google.api.http rule, and must
name this method and give exactly this message.
"""

from __future__ import annotations

import json
from typing import Any, Mapping
from urllib.parse import parse_qsl, unquote

from google.api import annotations_pb2
from google.protobuf import json_format
from google.protobuf.message import Message

from billing.domain.auth import SIGNED_METHOD_HEADER, SIGNED_PATH_HEADER
from billing.domain.errors import InvalidArgument, Unauthenticated
from billing.v1 import billing_service_pb2

_SERVICE = billing_service_pb2.DESCRIPTOR.services_by_name["BillingService"]
_PREFIX = f"/{_SERVICE.full_name}/"


def _rules() -> dict[str, tuple[str, list[str], bool]]:
    """method name -> (HTTP method, path template segments, whether the body is the message)."""
    rules = {}
    for method in _SERVICE.methods:
        rule = method.GetOptions().Extensions[annotations_pb2.http]
        verb = rule.WhichOneof("pattern")
        if verb in ("get", "post", "put", "patch", "delete"):
            rules[method.name] = (verb.upper(), getattr(rule, verb).split("/"), rule.body == "*")
    return rules


_RULES = _rules()
_MISMATCH = "request signature missing, expired or invalid"


def require_signed_request_is_this_call(method: str, metadata: Mapping[str, str], request: Message, body: bytes) -> None:
    """body: the raw body Envoy copied (already decoded from base64 by the authenticator's check)."""
    rule = _RULES.get(method[len(_PREFIX):]) if method.startswith(_PREFIX) else None
    if rule is None:
        raise Unauthenticated(_MISMATCH)
    verb, template, body_is_message = rule
    path, _, query = metadata.get(SIGNED_PATH_HEADER, "").partition("?")
    if metadata.get(SIGNED_METHOD_HEADER) != verb:
        raise Unauthenticated(_MISMATCH)
    values: dict[str, Any] = {}
    if body_is_message and body:
        try:
            document = json.loads(body)
        except ValueError:
            # Signed, so no secret is at stake: the transcoder accepts a trailing comma, this does not.
            raise InvalidArgument("the request body must be strict JSON (no trailing commas)") from None
        if not isinstance(document, dict):
            raise Unauthenticated(_MISMATCH)
        values.update(document)
    elif body:
        raise Unauthenticated(_MISMATCH)  # a body the rule does not read (a GET's) is not signed
    segments = path.split("/")
    if len(segments) != len(template):
        raise Unauthenticated(_MISMATCH)
    for segment, expected in zip(segments, template):
        if expected.startswith("{") and expected.endswith("}"):
            values[expected[1:-1]] = unquote(segment, errors="strict")
        elif segment != expected:
            raise Unauthenticated(_MISMATCH)
    # The transcoder decodes %XX and keeps '+' (URI rules); parse_qsl would read it as a space (forms).
    values.update(parse_qsl(query.replace("+", "%2B"), keep_blank_values=True))
    if not _built_by_constructor(request, values) and not _built_by_json_rules(request, values):
        raise Unauthenticated(_MISMATCH)


def _built_by_constructor(request: Message, values: dict[str, Any]) -> bool:
    """The common case, in ~2 us instead of ParseDict's ~45: field names as declared and plain
    values (a Consume's body, a balance's path). JSON's other spellings (camelCase names, numbers
    as strings, unknown fields) make the constructor raise, and the JSON rules decide."""
    try:
        return type(request)(**values) == request
    except (TypeError, ValueError, AttributeError):
        return False


def _built_by_json_rules(request: Message, values: dict[str, Any]) -> bool:
    rebuilt = type(request)()
    try:
        json_format.ParseDict(values, rebuilt, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError):
        return False
    return rebuilt == request
