"""Input checks shared by the console's reads and actions: bounded sizes (domain/limits.py bounded)
and the one codec of their opaque page tokens (the ledger, the audit trail, the Stripe inbox, the
migration runs): base64url of a JSON array, the issuing listing's kind first, one length limit."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

from billing.domain.errors import InvalidArgument
from billing.domain.limits import bounded

__all__ = ["CONSOLE_PAGE_TOKEN_LENGTH_MAX", "bounded", "decode_instant", "decode_token", "encode_token"]

CONSOLE_PAGE_TOKEN_LENGTH_MAX = 512


def _invalid() -> InvalidArgument:
    return InvalidArgument("page_token is not a token this listing issued", field="page_token")


def encode_token(kind: str, *parts: str) -> str:
    """An opaque token: `kind` says which listing issued it (a ledger's token is no run list's)."""
    text = json.dumps([kind, *parts], separators=(",", ":"), ensure_ascii=True)
    token = base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")
    assert len(token) <= CONSOLE_PAGE_TOKEN_LENGTH_MAX, "a position too long for a page token"
    return token


def decode_token(token: str, kind: str, parts: int) -> list[str] | None:
    """None for no token; the parts of a token `kind` issued, else InvalidArgument naming page_token."""
    if not token:
        return None
    if len(token) > CONSOLE_PAGE_TOKEN_LENGTH_MAX:
        raise _invalid()
    try:
        found = json.loads(base64.urlsafe_b64decode((token + "=" * (-len(token) % 4)).encode()))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise _invalid() from None
    if not isinstance(found, list) or len(found) != parts + 1 or found[0] != kind:
        raise _invalid()
    if not all(isinstance(part, str) for part in found[1:]):
        raise _invalid()
    return found[1:]


def decode_instant(text: str) -> datetime:
    """A token's instant (ISO 8601 with its offset), else InvalidArgument naming page_token."""
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise _invalid() from None
    if instant.tzinfo is None:
        raise _invalid()
    return instant
