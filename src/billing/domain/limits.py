"""Every input has a bound; these functions check them and name the offending field."""

from __future__ import annotations

import re

from billing.domain.errors import InvalidArgument

ACCOUNT_ID_LENGTH_MAX = 128
IDEMPOTENCY_KEY_LENGTH_MAX = 128
REASON_LENGTH_MAX = 500
RESUME_TOKEN_LENGTH_MAX = 128
PAGE_TOKEN_LENGTH_MAX = 64
CONSUME_SECONDS_MAX = 86_400  # one operation is at most a day of AI time
GRANT_SECONDS_MAX = 315_360_000  # ten years
BATCH_OPERATIONS_MAX = 100
EVENTS_PAGE_DEFAULT = 50
EVENTS_PAGE_MAX = 200

OPERATIONS = ("build", "plan", "export", "metadata_generation")
GRANT_SOURCES = ("welcome", "gift", "adjustment")
USAGE_PERIODS = ("day", "month")

# fullmatch everywhere: `$` would also accept a trailing newline.
_ACCOUNT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@|-]*")
_PRINTABLE_TOKEN = re.compile(r"[\x21-\x7e]+")
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")


def bounded(value: int, field: str, default: int, maximum: int) -> int:
    """A size (page_size, limit, days ...): 0 is the default; 1..maximum as given; anything else
    names the field (a console that asks for more than the maximum has a bug worth seeing)."""
    if value == 0:
        return default
    if not 1 <= value <= maximum:
        raise InvalidArgument(f"{field} must be between 1 and {maximum}", field=field)
    return value


def require_account_id(account_id: str, field: str = "user_id") -> str:
    """The contract calls an account's id `user_id`: errors name that field."""
    if not account_id:
        raise InvalidArgument(f"{field} is required", field=field)
    if len(account_id) > ACCOUNT_ID_LENGTH_MAX:
        raise InvalidArgument(f"{field} is longer than {ACCOUNT_ID_LENGTH_MAX} characters", field=field)
    if not _ACCOUNT_ID.fullmatch(account_id):
        raise InvalidArgument(f"{field} may hold letters, digits and _ . : @ | - only", field=field)
    return account_id


def require_operation(operation: str, field: str = "operation") -> str:
    if operation not in OPERATIONS:
        raise InvalidArgument(f"{field} must be one of {', '.join(OPERATIONS)}", field=field)
    return operation


def require_seconds(seconds: int, *, field: str, minimum: int, maximum: int) -> int:
    if not minimum <= seconds <= maximum:
        raise InvalidArgument(f"{field} must be between {minimum} and {maximum}", field=field)
    return seconds


def require_token(value: str, *, field: str, max_length: int, required: bool) -> str:
    if not value:
        if required:
            raise InvalidArgument(f"{field} is required", field=field)
        return value
    if len(value) > max_length:
        raise InvalidArgument(f"{field} is longer than {max_length} characters", field=field)
    if not _PRINTABLE_TOKEN.fullmatch(value):
        raise InvalidArgument(f"{field} must be printable ASCII without spaces", field=field)
    return value


def require_idempotency_key(key: str) -> str:
    return require_token(key, field="idempotency_key", max_length=IDEMPOTENCY_KEY_LENGTH_MAX, required=True)


def require_reason(reason: str) -> str:
    if len(reason) > REASON_LENGTH_MAX:
        raise InvalidArgument(f"reason is longer than {REASON_LENGTH_MAX} characters", field="reason")
    if _CONTROL_CHARACTER.search(reason):
        raise InvalidArgument("reason may not contain control characters", field="reason")
    return reason


def page_size(limit: int) -> int:
    """AIP-158: 0 means the default, above the maximum is capped, negative is an error."""
    if limit < 0:
        raise InvalidArgument("limit must not be negative", field="limit")
    return EVENTS_PAGE_DEFAULT if limit == 0 else min(limit, EVENTS_PAGE_MAX)


def require_since_version(since_version: int, field: str = "since_version") -> int:
    """A balance stream resumes after an account version: 0 (none yet) or a positive one."""
    if since_version < 0:
        raise InvalidArgument(f"{field} must be 0 or positive", field=field)
    return since_version
