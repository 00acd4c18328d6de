"""Writes outbound events signed by the service's own code, for the TypeScript client's webhook tests
(clients/typescript/test/fixtures/webhook_*.json; test/webhooks.test.ts verifies them).

The events are real: a new free account on the in-memory storage (tests/support/fake_storage.py) is
changed by the service's use cases (its welcome credit, consumes across the thresholds to empty, a
gift back above them, a hold left to expire), and each outbox row's payload is what the sender would
send: serialized by `canonical_body`, signed by `adapters/webhook_http.signature_headers` (the
`standardwebhooks` package), one signature per secret. Secrets and instants are fixed, so a re-run
writes the same files unless the service changed what it sends (review that diff).

    make venv && .venv/bin/python clients/typescript/scripts/webhook_fixtures.py   # ~1 s, no database

tests/unit/test_typescript_client.py checks the committed files still agree with the service.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGE = HERE.parent
REPO = PACKAGE.parent.parent
FIXTURES = PACKAGE / "test" / "fixtures"
sys.path[:0] = [str(REPO / "src"), str(REPO)]

from billing.adapters.catalog_file import load_catalog  # noqa: E402
from billing.adapters.clock import FixedClock  # noqa: E402
from billing.adapters.webhook_http import signature_headers  # noqa: E402
from billing.domain.delivery_outcomes import canonical_body  # noqa: E402
from billing.service.accounts import create_account  # noqa: E402
from billing.service.balance import get_balance  # noqa: E402
from billing.service.consume import consume  # noqa: E402
from billing.service.grants import create_grant  # noqa: E402
from billing.service.holds import place_hold  # noqa: E402
from billing.service.ports import OutgoingWebhook  # noqa: E402
from billing.settings import DEFAULT_CATALOG_PATH  # noqa: E402
from tests.support.fake_storage import FakeDatabase, fake_dependencies  # noqa: E402
from tests.unit.memory_fixtures import START_SECONDS  # noqa: E402

USER = "user:42@example.com"
URL = "https://app.example.com/hooks/billing"
# The endpoint's secret and, for the rotation fixture, the one it replaced (whsec_ + base64 of 32 bytes).
SECRET = "whsec_" + base64.b64encode(hashlib.sha256(b"billing-client webhook fixture: current").digest()).decode()
PREVIOUS_SECRET = "whsec_" + base64.b64encode(hashlib.sha256(b"billing-client webhook fixture: previous").digest()).decode()
SENT_AFTER = timedelta(seconds=2)  # each delivery's webhook-timestamp: its event's created_at + 2 s


async def outbox_payloads() -> list[dict]:
    clock = FixedClock(datetime(2026, 3, 14, 9, 30, tzinfo=timezone.utc))
    database = FakeDatabase()
    deps = fake_dependencies(load_catalog(DEFAULT_CATALOG_PATH)[0], clock, database)
    await create_account(deps, USER, "free")                              # credit.granted (welcome)
    await consume(deps, USER, "build", START_SECONDS - 599, "c1")          # balance.low 600
    clock.set(clock.now() + timedelta(minutes=1))
    await consume(deps, USER, "export", 599, "c2")                         # balance.low 120, balance.depleted
    clock.set(clock.now() + timedelta(minutes=1))
    await create_grant(deps, USER, "gift", 1200, "désolé ☕: the outage", "g1")  # credit.granted, balance.recovered
    await place_hold(deps, USER, "render-7", "build", 1100, ttl_seconds=60)     # balance.low 600
    clock.set(clock.now() + timedelta(seconds=61))
    await get_balance(deps, USER)                                          # hold.expired, balance.recovered
    return [row.payload for row in database.outbox[USER]]


def delivery(payload: dict, secrets: tuple[str, ...]) -> dict:
    body = canonical_body(payload)
    sent_at = datetime.fromisoformat(payload["created_at"].replace("Z", "+00:00")) + SENT_AFTER
    timestamp = int(sent_at.timestamp())
    headers = signature_headers(OutgoingWebhook(URL, payload["id"], body, secrets), timestamp)
    return {"timestamp": timestamp, "headers": headers, "body": body.decode()}


def write(name: str, content: dict) -> None:
    (FIXTURES / f"webhook_{name}.json").write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n")
    print(f"test/fixtures/webhook_{name}.json")


def main() -> None:
    payloads = asyncio.run(outbox_payloads())
    write("deliveries", {"secret": SECRET, "deliveries": [delivery(p, (SECRET,)) for p in payloads]})
    rotated = next(p for p in payloads if p["type"] == "hold.expired")
    write("rotation", {"secret": SECRET, "previous_secret": PREVIOUS_SECRET,
                       "delivery": delivery(rotated, (SECRET, PREVIOUS_SECRET))})


if __name__ == "__main__":
    main()
