"""Legacy balances (the contract's `LegacyBalance`, one per line of a JSON-lines or CSV file)
and what each opens here, as the guide's `migrateLegacyBalance` maps them.

Pure: rows come in as lines of bytes, go out as LegacyRow (valid) or BadRow (why not).
The SQL that writes the openings (adapters/db/legacy_import.py) mirrors `opening` and
`opening_buckets`; the integration tests hold the two together.

Reading is the migration's only per-row Python work (a million rows per run), so valid rows
take a fast path of type and range checks; anything it does not accept goes through the
slow path, which finds the reason.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Iterable, Iterator, NamedTuple

from billing.domain.buckets import Source
from billing.domain.catalog import Catalog, Plan
from billing.domain.clock_math import assert_utc, first_day_of_month, next_utc_midnight
from billing.domain.errors import InvalidArgument
from billing.domain.limits import ACCOUNT_ID_LENGTH_MAX, GRANT_SECONDS_MAX, require_account_id
from billing.domain.wallet import BALANCE_SECONDS_MAX, EventType

JSONL, CSV = "jsonl", "csv"
SECONDS_FIELDS = ("paid_seconds_remaining", "welcome_bonus_seconds", "daily_gift_used_today")
REQUIRED_FIELDS = ("user_id", *SECONDS_FIELDS)
DEFAULT_PLAN = "free"
# A day's use of the daily gift cannot exceed the day itself.
DAILY_USED_SECONDS_MAX = 86_400
SECONDS_MAX = {
    "paid_seconds_remaining": GRANT_SECONDS_MAX,
    "welcome_bonus_seconds": GRANT_SECONDS_MAX,
    "daily_gift_used_today": DAILY_USED_SECONDS_MAX,
}
# Paid + welcome + a daily bucket (at most a day) can never pass the balance ceiling, so no
# row needs that check.
assert 2 * GRANT_SECONDS_MAX + DAILY_USED_SECONDS_MAX <= BALANCE_SECONDS_MAX
SUBSCRIPTION_INACTIVE, SUBSCRIPTION_ACTIVE = "inactive", "active"
_SHOWN_MAX = 40  # characters of an offending value quoted in a reason
_BOM = b"\xef\xbb\xbf"
# require_account_id's rule as one match, for the fast path (the slow path words the reason).
_VALID_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@|-]{0,%d}" % (ACCOUNT_ID_LENGTH_MAX - 1)).fullmatch


class LegacyRow(NamedTuple):
    line: int  # 1-based line of the file the record starts on
    user_id: str
    paid_seconds: int
    welcome_seconds: int
    daily_used_seconds: int
    plan_key: str

    def record(self) -> str:
        """The row as one tab-separated line: line, user_id, plan_key, paid, welcome, used.
        No field needs escaping (ids and plan keys hold no tab, newline or backslash), so it
        is also a line of PostgreSQL's COPY text format."""
        return (f"{self.line}\t{self.user_id}\t{self.plan_key}\t{self.paid_seconds}\t{self.welcome_seconds}\t"
                f"{self.daily_used_seconds}\n")


@dataclass(frozen=True, slots=True)
class BadRow:
    line: int
    user_id: str | None  # as read, when there was one
    reason: str


@dataclass(frozen=True, slots=True)
class Opening:
    """What a row opens beyond its buckets: the account's status and today's bonus state."""

    subscription_status: str
    daily_bonus_seconds: int  # today's daily bucket; 0: none
    bonus_used_seconds: int  # counted against this month's bonus cap


@dataclass(frozen=True)
class OpeningBucket:
    bucket_seq: int
    source: Source
    seconds: int
    expires_at: datetime | None
    event_type: str
    reason: str


REASONS = {
    Source.WELCOME: "Welcome bonus (legacy migration)",
    Source.SUBSCRIPTION: "Paid time (legacy migration)",
    Source.DAILY: "Daily bonus",
}


def subscription_status(plan: Plan) -> str:
    # Legacy subscribers keep their plan; no period is opened (payments start with Checkout).
    return SUBSCRIPTION_INACTIVE if plan.key == DEFAULT_PLAN else SUBSCRIPTION_ACTIVE


def opening(row: LegacyRow, plan: Plan) -> Opening:
    """Today's gift use counts against today's daily bonus, as if the service had granted it today."""
    daily = plan.daily_bonus_seconds
    return Opening(
        subscription_status=subscription_status(plan),
        daily_bonus_seconds=max(0, daily - row.daily_used_seconds),
        bonus_used_seconds=min(row.daily_used_seconds, daily),
    )


def opening_buckets(row: LegacyRow, plan: Plan, now: datetime) -> list[OpeningBucket]:
    """The buckets a row opens, in bucket_seq order (welcome, paid, daily), one ledger entry each."""
    assert_utc(now)
    parts = [
        (Source.WELCOME, row.welcome_seconds, None, EventType.ADJUSTMENT),
        (Source.SUBSCRIPTION, row.paid_seconds, None, EventType.ADJUSTMENT),
        (Source.DAILY, opening(row, plan).daily_bonus_seconds, next_utc_midnight(now), EventType.DAILY_BONUS),
    ]
    buckets: list[OpeningBucket] = []
    for source, seconds, expires_at, event_type in parts:
        if seconds > 0:
            buckets.append(OpeningBucket(len(buckets) + 1, source, seconds, expires_at, event_type, REASONS[source]))
    return buckets


def bonus_days(now: datetime) -> tuple[date, date]:
    """(bonus_last_grant_on, bonus_month) of a migrated account: today's bonus counts as granted."""
    assert_utc(now)
    return now.date(), first_day_of_month(now.date())


def ledger_metadata(source: Source, line: int, source_file: str) -> dict[str, Any]:
    return {"source": str(source), "migration": "legacy", "source_file": source_file, "source_line": line}


# --- reading -------------------------------------------------------------------------------------


def detect_format(name: str, head: bytes) -> str:
    """By extension (.jsonl/.ndjson/.json, .csv), else by content: a JSON object starts with '{'."""
    lowered = name.lower()
    if lowered.endswith((".jsonl", ".ndjson", ".json")):
        return JSONL
    if lowered.endswith(".csv"):
        return CSV
    return JSONL if head.lstrip(_BOM + b" \t\r\n").startswith(b"{") else CSV


class HeaderError(ValueError):
    """The CSV header lacks a required column: no row can be read."""


def read_rows(lines: Iterable[bytes], fmt: str, catalog: Catalog) -> Iterator[LegacyRow | BadRow]:
    """Every record of the file, in order; blank lines are skipped. Raises HeaderError only."""
    validator = _Validator(catalog)
    if fmt == JSONL:
        return _jsonl_rows(lines, validator)
    return _csv_rows(lines, validator)


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object naming a key twice is ambiguous (json keeps the last value): a bad row."""
    record = dict(pairs)
    if len(record) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(f"the key {_shown(key)} appears more than once")
            seen.add(key)
    return record


def _jsonl_rows(lines: Iterable[bytes], validator: "_Validator") -> Iterator[LegacyRow | BadRow]:
    decode = json.JSONDecoder(object_pairs_hook=_unique_keys).decode
    plans, valid_id, grant_max, used_max = validator.plans, _VALID_ID, GRANT_SECONDS_MAX, DAILY_USED_SECONDS_MAX
    for number, raw in enumerate(lines, start=1):
        try:
            text = raw.decode()
        except UnicodeDecodeError:
            yield BadRow(number, None, "the line is not valid UTF-8")
            continue
        if number == 1:
            text = text.lstrip("\ufeff")
        if not text or text.isspace():
            continue
        try:
            record = decode(text)
        except _DuplicateKey as error:
            yield BadRow(number, None, str(error))
            continue
        except ValueError as error:
            yield BadRow(number, None, f"not valid JSON ({error})")
            continue
        if type(record) is not dict:
            yield BadRow(number, None, f"expected a JSON object, found {type(record).__name__}")
            continue
        get = record.get
        user_id, paid, welcome, used, plan_key = (
            get("user_id"), get("paid_seconds_remaining"), get("welcome_bonus_seconds"),
            get("daily_gift_used_today"), get("plan_key"),
        )
        if (
            type(user_id) is str and type(paid) is int and type(welcome) is int and type(used) is int
            and 0 <= paid <= grant_max and 0 <= welcome <= grant_max and 0 <= used <= used_max
            and (plan_key is None or (type(plan_key) is str and plan_key in plans)) and valid_id(user_id)
        ):
            yield LegacyRow(number, user_id, paid, welcome, used, plan_key or DEFAULT_PLAN)
        else:
            yield validator.row(number, user_id, paid, welcome, used, plan_key)


def _csv_rows(lines: Iterable[bytes], validator: "_Validator") -> Iterator[LegacyRow | BadRow]:
    # Bytes are decoded here, not by open(): an undecodable line becomes a bad row, not the end of the run.
    reader = csv.reader(_decoded(lines), strict=True)
    plans, valid_id, grant_max, used_max = validator.plans, _VALID_ID, GRANT_SECONDS_MAX, DAILY_USED_SECONDS_MAX
    header: list[str] | None = None
    id_at = paid_at = welcome_at = used_at = 0
    plan_at: int | None = None
    ended_on = 0
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield BadRow(ended_on + 1, None, f"not valid CSV ({error})")
            ended_on = reader.line_num
            continue
        number, ended_on = ended_on + 1, reader.line_num
        if not record or (len(record) == 1 and not record[0].strip()):
            continue
        if header is None:
            header = [name.strip() for name in record]
            missing = [name for name in REQUIRED_FIELDS if name not in header]
            if missing:
                raise HeaderError(f"line {number}: the CSV header lacks {', '.join(missing)} (it is {','.join(header)})")
            twice = sorted({name for name in header if header.count(name) > 1 and name})
            if twice:
                raise HeaderError(f"line {number}: the CSV header names {', '.join(twice)} more than once")
            id_at, paid_at, welcome_at, used_at = (header.index(name) for name in REQUIRED_FIELDS)
            plan_at = header.index("plan_key") if "plan_key" in header else None
            continue
        if len(record) != len(header):
            yield BadRow(number, None, f"expected {len(header)} fields as in the header, found {len(record)}")
            continue
        user_id, paid, welcome, used = record[id_at], record[paid_at], record[welcome_at], record[used_at]
        plan_key = "" if plan_at is None else record[plan_at]
        if (
            paid.isdigit() and welcome.isdigit() and used.isdigit() and paid.isascii() and welcome.isascii()
            and used.isascii() and len(paid) < 12 and len(welcome) < 12 and len(used) < 12
            and (not plan_key or plan_key in plans) and valid_id(user_id)
        ):
            paid_s, welcome_s, used_s = int(paid), int(welcome), int(used)
            if paid_s <= grant_max and welcome_s <= grant_max and used_s <= used_max:
                yield LegacyRow(number, user_id, paid_s, welcome_s, used_s, plan_key or DEFAULT_PLAN)
                continue
        if any(_undecodable(value) for value in (user_id, paid, welcome, used, plan_key)):
            yield BadRow(number, None, "the line is not valid UTF-8")
            continue
        yield validator.row(number, user_id, paid, welcome, used, plan_key, text=True)


def _decoded(lines: Iterable[bytes]) -> Iterator[str]:
    for number, raw in enumerate(lines, start=1):
        if number == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM):]
        yield raw.decode("utf-8", "surrogateescape")


def _undecodable(value: str | None) -> bool:
    return value is not None and not value.isascii() and any("\udc80" <= ch <= "\udcff" for ch in value)


def _shown(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= _SHOWN_MAX else shown[: _SHOWN_MAX - 3] + "..."


class _Validator:
    """The slow path: accepts what the fast paths do (and a little more: surrounding spaces in
    CSV fields, numeric user ids in JSON), and otherwise says why not."""

    def __init__(self, catalog: Catalog):
        self.plans = frozenset(plan.key for plan in catalog.plans)
        assert not any(set(key) & set("\t\n\r\\") for key in self.plans), "records carry plan keys unescaped"
        self._known = ", ".join(plan.key for plan in catalog.plans)

    def row(
        self, line: int, user_id: Any, paid: Any, welcome: Any, used: Any, plan_key: Any, *, text: bool = False
    ) -> LegacyRow | BadRow:
        if text and isinstance(user_id, str):
            user_id = user_id.strip()
        if isinstance(user_id, int) and not isinstance(user_id, bool):
            user_id = str(user_id)  # numeric ids of a legacy JSON export
        if user_id is None or user_id == "":
            return BadRow(line, None, "user_id is missing")
        if not isinstance(user_id, str):
            return BadRow(line, None, f"user_id must be a string, found {_shown(user_id)}")
        try:
            require_account_id(user_id)
        except InvalidArgument as error:
            return BadRow(line, _shown(user_id), error.message)
        seconds = []
        for name, value in zip(SECONDS_FIELDS, (paid, welcome, used)):
            parsed = _seconds(name, value, text)
            if isinstance(parsed, str):
                return BadRow(line, user_id, parsed)
            seconds.append(parsed)
        if text and isinstance(plan_key, str):
            plan_key = plan_key.strip()
        # An empty CSV cell is CSV's only way to say "none"; JSON says it with null or no key, so
        # an empty string there is a value, and no plan's.
        if plan_key is None or (text and plan_key == ""):
            plan_key = DEFAULT_PLAN
        if plan_key == "":
            return BadRow(line, user_id, "plan_key is empty (leave it out, or null, for the free plan)")
        if not isinstance(plan_key, str) or plan_key not in self.plans:
            return BadRow(line, user_id, f"plan_key {_shown(plan_key)} is not a catalog plan ({self._known})")
        return LegacyRow(line, user_id, seconds[0], seconds[1], seconds[2], plan_key)


def _seconds(name: str, value: Any, text: bool) -> int | str:
    """The number, or why not."""
    if text and isinstance(value, str):
        stripped = value.strip()
        if stripped == "":
            return f"{name} is missing"
        digits = stripped[1:] if stripped[0] in "+-" else stripped
        if not (digits.isascii() and digits.isdigit()):
            return f"{name} must be a whole number of seconds, found {_shown(value)}"
        if len(digits) > 12:
            return f"{name} is over the limit of {SECONDS_MAX[name]:,} seconds"
        value = int(stripped)
    if value is None:
        return f"{name} is missing"
    if isinstance(value, bool) or not isinstance(value, int):
        return f"{name} must be a whole number of seconds, found {_shown(value)}"
    if value < 0:
        return f"{name} must not be negative, found {value}"
    if value > SECONDS_MAX[name]:
        return f"{name} is over the limit of {SECONDS_MAX[name]:,} seconds, found {value:,}"
    return value
