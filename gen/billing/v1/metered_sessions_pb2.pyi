from billing.v1 import consumption_pb2 as _consumption_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MeterSessionRequest(_message.Message):
    __slots__ = ("open", "report", "done")
    OPEN_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    open: MeterSessionOpen
    report: MeterSessionReport
    done: MeterSessionDone
    def __init__(self, open: _Optional[_Union[MeterSessionOpen, _Mapping]] = ..., report: _Optional[_Union[MeterSessionReport, _Mapping]] = ..., done: _Optional[_Union[MeterSessionDone, _Mapping]] = ...) -> None: ...

class MeterSessionOpen(_message.Message):
    __slots__ = ("user_id", "session_id", "operation", "block_seconds", "max_seconds")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    BLOCK_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAX_SECONDS_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    session_id: str
    operation: str
    block_seconds: int
    max_seconds: int
    def __init__(self, user_id: _Optional[str] = ..., session_id: _Optional[str] = ..., operation: _Optional[str] = ..., block_seconds: _Optional[int] = ..., max_seconds: _Optional[int] = ...) -> None: ...

class MeterSessionReport(_message.Message):
    __slots__ = ("elapsed_seconds",)
    ELAPSED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    elapsed_seconds: int
    def __init__(self, elapsed_seconds: _Optional[int] = ...) -> None: ...

class MeterSessionDone(_message.Message):
    __slots__ = ("elapsed_seconds",)
    ELAPSED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    elapsed_seconds: int
    def __init__(self, elapsed_seconds: _Optional[int] = ...) -> None: ...

class MeterSessionResponse(_message.Message):
    __slots__ = ("session_id", "committed_seconds", "held_seconds", "remaining_seconds", "exhausted", "max_reached", "settled")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    COMMITTED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    HELD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    REMAINING_SECONDS_FIELD_NUMBER: _ClassVar[int]
    EXHAUSTED_FIELD_NUMBER: _ClassVar[int]
    MAX_REACHED_FIELD_NUMBER: _ClassVar[int]
    SETTLED_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    committed_seconds: int
    held_seconds: int
    remaining_seconds: int
    exhausted: _consumption_pb2.InsufficientAiTime
    max_reached: bool
    settled: bool
    def __init__(self, session_id: _Optional[str] = ..., committed_seconds: _Optional[int] = ..., held_seconds: _Optional[int] = ..., remaining_seconds: _Optional[int] = ..., exhausted: _Optional[_Union[_consumption_pb2.InsufficientAiTime, _Mapping]] = ..., max_reached: _Optional[bool] = ..., settled: _Optional[bool] = ...) -> None: ...
