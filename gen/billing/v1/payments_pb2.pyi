from google.api import httpbody_pb2 as _httpbody_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PurchasePackageRequest(_message.Message):
    __slots__ = ("user_id", "package_key", "currency", "idempotency_key")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PACKAGE_KEY_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    package_key: str
    currency: str
    idempotency_key: str
    def __init__(self, user_id: _Optional[str] = ..., package_key: _Optional[str] = ..., currency: _Optional[str] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class PackagePurchaseResponse(_message.Message):
    __slots__ = ("checkout_url", "session_id", "currency", "unit_amount_cents", "display_price", "package_minutes", "currency_fallback_from", "package_key")
    CHECKOUT_URL_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    UNIT_AMOUNT_CENTS_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_PRICE_FIELD_NUMBER: _ClassVar[int]
    PACKAGE_MINUTES_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FALLBACK_FROM_FIELD_NUMBER: _ClassVar[int]
    PACKAGE_KEY_FIELD_NUMBER: _ClassVar[int]
    checkout_url: str
    session_id: str
    currency: str
    unit_amount_cents: int
    display_price: float
    package_minutes: int
    currency_fallback_from: str
    package_key: str
    def __init__(self, checkout_url: _Optional[str] = ..., session_id: _Optional[str] = ..., currency: _Optional[str] = ..., unit_amount_cents: _Optional[int] = ..., display_price: _Optional[float] = ..., package_minutes: _Optional[int] = ..., currency_fallback_from: _Optional[str] = ..., package_key: _Optional[str] = ...) -> None: ...

class CreateSubscriptionCheckoutRequest(_message.Message):
    __slots__ = ("user_id", "plan_key", "currency", "idempotency_key")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PLAN_KEY_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    plan_key: str
    currency: str
    idempotency_key: str
    def __init__(self, user_id: _Optional[str] = ..., plan_key: _Optional[str] = ..., currency: _Optional[str] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class SubscriptionCheckoutResponse(_message.Message):
    __slots__ = ("checkout_url", "session_id", "plan_key", "currency", "unit_amount_cents", "display_price", "plan_minutes", "currency_fallback_from")
    CHECKOUT_URL_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PLAN_KEY_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    UNIT_AMOUNT_CENTS_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_PRICE_FIELD_NUMBER: _ClassVar[int]
    PLAN_MINUTES_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FALLBACK_FROM_FIELD_NUMBER: _ClassVar[int]
    checkout_url: str
    session_id: str
    plan_key: str
    currency: str
    unit_amount_cents: int
    display_price: float
    plan_minutes: int
    currency_fallback_from: str
    def __init__(self, checkout_url: _Optional[str] = ..., session_id: _Optional[str] = ..., plan_key: _Optional[str] = ..., currency: _Optional[str] = ..., unit_amount_cents: _Optional[int] = ..., display_price: _Optional[float] = ..., plan_minutes: _Optional[int] = ..., currency_fallback_from: _Optional[str] = ...) -> None: ...

class CancelSubscriptionRequest(_message.Message):
    __slots__ = ("user_id", "idempotency_key")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    idempotency_key: str
    def __init__(self, user_id: _Optional[str] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class ChangeSubscriptionPlanRequest(_message.Message):
    __slots__ = ("user_id", "plan_key", "idempotency_key")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PLAN_KEY_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    plan_key: str
    idempotency_key: str
    def __init__(self, user_id: _Optional[str] = ..., plan_key: _Optional[str] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class SubscriptionState(_message.Message):
    __slots__ = ("user_id", "plan_key", "subscription_status", "cancel_at_period_end", "pending_plan_key", "current_period_start_at", "current_period_end_at")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PLAN_KEY_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_STATUS_FIELD_NUMBER: _ClassVar[int]
    CANCEL_AT_PERIOD_END_FIELD_NUMBER: _ClassVar[int]
    PENDING_PLAN_KEY_FIELD_NUMBER: _ClassVar[int]
    CURRENT_PERIOD_START_AT_FIELD_NUMBER: _ClassVar[int]
    CURRENT_PERIOD_END_AT_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    plan_key: str
    subscription_status: str
    cancel_at_period_end: bool
    pending_plan_key: str
    current_period_start_at: _struct_pb2.Value
    current_period_end_at: _struct_pb2.Value
    def __init__(self, user_id: _Optional[str] = ..., plan_key: _Optional[str] = ..., subscription_status: _Optional[str] = ..., cancel_at_period_end: _Optional[bool] = ..., pending_plan_key: _Optional[str] = ..., current_period_start_at: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., current_period_end_at: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class HandleStripeWebhookRequest(_message.Message):
    __slots__ = ("raw",)
    RAW_FIELD_NUMBER: _ClassVar[int]
    raw: _httpbody_pb2.HttpBody
    def __init__(self, raw: _Optional[_Union[_httpbody_pb2.HttpBody, _Mapping]] = ...) -> None: ...

class StripeWebhookResponse(_message.Message):
    __slots__ = ("received", "outcome")
    RECEIVED_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    received: bool
    outcome: str
    def __init__(self, received: _Optional[bool] = ..., outcome: _Optional[str] = ...) -> None: ...

class GetAutoTopupRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class UpdateAutoTopupRequest(_message.Message):
    __slots__ = ("user_id", "enabled", "threshold_seconds", "package_key", "currency")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PACKAGE_KEY_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    enabled: bool
    threshold_seconds: int
    package_key: str
    currency: str
    def __init__(self, user_id: _Optional[str] = ..., enabled: _Optional[bool] = ..., threshold_seconds: _Optional[int] = ..., package_key: _Optional[str] = ..., currency: _Optional[str] = ...) -> None: ...

class AutoTopupSettings(_message.Message):
    __slots__ = ("user_id", "enabled", "threshold_seconds", "package_key", "currency", "pending", "failures", "last_failure", "action_required")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PACKAGE_KEY_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    LAST_FAILURE_FIELD_NUMBER: _ClassVar[int]
    ACTION_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    enabled: bool
    threshold_seconds: int
    package_key: str
    currency: str
    pending: bool
    failures: int
    last_failure: str
    action_required: bool
    def __init__(self, user_id: _Optional[str] = ..., enabled: _Optional[bool] = ..., threshold_seconds: _Optional[int] = ..., package_key: _Optional[str] = ..., currency: _Optional[str] = ..., pending: _Optional[bool] = ..., failures: _Optional[int] = ..., last_failure: _Optional[str] = ..., action_required: _Optional[bool] = ...) -> None: ...

class CreateAutoTopupSetupRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class AutoTopupSetupResponse(_message.Message):
    __slots__ = ("checkout_url", "session_id")
    CHECKOUT_URL_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    checkout_url: str
    session_id: str
    def __init__(self, checkout_url: _Optional[str] = ..., session_id: _Optional[str] = ...) -> None: ...
