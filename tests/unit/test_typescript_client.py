"""The TypeScript client signs requests exactly as the server checks them.

Its types need no check here any more: they are generated from the protos
(clients/typescript/src/generated/, kept fresh by test_generated_code), and what
clients/typescript/src/types.ts narrows by hand is held to them at compile time by
clients/typescript/test/wire_types.ts (docs/decisions.md, "TypeScript types generated from the protos")."""

from __future__ import annotations

import json
from pathlib import Path

from billing.domain.auth import body_digest, canonical_request, sign

FIXTURES = Path(__file__).resolve().parents[2] / "clients" / "typescript" / "test" / "fixtures"


def test_signing_vectors_agree_with_the_server():
    vectors = json.loads((FIXTURES / "signing_vectors.json").read_text())
    assert len(vectors) >= 3
    for v in vectors:
        digest = body_digest(v["body"].encode())
        canonical = canonical_request(v["method"], v["path_and_query"], str(v["timestamp"]), digest)
        assert (digest, canonical.decode(), sign(v["secret"], canonical)) == (v["body_sha256"], v["canonical"], v["signature"])


def test_webhook_fixtures_are_what_the_service_sends_and_signs():
    """clients/typescript/test/fixtures/webhook_*.json (scripts/webhook_fixtures.py): each body is its
    payload's canonical serialization, and its headers are the sender's for those bytes and secrets."""
    from billing.adapters.webhook_http import signature_headers
    from billing.domain.delivery_outcomes import canonical_body
    from billing.domain.outbound_types import EVENT_TYPES
    from billing.service.webhook_sender_ports import OutgoingWebhook

    deliveries = json.loads((FIXTURES / "webhook_deliveries.json").read_text())
    rotation = json.loads((FIXTURES / "webhook_rotation.json").read_text())
    signed = [(d, (deliveries["secret"],)) for d in deliveries["deliveries"]]
    signed.append((rotation["delivery"], (rotation["secret"], rotation["previous_secret"])))
    assert len(signed) >= 6
    for delivery, secrets in signed:
        body = delivery["body"].encode()
        payload = json.loads(body)
        assert canonical_body(payload) == body and payload["type"] in EVENT_TYPES
        webhook = OutgoingWebhook("https://app.example.com/hooks/billing", payload["id"], body, secrets)
        assert signature_headers(webhook, delivery["timestamp"]) == delivery["headers"]


def test_the_webhook_catalogue_of_the_typescript_client_is_the_services():
    """src/webhooks.ts BILLING_WEBHOOK_EVENT_TYPES (its discriminated union) lists EVENT_TYPES, in order."""
    import re

    from billing.domain.outbound_types import EVENT_TYPES

    source = (FIXTURES.parents[1] / "src" / "webhooks.ts").read_text()
    listed = re.search(r"BILLING_WEBHOOK_EVENT_TYPES = \[(.*?)\] as const", source, re.S)
    assert listed is not None
    assert tuple(re.findall(r"'([a-z_.]+)'", listed.group(1))) == EVENT_TYPES
