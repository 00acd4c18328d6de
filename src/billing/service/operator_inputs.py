"""Input checks shared by the console's reads: bounded sizes and opaque page tokens."""

from __future__ import annotations

import base64
import binascii

from billing.domain.errors import InvalidArgument

PAGE_TOKEN_LENGTH_MAX = 200


def bounded(value: int, field: str, default: int, maximum: int) -> int:
    """0 is the default; 1..maximum as given; anything else names the field."""
    if value == 0:
        return default
    if not 1 <= value <= maximum:
        raise InvalidArgument(f"{field} must be between 1 and {maximum}", field=field)
    return value


def encode_token(kind: str, *parts: str) -> str:
    """An opaque token: `kind` says which listing issued it (a ledger's token is no run list's)."""
    return base64.urlsafe_b64encode("|".join((kind, *parts)).encode()).decode()


def decode_token(token: str, kind: str, parts: int) -> list[str] | None:
    """None for no token; the parts of a token `kind` issued, else InvalidArgument naming page_token."""
    if not token:
        return None
    invalid = InvalidArgument("page_token is not a token this listing issued", field="page_token")
    if len(token) > PAGE_TOKEN_LENGTH_MAX:
        raise invalid
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid from None
    found = text.split("|")
    if len(found) != parts + 1 or found[0] != kind:
        raise invalid
    return found[1:]
