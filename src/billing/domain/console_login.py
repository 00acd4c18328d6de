"""Console sign-in codes (issue 23): a one-time code for a short-lived admin key.

The code is 256 random bits (43 URL-safe characters); only its SHA-256 digest is stored, so the
table leaks nothing usable. It is redeemed once, within CODE_TTL, for the key's id and secret.
"""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

CODE_BYTES = 32
CODE_TTL = timedelta(minutes=10)
CONSOLE_KEY_TTL = timedelta(hours=8)
CONSOLE_KEY_TTL_MAX = timedelta(hours=24)
CODE_LENGTH_MAX = 64
_CODE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def code_digest(code: str) -> bytes:
    return hashlib.sha256(code.encode()).digest()


def plausible_code(code: str) -> bool:
    """A code this service could have minted (anything else is refused as unknown, the same way)."""
    return bool(_CODE.fullmatch(code))
