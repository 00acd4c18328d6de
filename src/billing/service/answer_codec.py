"""A result dataclass <-> the JSON stored as the answer of an idempotent request.

Derived from the dataclass's own fields, so a field added to a result is stored and replayed
without a second list to keep in step. Supported field types: int, str, bool, datetime
(ISO 8601), `X | None`, `tuple[X, ...]` and nested dataclasses. The result's `replayed` flag
is not stored: decode() says whether the answer is a replay.

Answers stored before a field was added lack it: a field added to a result (or to anything it
holds) needs a default, which those replays get. tests/unit/test_answer_codec.py keeps answers
as earlier versions stored them, and they must keep decoding.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import datetime
from typing import Any, Callable, Generic, TypeVar

R = TypeVar("R")
REPLAYED_FIELD = "replayed"

_Convert = Callable[[Any], Any]


class AnswerCodec(Generic[R]):
    def __init__(self, result_type: type[R]):
        assert dataclasses.is_dataclass(result_type)
        self.result_type = result_type
        encode = _encoder(result_type)
        assert encode is not None
        self._encode = encode
        self._decode = _decoder(result_type)

    def encode(self, result: R) -> dict[str, Any]:
        return self._encode(result)

    def decode(self, stored: dict[str, Any], *, replayed: bool) -> R:
        result = self._decode(stored)
        return dataclasses.replace(result, replayed=replayed) if _has_replayed(self.result_type) else result


def _has_replayed(result_type: type) -> bool:
    return any(f.name == REPLAYED_FIELD for f in dataclasses.fields(result_type))


def _stored_fields(cls: type) -> list[tuple[str, Any]]:
    hints = typing.get_type_hints(cls)
    return [(f.name, hints[f.name]) for f in dataclasses.fields(cls) if f.name != REPLAYED_FIELD]


def _optional_of(hint: Any) -> Any | None:
    """X for `X | None`, else None."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(members) == 1 and len(typing.get_args(hint)) == 2:
            return members[0]
    return None


def _encoder(hint: Any) -> _Convert | None:
    """None where the value is stored as it is (int, str, bool): no call per field."""
    if hint in (int, str, bool):
        return None
    if hint is datetime:
        return datetime.isoformat
    inner = _optional_of(hint)
    if inner is not None:
        present = _encoder(inner)
        if present is None:
            return None
        return lambda value: None if value is None else present(value)
    if typing.get_origin(hint) is tuple:
        item, ellipsis = typing.get_args(hint)
        assert ellipsis is Ellipsis, hint
        convert = _encoder(item)
        return list if convert is None else (lambda values: [convert(v) for v in values])
    if dataclasses.is_dataclass(hint):
        fields = [(name, _encoder(field_hint)) for name, field_hint in _stored_fields(hint)]  # type: ignore[arg-type]
        return lambda value: {
            name: getattr(value, name) if convert is None else convert(getattr(value, name))
            for name, convert in fields
        }
    raise TypeError(f"answers cannot store a {hint!r}")


def _decoder(hint: Any) -> _Convert:
    if hint in (int, str, bool):
        return lambda value: value
    if hint is datetime:
        return datetime.fromisoformat
    inner = _optional_of(hint)
    if inner is not None:
        convert = _decoder(inner)
        return lambda value: None if value is None else convert(value)
    if typing.get_origin(hint) is tuple:
        convert = _decoder(typing.get_args(hint)[0])
        return lambda values: tuple(convert(v) for v in values)
    if dataclasses.is_dataclass(hint):
        fields = [(name, _decoder(field_hint)) for name, field_hint in _stored_fields(hint)]  # type: ignore[arg-type]
        make = typing.cast(Callable[..., Any], hint)
        # A field missing from an older answer takes its default (the constructor's).
        return lambda document: make(**{name: convert(document[name]) for name, convert in fields if name in document})
    raise TypeError(f"answers cannot store a {hint!r}")
