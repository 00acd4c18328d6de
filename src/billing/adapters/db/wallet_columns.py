"""The wallet's columns, declared once: what each is in SQL, in Python and in the domain.

Every statement of wallet_sql.py and the wallet's codec (wallet_codec.py) are built from
this declaration: the read statements' select lists, the record type and SET list of the
write, the keys of the write's JSON document, and the decoding of rows into Account and
Bucket. Adding an account column is: a Column here, an Alembic migration (and tables.py,
which mirrors the schema; tests/unit/test_wallet_columns.py checks the two agree), and the
field of the domain dataclass.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Callable

from billing.domain.buckets import Bucket, Source
from billing.domain.wallet import Account


@dataclass(frozen=True)
class Column:
    name: str  # the table's column, and its key in SAVE_WALLETS' JSON document
    sql_type: str  # as jsonb_to_recordset's record type spells it
    python_type: type  # what psycopg returns for it (or None, when nullable)
    attribute: str  # where it lives in the domain object: "plan_key", or dotted: "bonus.month"
    nullable: bool = False
    decode: Callable[[Any], Any] | None = None  # database value -> domain value; None: as is
    encode: Callable[[Any], Any] | None = None  # domain value -> database value; None: as is
    saved: bool = True  # written by every wallet change; False: set once, when the row is created

    @property
    def in_json(self) -> Callable[[Any], Any] | None:
        """Domain value -> its value in a JSON document (None: as is): dates as ISO text."""
        if self.python_type in (date, datetime):
            encode = self.encode
            if encode is None:
                return _iso_or_none
            return lambda value: _iso_or_none(encode(value))
        return self.encode


@dataclass(frozen=True)
class Columns:
    """The mapped columns of one table: those a wallet reads and writes."""

    table: str
    domain_type: type  # the frozen dataclass a row decodes into
    prefix: str  # of the columns' names in the read statements' rows: no clash between tables
    columns: tuple[Column, ...]
    # Not among `columns`: known from the request (account_id), or only ever written (updated_at).

    def alias(self, column: Column | str) -> str:
        return self.prefix + (column if isinstance(column, str) else column.name)

    @property
    def saved(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.saved)

    def select_list(self, table_alias: str) -> str:
        """`a.plan_key AS account_plan_key, ...`"""
        return ", ".join(f"{table_alias}.{c.name} AS {self.alias(c)}" for c in self.columns)

    def null_list(self) -> str:
        """As many NULLs as select_list has columns (another UNION ALL branch's)."""
        return ", ".join("NULL" for _ in self.columns)

    def record_type(self, columns: tuple[Column, ...] | None = None) -> str:
        """`plan_key text, ...`: a jsonb_to_recordset record type."""
        return ", ".join(f"{c.name} {c.sql_type}" for c in (self.columns if columns is None else columns))

    def names(self, columns: tuple[Column, ...] | None = None) -> str:
        return ", ".join(c.name for c in (self.columns if columns is None else columns))


def _iso_or_none(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


_SOURCES = {source.value: source for source in Source}  # Source(text) goes through EnumMeta.__call__

ACCOUNT = Columns(
    table="accounts",
    domain_type=Account,
    prefix="account_",
    columns=(
        Column("plan_key", "text", str, "plan_key"),
        Column("subscription_status", "text", str, "subscription_status"),
        Column("created_at", "timestamptz", datetime, "created_at", saved=False),
        Column("last_bucket_seq", "int", int, "last_bucket_seq"),
        Column("last_event_seq", "bigint", int, "last_event_seq"),
        Column("version", "bigint", int, "version"),
        Column("bonus_last_grant_on", "date", date, "bonus.last_grant_on", nullable=True),
        Column("bonus_month", "date", date, "bonus.month", nullable=True),
        Column("bonus_used_seconds", "int", int, "bonus.used_seconds"),
        Column("subscription_period_start", "timestamptz", datetime, "subscription.period_start", nullable=True),
        Column("subscription_period_end", "timestamptz", datetime, "subscription.period_end", nullable=True),
        Column("subscription_cancel_at_period_end", "boolean", bool, "subscription.cancel_at_period_end"),
        Column("subscription_pending_plan_key", "text", str, "subscription.pending_plan_key", nullable=True),
        Column("subscription_closes_at", "timestamptz", datetime, "subscription.closes_at", nullable=True),
        Column("subscription_rollover_warned_seq", "int", int, "subscription.rollover_warned_through_seq"),
        Column("topup_enabled", "boolean", bool, "auto_topup.enabled"),
        Column("topup_threshold_seconds", "int", int, "auto_topup.threshold_seconds"),
        Column("topup_package_key", "text", str, "auto_topup.package_key", nullable=True),
        Column("topup_currency", "text", str, "auto_topup.currency", nullable=True),
        Column("topup_seq", "int", int, "auto_topup.seq"),
        Column("topup_pending_since", "timestamptz", datetime, "auto_topup.pending_since", nullable=True),
        Column("topup_failures", "int", int, "auto_topup.failures"),
        Column("topup_retry_at", "timestamptz", datetime, "auto_topup.retry_at", nullable=True),
        Column("topup_last_failure", "text", str, "auto_topup.last_failure", nullable=True),
        Column("holds_open_count", "int", int, "holds.open_count"),
        Column("holds_next_expiry_at", "timestamptz", datetime, "holds.next_expiry_at", nullable=True),
        Column("alert_thresholds", "jsonb", object, "alerts.thresholds_seconds", nullable=True,
               decode=lambda value: None if value is None else tuple(value),
               encode=lambda value: None if value is None else list(value)),
        Column("alert_below_seconds", "int", int, "alerts.below_seconds", nullable=True),
        Column("last_outbound_seq", "bigint", int, "last_outbound_seq"),
        Column("credit_notice_at", "timestamptz", datetime, "credit_notice_at", nullable=True),
    ),
)

BUCKET = Columns(
    table="buckets",
    domain_type=Bucket,
    prefix="bucket_",
    columns=(
        Column("bucket_seq", "int", int, "bucket_seq"),
        Column("source", "text", str, "source", decode=_SOURCES.__getitem__, encode=str),
        Column("granted_seconds", "int", int, "granted_seconds"),
        Column("remaining_seconds", "int", int, "remaining_seconds"),
        Column("granted_at", "timestamptz", datetime, "granted_at"),
        Column("expires_at", "timestamptz", datetime, "expires_at", nullable=True),
        Column("held_seconds", "int", int, "held_seconds"),
        Column("expiry_notice", "smallint", int, "expiry_notice"),
    ),
)
