from billing.v1 import accounts_pb2 as _accounts_pb2
from billing.v1 import alerts_pb2 as _alerts_pb2
from billing.v1 import balance_pb2 as _balance_pb2
from billing.v1 import catalog_pb2 as _catalog_pb2
from billing.v1 import consumption_pb2 as _consumption_pb2
from billing.v1 import holds_pb2 as _holds_pb2
from billing.v1 import keys_pb2 as _keys_pb2
from billing.v1 import metered_sessions_pb2 as _metered_sessions_pb2
from billing.v1 import payments_pb2 as _payments_pb2
from billing.v1 import webhooks_pb2 as _webhooks_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetCatalogRequest(_message.Message):
    __slots__ = ("currency",)
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    currency: str
    def __init__(self, currency: _Optional[str] = ...) -> None: ...

class GetBalanceRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class WatchBalanceRequest(_message.Message):
    __slots__ = ("user_id", "since_version")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SINCE_VERSION_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    since_version: int
    def __init__(self, user_id: _Optional[str] = ..., since_version: _Optional[int] = ...) -> None: ...

class BalanceUpdate(_message.Message):
    __slots__ = ("version", "balance", "heartbeat")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    version: int
    balance: _balance_pb2.EnhancedBalance
    heartbeat: bool
    def __init__(self, version: _Optional[int] = ..., balance: _Optional[_Union[_balance_pb2.EnhancedBalance, _Mapping]] = ..., heartbeat: _Optional[bool] = ...) -> None: ...

class GetUsageRequest(_message.Message):
    __slots__ = ("user_id", "period")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    period: str
    def __init__(self, user_id: _Optional[str] = ..., period: _Optional[str] = ...) -> None: ...

class ListEventsRequest(_message.Message):
    __slots__ = ("user_id", "limit", "page_token")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    limit: int
    page_token: str
    def __init__(self, user_id: _Optional[str] = ..., limit: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...
