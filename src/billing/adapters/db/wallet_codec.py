"""Rows to wallets and wallets to SAVE_WALLETS' document, by column name.

Built from the column declaration (wallet_columns.py). A statement's rows are read through
a RowLayout: the position of every name it needs, resolved once per statement from the
cursor's description. Its decoders (and the document's encoders) are compiled from the
declaration, as dataclasses compiles __init__, so per row only the work a hand-written
decoder does remains: measured, decoding 16 wallets of 5 buckets costs what the positional
code did (~0.12 ms), and a document what it did (~4 us).
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, fields, is_dataclass
from datetime import datetime
from typing import Any, Callable, Mapping, Sequence

from billing.adapters.db.wallet_columns import ACCOUNT, BUCKET, Column, Columns
from billing.adapters.db.wallet_sql import ANSWER_PREFIX, REQUEST, SAVED_ACCOUNT_IDS, WRITE_OUTCOME
from billing.domain.buckets import Bucket
from billing.domain.idempotency import StoredAnswer
from billing.domain.wallet import Account, Wallet

Loaded = tuple[Wallet | None, StoredAnswer | None]

# SAVE_WALLETS' document keys besides the account's saved columns (which must not reuse them).
_DOCUMENT_KEYS = frozenset({
    "account_id", "now", "expected_version", "first_event_seq", "new_buckets", "debits", "entries",
    "idempotency_key", "request_fingerprint", "response", "outbox",
})


@dataclass(frozen=True)
class WalletRead:
    account_id: str
    now: datetime
    idempotency_key: str | None = None
    # Also load the buckets with seconds left that expired after this instant (renewal needs
    # the period that just ended). They are not usable at `now`: the domain neither counts
    # nor consumes them.
    expired_since: datetime | None = None


class WalletCodec:
    def __init__(self, account: Columns = ACCOUNT, bucket: Columns = BUCKET):
        clash = {c.name for c in account.saved} & _DOCUMENT_KEYS
        assert not clash, f"account columns {clash} clash with SAVE_WALLETS' own document keys"
        self.account = account
        self.bucket = bucket
        self._account_document = _encoder(account.saved)
        self._account_params = _encoder(account.columns, json=False)
        self._bucket_document = _encoder(bucket.columns)

    def layout(self, names: Sequence[str]) -> "RowLayout":
        return RowLayout(self, names)

    def account_params(self, account: Account) -> dict[str, Any]:
        """ADD_ACCOUNT's parameters: every declared column, from the account."""
        return {**self._account_params(account), "account_id": account.account_id, "updated_at": account.created_at}

    def document(self, wallet: Wallet, now: datetime, answer: StoredAnswer | None) -> dict[str, Any] | None:
        """The wallet's changes as one element of SAVE_WALLETS' document; None when nothing changed."""
        wallet.assert_ledger_matches_buckets()
        # A change of held seconds alone (a hold extended) is written too, moving the version: an
        # unlocked consume planned before it must fail its version check, not take held seconds.
        if not (wallet.new_entries or wallet.account_changed or answer or wallet.changed_bucket_seqs):
            return None
        account = wallet.account
        new_buckets = [wallet.bucket(seq) for seq in wallet.new_bucket_seqs]
        if any(b.granted_at != now for b in new_buckets):  # written as granted_at: must be this change's now
            raise ValueError("a new bucket's granted_at is not the instant of the change that made it")
        # Entries are numbered in SQL from first_event_seq, in order; the domain numbered them the same way.
        first_event_seq = wallet.loaded_account.last_event_seq + 1
        assert [e.event_seq for e in wallet.new_entries] == list(range(first_event_seq, account.last_event_seq + 1))
        return {
            "account_id": account.account_id,
            "now": now.isoformat(),
            "expected_version": wallet.loaded_account.version,
            "first_event_seq": first_event_seq,
            **self._account_document(account),  # the account's saved columns, under their names
            "version": wallet.loaded_account.version + 1,  # every write of the row moves it
            "new_buckets": [self._bucket_document(b) for b in new_buckets],
            "debits": [
                {"bucket_seq": seq, "seconds": seconds, "held": held, "notice": notice}
                for seq, seconds, held, notice in wallet.changes_of_existing_buckets()
            ],
            "entries": [
                {"type": e.type, "seconds": e.seconds, "reason": e.reason,
                 "bucket_seq": e.bucket_seq, "operation": e.operation, "metadata": dict(e.metadata)}
                for e in wallet.new_entries
            ],
            "outbox": [
                {"seq": row.seq, "event_id": row.event_id, "type": row.type, "payload": row.payload}
                for row in wallet.outbox
            ],
            "idempotency_key": answer.idempotency_key if answer else None,
            "request_fingerprint": answer.request_fingerprint if answer else None,
            "response": answer.document if answer else None,
        }


class RowLayout:
    """Where a statement's rows hold each name the codec reads; built once per statement."""

    def __init__(self, codec: WalletCodec, names: Sequence[str]):
        index = {name: i for i, name in enumerate(names)}
        self.names = tuple(names)
        self.request = index.get(REQUEST)
        self.answer_fingerprint = index.get(ANSWER_PREFIX + "request_fingerprint")
        self.answer_response = index.get(ANSWER_PREFIX + "response")
        self.write_outcome = index.get(WRITE_OUTCOME)
        self.saved_account_ids = index.get(SAVED_ACCOUNT_IDS)
        self.account_marker = _marker(codec.account, index)
        self.bucket_marker = _marker(codec.bucket, index)
        self.account = _decoder(codec.account, index) if self.account_marker is not None else None
        self.bucket = _decoder(codec.bucket, index) if self.bucket_marker is not None else None

    def outcome(self, row: Sequence[Any]) -> tuple[str, list[str]]:
        """(write_outcome, saved_account_ids) of SAVE_WALLETS' row or READ_AND_SAVE_WALLETS' outcome row."""
        assert self.write_outcome is not None and self.saved_account_ids is not None
        return row[self.write_outcome], row[self.saved_account_ids]

    def is_outcome(self, row: Sequence[Any]) -> bool:
        assert self.write_outcome is not None
        return row[self.write_outcome] is not None

    def wallets(self, reads: Sequence[WalletRead], rows: Sequence[Sequence[Any]]) -> list[Loaded]:
        """Per read (rows name theirs in `request`): its wallet, None without an account row,
        and its stored answer."""
        request_at, fingerprint_at, response_at = self.request, self.answer_fingerprint, self.answer_response
        account_marker, bucket_marker = self.account_marker, self.bucket_marker
        decode_account, decode_bucket = self.account, self.bucket
        assert request_at is not None and fingerprint_at is not None and response_at is not None
        assert account_marker is not None and bucket_marker is not None
        assert decode_account is not None and decode_bucket is not None
        accounts: dict[int, Account] = {}
        buckets: dict[int, list[Bucket]] = {}
        answers: dict[int, StoredAnswer] = {}
        for row in rows:
            request = row[request_at]
            read = reads[request]
            if row[account_marker] is None:
                answers[request] = StoredAnswer(read.idempotency_key or "", row[fingerprint_at], row[response_at])
                continue
            if request not in accounts:
                accounts[request] = decode_account(row, read.account_id)
                buckets[request] = []
            if row[bucket_marker] is not None:
                buckets[request].append(decode_bucket(row, read.account_id))
        return [
            (Wallet(accounts[i], buckets[i]) if i in accounts else None, answers.get(i) if i in accounts else None)
            for i in range(len(reads))
        ]

    def buckets_and_answer(
        self, account_id: str, idempotency_key: str | None, rows: Sequence[Sequence[Any]]
    ) -> tuple[list[Bucket], StoredAnswer | None]:
        """LIVE_BUCKETS_AND_REPLAY's rows: the account's buckets, and the stored answer for the key."""
        bucket_marker, decode_bucket = self.bucket_marker, self.bucket
        fingerprint_at, response_at = self.answer_fingerprint, self.answer_response
        assert bucket_marker is not None and decode_bucket is not None
        assert fingerprint_at is not None and response_at is not None
        buckets: list[Bucket] = []
        answer = None
        for row in rows:
            if row[bucket_marker] is not None:
                buckets.append(decode_bucket(row, account_id))
            else:
                answer = StoredAnswer(idempotency_key or "", row[fingerprint_at], row[response_at])
        return buckets, answer


def _marker(columns: Columns, index: Mapping[str, int]) -> int | None:
    """The position of the table's first NOT NULL column: a row holds one of the table's rows
    when that is not null (the read statements' other rows have nulls there)."""
    marker = next(c for c in columns.columns if not c.nullable)
    return index.get(columns.alias(marker))


def _decoder(columns: Columns, index: Mapping[str, int]) -> Callable[[Sequence[Any], str], Any]:
    """row, account_id -> the table's domain object, each attribute from its column by name.

    Compiled, as dataclasses compiles __init__: the names are resolved to positions here, once
    per statement, and the function does per row what a hand-written one would (for ACCOUNT:
    `Account(account_id=account_id, plan_key=row[1], ..., bonus=BonusState(month=row[7], ...))`).
    """
    namespace: dict[str, Any] = {}

    def construct(domain_type: type, paths: list[tuple[tuple[str, ...], Column]]) -> str:
        arguments: list[str] = []
        groups: dict[str, list[tuple[tuple[str, ...], Column]]] = {}
        if "account_id" in {f.name for f in fields(domain_type)}:
            arguments.append("account_id=account_id")
        for path, column in paths:
            if len(path) > 1:
                groups.setdefault(path[0], []).append((path[1:], column))
                continue
            value = f"row[{index[columns.alias(column)]}]"
            if column.decode is not None:
                namespace[f"decode_{column.name}"] = column.decode
                value = f"decode_{column.name}({value})"
            arguments.append(f"{path[0]}={value}")
        hints = typing.get_type_hints(domain_type)
        for name, group in groups.items():
            arguments.append(f"{name}={construct(_dataclass_in(hints[name]), group)}")
        assert namespace.setdefault(domain_type.__name__, domain_type) is domain_type
        return f"{domain_type.__name__}({', '.join(arguments)})"

    body = construct(columns.domain_type, [(tuple(c.attribute.split(".")), c) for c in columns.columns])
    exec(f"def decode(row, account_id):\n    return {body}\n", namespace)
    return namespace["decode"]


def _dataclass_in(hint: Any) -> type:
    """BonusState from `BonusState` or `BonusState | None`."""
    if is_dataclass(hint):
        return typing.cast(type, hint)
    [found] = [arg for arg in typing.get_args(hint) if is_dataclass(arg)]
    return typing.cast(type, found)


def _encoder(columns: tuple[Column, ...], json: bool = True) -> Callable[[Any], dict[str, Any]]:
    """domain object -> {column name: value}, for a JSON document (dates as ISO text) or as
    statement parameters. Compiled like _decoder: for ACCOUNT's saved columns,
    `{"plan_key": obj.plan_key, ..., "bonus_month": in_json_bonus_month(obj.bonus.month), ...}`."""
    namespace: dict[str, Any] = {}
    items = []
    for column in columns:
        value = f"obj.{column.attribute}"
        encode = column.in_json if json else column.encode
        if encode is not None:
            namespace[f"encode_{column.name}"] = encode
            value = f"encode_{column.name}({value})"
        items.append(f"{column.name!r}: {value}")
    exec(f"def encode(obj):\n    return {{{', '.join(items)}}}\n", namespace)
    return namespace["encode"]
