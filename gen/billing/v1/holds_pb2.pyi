import datetime

from billing.v1 import balance_pb2 as _balance_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Hold(_message.Message):
    __slots__ = ("hold_id", "user_id", "operation", "held_seconds", "committed_seconds", "state", "expires_at")
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    HELD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    COMMITTED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    hold_id: str
    user_id: str
    operation: str
    held_seconds: int
    committed_seconds: int
    state: str
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, hold_id: _Optional[str] = ..., user_id: _Optional[str] = ..., operation: _Optional[str] = ..., held_seconds: _Optional[int] = ..., committed_seconds: _Optional[int] = ..., state: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateHoldRequest(_message.Message):
    __slots__ = ("user_id", "hold_id", "operation", "seconds", "ttl_seconds", "resume_token")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RESUME_TOKEN_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    hold_id: str
    operation: str
    seconds: int
    ttl_seconds: int
    resume_token: str
    def __init__(self, user_id: _Optional[str] = ..., hold_id: _Optional[str] = ..., operation: _Optional[str] = ..., seconds: _Optional[int] = ..., ttl_seconds: _Optional[int] = ..., resume_token: _Optional[str] = ...) -> None: ...

class ExtendHoldRequest(_message.Message):
    __slots__ = ("user_id", "hold_id", "seconds", "ttl_seconds", "idempotency_key")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    hold_id: str
    seconds: int
    ttl_seconds: int
    idempotency_key: str
    def __init__(self, user_id: _Optional[str] = ..., hold_id: _Optional[str] = ..., seconds: _Optional[int] = ..., ttl_seconds: _Optional[int] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class CommitHoldRequest(_message.Message):
    __slots__ = ("user_id", "hold_id", "used_seconds", "final")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    USED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    hold_id: str
    used_seconds: int
    final: bool
    def __init__(self, user_id: _Optional[str] = ..., hold_id: _Optional[str] = ..., used_seconds: _Optional[int] = ..., final: _Optional[bool] = ...) -> None: ...

class ReleaseHoldRequest(_message.Message):
    __slots__ = ("user_id", "hold_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    hold_id: str
    def __init__(self, user_id: _Optional[str] = ..., hold_id: _Optional[str] = ...) -> None: ...

class ListHoldsRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class HoldResponse(_message.Message):
    __slots__ = ("hold", "totals")
    HOLD_FIELD_NUMBER: _ClassVar[int]
    TOTALS_FIELD_NUMBER: _ClassVar[int]
    hold: Hold
    totals: _balance_pb2.BalanceTotals
    def __init__(self, hold: _Optional[_Union[Hold, _Mapping]] = ..., totals: _Optional[_Union[_balance_pb2.BalanceTotals, _Mapping]] = ...) -> None: ...

class ListHoldsResponse(_message.Message):
    __slots__ = ("holds", "totals")
    HOLDS_FIELD_NUMBER: _ClassVar[int]
    TOTALS_FIELD_NUMBER: _ClassVar[int]
    holds: _containers.RepeatedCompositeFieldContainer[Hold]
    totals: _balance_pb2.BalanceTotals
    def __init__(self, holds: _Optional[_Iterable[_Union[Hold, _Mapping]]] = ..., totals: _Optional[_Union[_balance_pb2.BalanceTotals, _Mapping]] = ...) -> None: ...
