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
