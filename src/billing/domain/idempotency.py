"""The stored first answer of an idempotent request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class StoredAnswer:
    idempotency_key: str
    request_fingerprint: str  # what was asked: a retry must ask the same
    document: dict[str, Any]  # the answer as JSON (service/answer_codec.py); a retry replays it
