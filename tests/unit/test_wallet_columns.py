"""The wallet's columns are declared once (adapters/db/wallet_columns.py): the statements, the
write's document and the decoding of rows all come from the declaration, so a new account
column needs the declaration, a migration (and tables.py) and the domain field, and nothing else."""

from __future__ import annotations

import dataclasses
import re
import typing
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy.dialects import postgresql

from billing.adapters.db import tables, wallet_sql
from billing.adapters.db.wallet_codec import WalletCodec, WalletRead
from billing.adapters.db.wallet_columns import ACCOUNT, BUCKET, Column, Columns
from billing.adapters.db.wallet_queries import wallet_document
from billing.domain.buckets import Bucket, Source
from billing.domain.idempotency import StoredAnswer
from billing.domain.wallet import Account, BonusState, Wallet

UTC = timezone.utc
NOW = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)

# The next issue's column, as it would be added: nullable, on the account.
PERIOD_END = Column("current_period_end", "timestamptz", datetime, "current_period_end", nullable=True)


@dataclasses.dataclass(frozen=True)
class PeriodAccount(Account):
    current_period_end: datetime | None = None


EXTENDED = dataclasses.replace(ACCOUNT, domain_type=PeriodAccount, columns=ACCOUNT.columns + (PERIOD_END,))
SQL_TYPES = {"int": "integer", "timestamptz": "timestamp with time zone"}


@pytest.mark.parametrize("declared, table", [(ACCOUNT, tables.accounts), (BUCKET, tables.buckets)])
def test_the_declaration_mirrors_the_schema(declared: Columns, table):
    assert declared.table == table.name
    for column in declared.columns:
        schema = table.c[column.name]
        assert SQL_TYPES.get(column.sql_type, column.sql_type) == str(schema.type.compile(dialect=postgresql.dialect())).lower()
        assert column.python_type is schema.type.python_type
        assert column.nullable == schema.nullable, column.name
    # Every column but the key and the write's own timestamp is mapped.
    unmapped = {c.name for c in table.columns} - {c.name for c in declared.columns}
    assert unmapped == ({"account_id", "updated_at"} if table is tables.accounts else {"account_id"})


def _leaf_attributes(domain_type, prefix="") -> set[str]:
    leaves, hints = set(), typing.get_type_hints(domain_type)
    for field in dataclasses.fields(domain_type):
        if dataclasses.is_dataclass(hints[field.name]):
            leaves |= _leaf_attributes(hints[field.name], f"{prefix}{field.name}.")
        else:
            leaves.add(prefix + field.name)
    return leaves


@pytest.mark.parametrize("declared", [ACCOUNT, BUCKET])
def test_every_domain_attribute_has_its_column(declared: Columns):
    assert _leaf_attributes(declared.domain_type) - {"account_id"} == {c.attribute for c in declared.columns}


def test_an_added_account_column_reaches_every_statement():
    statements = wallet_sql.build(EXTENDED, BUCKET)

    for read in (statements.lock_account, statements.read_wallets, statements.read_and_save_wallets):
        assert "a.current_period_end AS account_current_period_end" in read
    assert "account_current_period_end" in statements.read_columns
    for write in (statements.save_wallets, statements.read_and_save_wallets):
        record_type = re.search(r"AS w\((.*?)\)\n", write, re.S).group(1)
        assert "current_period_end timestamptz" in record_type
        set_list = re.search(r"UPDATE accounts a SET(.*?)FROM", write, re.S).group(1)
        assert "current_period_end = w.current_period_end" in set_list
    assert "current_period_end" in re.search(r"INSERT INTO accounts \((.*?)\)", statements.add_account).group(1)
    assert "%(current_period_end)s" in statements.add_account
    # The read branches still line up: every UNION ALL branch has as many columns as the first.
    for read in (statements.read_wallets, statements.read_and_save_wallets):
        assert len(set(_branch_widths(read))) == 1


def _branch_widths(statement: str) -> list[int]:
    rows = statement[statement.index("\nSELECT r.request"):]
    return [
        len(re.split(r",(?![^(]*\))", re.search(r"SELECT (.*?)\nFROM", branch, re.S).group(1)))
        for branch in rows.split("UNION ALL")
    ]


def test_an_added_account_column_is_written_in_the_document_and_decoded_from_rows():
    codec = WalletCodec(EXTENDED, BUCKET)
    period_end = NOW + timedelta(days=30)
    account = PeriodAccount("u", "pro", "active", NOW - timedelta(days=1), last_bucket_seq=1, last_event_seq=1,
                            current_period_end=period_end)
    bucket = Bucket("u", 1, Source.SUBSCRIPTION, 600, 600, NOW - timedelta(days=1), period_end)
    wallet = Wallet(account, [bucket])
    wallet.consume("build", 60, NOW)

    document = codec.document(wallet, NOW, None)
    assert document["current_period_end"] == period_end.isoformat()
    assert codec.account_params(account)["current_period_end"] == period_end

    names = wallet_sql.build(EXTENDED, BUCKET).read_columns
    values = {
        "request": 0, **{EXTENDED.alias(c): _value_of(account, c) for c in EXTENDED.columns},
        **{BUCKET.alias(c): _value_of(bucket, c) for c in BUCKET.columns},
        "answer_request_fingerprint": None, "answer_response": None,
    }
    [(loaded, answer)] = codec.layout(names).wallets([WalletRead("u", NOW)], [tuple(values[n] for n in names)])
    assert loaded.account == account and loaded.account.current_period_end == period_end
    assert loaded.buckets == [bucket] and answer is None


def _value_of(obj, column: Column):
    value = obj
    for attribute in column.attribute.split("."):
        value = getattr(value, attribute)
    return str(value) if column.name == "source" else value


def test_the_document_keys_are_the_saved_columns_and_the_write_parameters():
    account = Account("u", "free", "inactive", NOW - timedelta(days=3), bonus=BonusState(date(2026, 3, 13), date(2026, 3, 1), 30))
    wallet = Wallet(account, [])
    answer = StoredAnswer("k", "consume:build:60", {"ok": True})
    wallet.credit(Source.GIFT, 60, expires_at=None, now=NOW, event_type="adjustment", reason="x")

    document = wallet_document(wallet, NOW, answer)

    record_type = re.search(r"AS w\((.*?)\)\n", wallet_sql.SAVE_WALLETS, re.S).group(1)
    assert set(document) == {entry.split()[0] for entry in record_type.split(",")}
    assert document["bonus_month"] == "2026-03-01" and "created_at" not in document
    [new_bucket] = document["new_buckets"]
    new_bucket_type = re.search(r"AS n\((.*?)\)\n", wallet_sql.SAVE_WALLETS, re.S).group(1)
    assert set(new_bucket) == {entry.split()[0] for entry in new_bucket_type.split(",")}
    assert new_bucket["source"] == "gift" and new_bucket["granted_at"] == NOW.isoformat()
