import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EnhancedBalance(_message.Message):
    __slots__ = ("version", "plan_key", "subscription_status", "catalog_version", "totals", "buckets", "bonus", "subscription", "auto_topup")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PLAN_KEY_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_STATUS_FIELD_NUMBER: _ClassVar[int]
    CATALOG_VERSION_FIELD_NUMBER: _ClassVar[int]
    TOTALS_FIELD_NUMBER: _ClassVar[int]
    BUCKETS_FIELD_NUMBER: _ClassVar[int]
    BONUS_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    AUTO_TOPUP_FIELD_NUMBER: _ClassVar[int]
    version: str
    plan_key: str
    subscription_status: str
    catalog_version: str
    totals: BalanceTotals
    buckets: BalanceBuckets
    bonus: BonusStatus
    subscription: SubscriptionPeriod
    auto_topup: AutoTopupState
    def __init__(self, version: _Optional[str] = ..., plan_key: _Optional[str] = ..., subscription_status: _Optional[str] = ..., catalog_version: _Optional[str] = ..., totals: _Optional[_Union[BalanceTotals, _Mapping]] = ..., buckets: _Optional[_Union[BalanceBuckets, _Mapping]] = ..., bonus: _Optional[_Union[BonusStatus, _Mapping]] = ..., subscription: _Optional[_Union[SubscriptionPeriod, _Mapping]] = ..., auto_topup: _Optional[_Union[AutoTopupState, _Mapping]] = ...) -> None: ...

class AutoTopupState(_message.Message):
    __slots__ = ("enabled", "threshold_seconds", "package_key", "pending", "last_failure", "action_required")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PACKAGE_KEY_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    LAST_FAILURE_FIELD_NUMBER: _ClassVar[int]
    ACTION_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    threshold_seconds: int
    package_key: str
    pending: bool
    last_failure: str
    action_required: bool
    def __init__(self, enabled: _Optional[bool] = ..., threshold_seconds: _Optional[int] = ..., package_key: _Optional[str] = ..., pending: _Optional[bool] = ..., last_failure: _Optional[str] = ..., action_required: _Optional[bool] = ...) -> None: ...

class SubscriptionPeriod(_message.Message):
    __slots__ = ("current_period_start_at", "current_period_end_at", "cancel_at_period_end", "pending_plan_key")
    CURRENT_PERIOD_START_AT_FIELD_NUMBER: _ClassVar[int]
    CURRENT_PERIOD_END_AT_FIELD_NUMBER: _ClassVar[int]
    CANCEL_AT_PERIOD_END_FIELD_NUMBER: _ClassVar[int]
    PENDING_PLAN_KEY_FIELD_NUMBER: _ClassVar[int]
    current_period_start_at: _struct_pb2.Value
    current_period_end_at: _struct_pb2.Value
    cancel_at_period_end: bool
    pending_plan_key: str
    def __init__(self, current_period_start_at: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., current_period_end_at: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., cancel_at_period_end: _Optional[bool] = ..., pending_plan_key: _Optional[str] = ...) -> None: ...

class BalanceTotals(_message.Message):
    __slots__ = ("total_seconds", "paid_seconds", "bonus_seconds", "next_expiry_at", "held_seconds")
    TOTAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PAID_SECONDS_FIELD_NUMBER: _ClassVar[int]
    BONUS_SECONDS_FIELD_NUMBER: _ClassVar[int]
    NEXT_EXPIRY_AT_FIELD_NUMBER: _ClassVar[int]
    HELD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    total_seconds: int
    paid_seconds: int
    bonus_seconds: int
    next_expiry_at: _struct_pb2.Value
    held_seconds: int
    def __init__(self, total_seconds: _Optional[int] = ..., paid_seconds: _Optional[int] = ..., bonus_seconds: _Optional[int] = ..., next_expiry_at: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., held_seconds: _Optional[int] = ...) -> None: ...

class BalanceBuckets(_message.Message):
    __slots__ = ("daily", "paid")
    DAILY_FIELD_NUMBER: _ClassVar[int]
    PAID_FIELD_NUMBER: _ClassVar[int]
    daily: _containers.RepeatedCompositeFieldContainer[DailyBucket]
    paid: _containers.RepeatedCompositeFieldContainer[PaidBucket]
    def __init__(self, daily: _Optional[_Iterable[_Union[DailyBucket, _Mapping]]] = ..., paid: _Optional[_Iterable[_Union[PaidBucket, _Mapping]]] = ...) -> None: ...

class DailyBucket(_message.Message):
    __slots__ = ("seconds", "expires_at")
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    seconds: int
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, seconds: _Optional[int] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PaidBucket(_message.Message):
    __slots__ = ("seconds", "expires_at", "source")
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    seconds: int
    expires_at: _struct_pb2.Value
    source: str
    def __init__(self, seconds: _Optional[int] = ..., expires_at: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., source: _Optional[str] = ...) -> None: ...

class BonusStatus(_message.Message):
    __slots__ = ("daily_minutes", "used_this_month_minutes", "monthly_cap_minutes")
    DAILY_MINUTES_FIELD_NUMBER: _ClassVar[int]
    USED_THIS_MONTH_MINUTES_FIELD_NUMBER: _ClassVar[int]
    MONTHLY_CAP_MINUTES_FIELD_NUMBER: _ClassVar[int]
    daily_minutes: int
    used_this_month_minutes: int
    monthly_cap_minutes: int
    def __init__(self, daily_minutes: _Optional[int] = ..., used_this_month_minutes: _Optional[int] = ..., monthly_cap_minutes: _Optional[int] = ...) -> None: ...

class UsageAnalytics(_message.Message):
    __slots__ = ("total_seconds", "by_operation", "daily_trend")
    class ByOperationEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    TOTAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    BY_OPERATION_FIELD_NUMBER: _ClassVar[int]
    DAILY_TREND_FIELD_NUMBER: _ClassVar[int]
    total_seconds: int
    by_operation: _containers.ScalarMap[str, int]
    daily_trend: _containers.RepeatedCompositeFieldContainer[DailyUsage]
    def __init__(self, total_seconds: _Optional[int] = ..., by_operation: _Optional[_Mapping[str, int]] = ..., daily_trend: _Optional[_Iterable[_Union[DailyUsage, _Mapping]]] = ...) -> None: ...

class DailyUsage(_message.Message):
    __slots__ = ("date", "seconds")
    DATE_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    date: str
    seconds: int
    def __init__(self, date: _Optional[str] = ..., seconds: _Optional[int] = ...) -> None: ...

class BillingEventHistory(_message.Message):
    __slots__ = ("events", "next_page_token")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[BillingEvent]
    next_page_token: str
    def __init__(self, events: _Optional[_Iterable[_Union[BillingEvent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class BillingEvent(_message.Message):
    __slots__ = ("type", "seconds", "reason", "timestamp", "metadata")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    type: str
    seconds: int
    reason: str
    timestamp: _timestamp_pb2.Timestamp
    metadata: _struct_pb2.Struct
    def __init__(self, type: _Optional[str] = ..., seconds: _Optional[int] = ..., reason: _Optional[str] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...
