"""Operator actions, the audit trail, the Stripe inbox and console sign-in: results -> protobuf
messages. No logic beyond shape and format (a request's optional instants: api/mapping.py optional_instant)."""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import struct_pb2

from billing.api.mapping import timestamp, totals
from billing.domain.audit import AuditEntry
from billing.domain.stripe_inbox import StripeEventRecord
from billing.service.audit import ActionResult, AuditPage
from billing.service.console_login import ConsoleCredentials
from billing.service.stripe_inbox import InboxPage, Reprocessed
from billing.v1 import operator_pb2

# A page of the inbox carries its payloads up to this many bytes of JSON in all (a message is at
# most 1 MiB); past it, an event shows an excerpt, and ReprocessStripeEvent's answer shows it whole.
PAGE_PAYLOAD_BYTES_MAX = 512 * 1024
EXCERPT_CHARACTERS = 1024


def struct(document: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(document)
    return message


def audit_entry(entry: AuditEntry) -> operator_pb2.AuditEntry:
    message = operator_pb2.AuditEntry(
        audit_id=entry.audit_id, action=entry.action, user_id=entry.account_id, operator_key_id=entry.operator_key_id,
        reason=entry.reason, created_at=timestamp(entry.created_at), detail=struct(entry.detail),
    )
    if entry.before is not None:
        message.before.CopyFrom(totals(entry.before))
    if entry.after is not None:
        message.after.CopyFrom(totals(entry.after))
    return message


def action_response(result: ActionResult) -> operator_pb2.OperatorActionResponse:
    return operator_pb2.OperatorActionResponse(audit=audit_entry(result.audit), replayed=result.replayed)


def audit_page(page: AuditPage) -> operator_pb2.ListAuditEntriesResponse:
    return operator_pb2.ListAuditEntriesResponse(
        entries=[audit_entry(e) for e in page.entries], next_page_token=page.next_page_token)


def stripe_event(record: StripeEventRecord, payload_budget: list[int] | None = None) -> operator_pb2.StripeEventRecord:
    """payload_budget: bytes of payload JSON this message may still carry (one list for a page)."""
    message = operator_pb2.StripeEventRecord(
        event_id=record.event_id, event_type=record.event_type, outcome=record.outcome,
        user_id=record.account_id or "", detail=record.detail, received_at=timestamp(record.received_at),
    )
    if isinstance(record.payload, dict):
        text = json.dumps(record.payload)
        if payload_budget is None or len(text) <= payload_budget[0]:
            if payload_budget is not None:
                payload_budget[0] -= len(text)
            message.payload.CopyFrom(struct(record.payload))
        else:
            message.payload_excerpt = text[:EXCERPT_CHARACTERS]
    elif record.payload_text is not None:
        message.payload_excerpt = record.payload_text[:EXCERPT_CHARACTERS]
    return message


def inbox_page(page: InboxPage) -> operator_pb2.ListStripeEventsResponse:
    budget = [PAGE_PAYLOAD_BYTES_MAX]
    return operator_pb2.ListStripeEventsResponse(
        events=[stripe_event(e, budget) for e in page.events], next_page_token=page.next_page_token)


def reprocessed(result: Reprocessed) -> operator_pb2.ReprocessStripeEventResponse:
    return operator_pb2.ReprocessStripeEventResponse(
        event=stripe_event(result.event), audit=audit_entry(result.audit), replayed=result.replayed)


def console_credentials(credentials: ConsoleCredentials) -> operator_pb2.ConsoleCredentials:
    return operator_pb2.ConsoleCredentials(
        key_id=credentials.key_id, secret=credentials.secret, expires_at=timestamp(credentials.expires_at))
