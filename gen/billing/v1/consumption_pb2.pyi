from billing.v1 import balance_pb2 as _balance_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ConsumeRequest(_message.Message):
    __slots__ = ("user_id", "operation", "seconds", "idempotency_key", "resume_token")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    RESUME_TOKEN_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    operation: str
    seconds: int
    idempotency_key: str
    resume_token: str
    def __init__(self, user_id: _Optional[str] = ..., operation: _Optional[str] = ..., seconds: _Optional[int] = ..., idempotency_key: _Optional[str] = ..., resume_token: _Optional[str] = ...) -> None: ...

class ConsumeResponse(_message.Message):
    __slots__ = ("user_id", "operation", "consumed_seconds", "taken", "totals", "idempotency_key", "replayed")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    CONSUMED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TAKEN_FIELD_NUMBER: _ClassVar[int]
    TOTALS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    operation: str
    consumed_seconds: int
    taken: _containers.RepeatedCompositeFieldContainer[BucketDebit]
    totals: _balance_pb2.BalanceTotals
    idempotency_key: str
    replayed: bool
    def __init__(self, user_id: _Optional[str] = ..., operation: _Optional[str] = ..., consumed_seconds: _Optional[int] = ..., taken: _Optional[_Iterable[_Union[BucketDebit, _Mapping]]] = ..., totals: _Optional[_Union[_balance_pb2.BalanceTotals, _Mapping]] = ..., idempotency_key: _Optional[str] = ..., replayed: _Optional[bool] = ...) -> None: ...

class BucketDebit(_message.Message):
    __slots__ = ("source", "seconds", "expires_at")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    source: str
    seconds: int
    expires_at: _struct_pb2.Value
    def __init__(self, source: _Optional[str] = ..., seconds: _Optional[int] = ..., expires_at: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class CheckSufficientBatchRequest(_message.Message):
    __slots__ = ("user_id", "operations")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATIONS_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    operations: _containers.RepeatedCompositeFieldContainer[OperationEstimate]
    def __init__(self, user_id: _Optional[str] = ..., operations: _Optional[_Iterable[_Union[OperationEstimate, _Mapping]]] = ...) -> None: ...

class OperationEstimate(_message.Message):
    __slots__ = ("operation", "estimate_seconds")
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    ESTIMATE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    operation: str
    estimate_seconds: int
    def __init__(self, operation: _Optional[str] = ..., estimate_seconds: _Optional[int] = ...) -> None: ...

class CheckSufficientBatchResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[BatchOperationResult]
    def __init__(self, results: _Optional[_Iterable[_Union[BatchOperationResult, _Mapping]]] = ...) -> None: ...

class BatchOperationResult(_message.Message):
    __slots__ = ("operation", "ok", "deficit_seconds", "suggestions")
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    DEFICIT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SUGGESTIONS_FIELD_NUMBER: _ClassVar[int]
    operation: str
    ok: bool
    deficit_seconds: int
    suggestions: _containers.RepeatedCompositeFieldContainer[Suggestion]
    def __init__(self, operation: _Optional[str] = ..., ok: _Optional[bool] = ..., deficit_seconds: _Optional[int] = ..., suggestions: _Optional[_Iterable[_Union[Suggestion, _Mapping]]] = ...) -> None: ...

class Suggestion(_message.Message):
    __slots__ = ("type", "key", "plan", "minutes")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    MINUTES_FIELD_NUMBER: _ClassVar[int]
    type: str
    key: str
    plan: str
    minutes: int
    def __init__(self, type: _Optional[str] = ..., key: _Optional[str] = ..., plan: _Optional[str] = ..., minutes: _Optional[int] = ...) -> None: ...

class InsufficientAiTime(_message.Message):
    __slots__ = ("balance_seconds", "breakdown_seconds", "suggestions", "catalog_version", "resume_token", "deficit_seconds")
    BALANCE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    BREAKDOWN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SUGGESTIONS_FIELD_NUMBER: _ClassVar[int]
    CATALOG_VERSION_FIELD_NUMBER: _ClassVar[int]
    RESUME_TOKEN_FIELD_NUMBER: _ClassVar[int]
    DEFICIT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    balance_seconds: int
    breakdown_seconds: BreakdownSeconds
    suggestions: _containers.RepeatedCompositeFieldContainer[Suggestion]
    catalog_version: str
    resume_token: str
    deficit_seconds: int
    def __init__(self, balance_seconds: _Optional[int] = ..., breakdown_seconds: _Optional[_Union[BreakdownSeconds, _Mapping]] = ..., suggestions: _Optional[_Iterable[_Union[Suggestion, _Mapping]]] = ..., catalog_version: _Optional[str] = ..., resume_token: _Optional[str] = ..., deficit_seconds: _Optional[int] = ...) -> None: ...

class BreakdownSeconds(_message.Message):
    __slots__ = ("bonus_daily", "paid")
    BONUS_DAILY_FIELD_NUMBER: _ClassVar[int]
    PAID_FIELD_NUMBER: _ClassVar[int]
    bonus_daily: int
    paid: int
    def __init__(self, bonus_daily: _Optional[int] = ..., paid: _Optional[int] = ...) -> None: ...

class ConsumeStreamRequest(_message.Message):
    __slots__ = ("consume",)
    CONSUME_FIELD_NUMBER: _ClassVar[int]
    consume: ConsumeRequest
    def __init__(self, consume: _Optional[_Union[ConsumeRequest, _Mapping]] = ...) -> None: ...

class ConsumeStreamResponse(_message.Message):
    __slots__ = ("sequence", "idempotency_key", "result", "error")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    idempotency_key: str
    result: ConsumeResponse
    error: ConsumeStreamError
    def __init__(self, sequence: _Optional[int] = ..., idempotency_key: _Optional[str] = ..., result: _Optional[_Union[ConsumeResponse, _Mapping]] = ..., error: _Optional[_Union[ConsumeStreamError, _Mapping]] = ...) -> None: ...

class ConsumeStreamError(_message.Message):
    __slots__ = ("code", "http_status", "reason", "message", "field", "insufficient_ai_time", "retry_after_seconds")
    CODE_FIELD_NUMBER: _ClassVar[int]
    HTTP_STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    INSUFFICIENT_AI_TIME_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_SECONDS_FIELD_NUMBER: _ClassVar[int]
    code: str
    http_status: int
    reason: str
    message: str
    field: str
    insufficient_ai_time: InsufficientAiTime
    retry_after_seconds: int
    def __init__(self, code: _Optional[str] = ..., http_status: _Optional[int] = ..., reason: _Optional[str] = ..., message: _Optional[str] = ..., field: _Optional[str] = ..., insufficient_ai_time: _Optional[_Union[InsufficientAiTime, _Mapping]] = ..., retry_after_seconds: _Optional[int] = ...) -> None: ...
