from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PricingCatalog(_message.Message):
    __slots__ = ("version", "rollover_policy", "subscriptions", "packages", "currency", "currency_fallback_from")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ROLLOVER_POLICY_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTIONS_FIELD_NUMBER: _ClassVar[int]
    PACKAGES_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FALLBACK_FROM_FIELD_NUMBER: _ClassVar[int]
    version: str
    rollover_policy: RolloverPolicy
    subscriptions: _containers.RepeatedCompositeFieldContainer[SubscriptionPlan]
    packages: _containers.RepeatedCompositeFieldContainer[Package]
    currency: str
    currency_fallback_from: str
    def __init__(self, version: _Optional[str] = ..., rollover_policy: _Optional[_Union[RolloverPolicy, _Mapping]] = ..., subscriptions: _Optional[_Iterable[_Union[SubscriptionPlan, _Mapping]]] = ..., packages: _Optional[_Iterable[_Union[Package, _Mapping]]] = ..., currency: _Optional[str] = ..., currency_fallback_from: _Optional[str] = ...) -> None: ...

class RolloverPolicy(_message.Message):
    __slots__ = ("days",)
    DAYS_FIELD_NUMBER: _ClassVar[int]
    days: int
    def __init__(self, days: _Optional[int] = ...) -> None: ...

class SubscriptionPlan(_message.Message):
    __slots__ = ("key", "name", "minutes", "price", "price_cents", "bonusDaily", "monthlyBonusCap", "rolloverCap", "taxInclusive", "advisor")
    KEY_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MINUTES_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    PRICE_CENTS_FIELD_NUMBER: _ClassVar[int]
    BONUSDAILY_FIELD_NUMBER: _ClassVar[int]
    MONTHLYBONUSCAP_FIELD_NUMBER: _ClassVar[int]
    ROLLOVERCAP_FIELD_NUMBER: _ClassVar[int]
    TAXINCLUSIVE_FIELD_NUMBER: _ClassVar[int]
    ADVISOR_FIELD_NUMBER: _ClassVar[int]
    key: str
    name: str
    minutes: int
    price: float
    price_cents: int
    bonusDaily: int
    monthlyBonusCap: int
    rolloverCap: int
    taxInclusive: bool
    advisor: Advisor
    def __init__(self, key: _Optional[str] = ..., name: _Optional[str] = ..., minutes: _Optional[int] = ..., price: _Optional[float] = ..., price_cents: _Optional[int] = ..., bonusDaily: _Optional[int] = ..., monthlyBonusCap: _Optional[int] = ..., rolloverCap: _Optional[int] = ..., taxInclusive: _Optional[bool] = ..., advisor: _Optional[_Union[Advisor, _Mapping]] = ...) -> None: ...

class Advisor(_message.Message):
    __slots__ = ("eligible", "payoutUSD")
    ELIGIBLE_FIELD_NUMBER: _ClassVar[int]
    PAYOUTUSD_FIELD_NUMBER: _ClassVar[int]
    eligible: bool
    payoutUSD: int
    def __init__(self, eligible: _Optional[bool] = ..., payoutUSD: _Optional[int] = ...) -> None: ...

class Package(_message.Message):
    __slots__ = ("key", "name", "minutes", "price", "price_cents", "taxInclusive")
    KEY_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MINUTES_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    PRICE_CENTS_FIELD_NUMBER: _ClassVar[int]
    TAXINCLUSIVE_FIELD_NUMBER: _ClassVar[int]
    key: str
    name: str
    minutes: int
    price: float
    price_cents: int
    taxInclusive: bool
    def __init__(self, key: _Optional[str] = ..., name: _Optional[str] = ..., minutes: _Optional[int] = ..., price: _Optional[float] = ..., price_cents: _Optional[int] = ..., taxInclusive: _Optional[bool] = ...) -> None: ...
