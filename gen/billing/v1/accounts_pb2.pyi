import datetime

from billing.v1 import balance_pb2 as _balance_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateAccountRequest(_message.Message):
    __slots__ = ("user_id", "plan_key")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PLAN_KEY_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    plan_key: str
    def __init__(self, user_id: _Optional[str] = ..., plan_key: _Optional[str] = ...) -> None: ...

class CreateAccountResponse(_message.Message):
    __slots__ = ("user_id", "plan_key", "subscription_status", "created_at", "created", "totals")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PLAN_KEY_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_STATUS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    TOTALS_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    plan_key: str
    subscription_status: str
    created_at: _timestamp_pb2.Timestamp
    created: bool
    totals: _balance_pb2.BalanceTotals
    def __init__(self, user_id: _Optional[str] = ..., plan_key: _Optional[str] = ..., subscription_status: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created: _Optional[bool] = ..., totals: _Optional[_Union[_balance_pb2.BalanceTotals, _Mapping]] = ...) -> None: ...

class CreateGrantRequest(_message.Message):
    __slots__ = ("user_id", "source", "seconds", "reason", "idempotency_key")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    source: str
    seconds: int
    reason: str
    idempotency_key: str
    def __init__(self, user_id: _Optional[str] = ..., source: _Optional[str] = ..., seconds: _Optional[int] = ..., reason: _Optional[str] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class CreateGrantResponse(_message.Message):
    __slots__ = ("user_id", "source", "seconds", "totals", "idempotency_key", "replayed")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    TOTALS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    source: str
    seconds: int
    totals: _balance_pb2.BalanceTotals
    idempotency_key: str
    replayed: bool
    def __init__(self, user_id: _Optional[str] = ..., source: _Optional[str] = ..., seconds: _Optional[int] = ..., totals: _Optional[_Union[_balance_pb2.BalanceTotals, _Mapping]] = ..., idempotency_key: _Optional[str] = ..., replayed: _Optional[bool] = ...) -> None: ...
