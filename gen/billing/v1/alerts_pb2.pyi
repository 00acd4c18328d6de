from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class AlertThresholds(_message.Message):
    __slots__ = ("user_id", "thresholds_seconds", "is_default")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    THRESHOLDS_SECONDS_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    thresholds_seconds: _containers.RepeatedScalarFieldContainer[int]
    is_default: bool
    def __init__(self, user_id: _Optional[str] = ..., thresholds_seconds: _Optional[_Iterable[int]] = ..., is_default: _Optional[bool] = ...) -> None: ...

class GetAlertThresholdsRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class SetAlertThresholdsRequest(_message.Message):
    __slots__ = ("user_id", "thresholds_seconds", "use_default")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    THRESHOLDS_SECONDS_FIELD_NUMBER: _ClassVar[int]
    USE_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    thresholds_seconds: _containers.RepeatedScalarFieldContainer[int]
    use_default: bool
    def __init__(self, user_id: _Optional[str] = ..., thresholds_seconds: _Optional[_Iterable[int]] = ..., use_default: _Optional[bool] = ...) -> None: ...
