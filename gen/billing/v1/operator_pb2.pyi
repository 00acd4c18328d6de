import datetime

from billing.v1 import balance_pb2 as _balance_pb2
from billing.v1 import holds_pb2 as _holds_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SearchAccountsRequest(_message.Message):
    __slots__ = ("query", "limit")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    query: str
    limit: int
    def __init__(self, query: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class AccountMatch(_message.Message):
    __slots__ = ("user_id", "matched_by", "plan_key", "subscription_status", "totals", "created_at")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    MATCHED_BY_FIELD_NUMBER: _ClassVar[int]
    PLAN_KEY_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_STATUS_FIELD_NUMBER: _ClassVar[int]
    TOTALS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    matched_by: str
    plan_key: str
    subscription_status: str
    totals: _balance_pb2.BalanceTotals
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, user_id: _Optional[str] = ..., matched_by: _Optional[str] = ..., plan_key: _Optional[str] = ..., subscription_status: _Optional[str] = ..., totals: _Optional[_Union[_balance_pb2.BalanceTotals, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SearchAccountsResponse(_message.Message):
    __slots__ = ("matches",)
    MATCHES_FIELD_NUMBER: _ClassVar[int]
    matches: _containers.RepeatedCompositeFieldContainer[AccountMatch]
    def __init__(self, matches: _Optional[_Iterable[_Union[AccountMatch, _Mapping]]] = ...) -> None: ...

class GetAccountOverviewRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class AccountOverview(_message.Message):
    __slots__ = ("user_id", "created_at", "version", "balance", "holds", "payment_profile", "auto_topup", "keys", "payments", "alert_thresholds_seconds", "ledger_sum_seconds")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    HOLDS_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_PROFILE_FIELD_NUMBER: _ClassVar[int]
    AUTO_TOPUP_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    PAYMENTS_FIELD_NUMBER: _ClassVar[int]
    ALERT_THRESHOLDS_SECONDS_FIELD_NUMBER: _ClassVar[int]
    LEDGER_SUM_SECONDS_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    created_at: _timestamp_pb2.Timestamp
    version: int
    balance: _balance_pb2.EnhancedBalance
    holds: _containers.RepeatedCompositeFieldContainer[_holds_pb2.Hold]
    payment_profile: PaymentProfile
    auto_topup: AutoTopupDetail
    keys: _containers.RepeatedCompositeFieldContainer[IssuedKey]
    payments: _containers.RepeatedCompositeFieldContainer[AccountPayment]
    alert_thresholds_seconds: _containers.RepeatedScalarFieldContainer[int]
    ledger_sum_seconds: int
    def __init__(self, user_id: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., version: _Optional[int] = ..., balance: _Optional[_Union[_balance_pb2.EnhancedBalance, _Mapping]] = ..., holds: _Optional[_Iterable[_Union[_holds_pb2.Hold, _Mapping]]] = ..., payment_profile: _Optional[_Union[PaymentProfile, _Mapping]] = ..., auto_topup: _Optional[_Union[AutoTopupDetail, _Mapping]] = ..., keys: _Optional[_Iterable[_Union[IssuedKey, _Mapping]]] = ..., payments: _Optional[_Iterable[_Union[AccountPayment, _Mapping]]] = ..., alert_thresholds_seconds: _Optional[_Iterable[int]] = ..., ledger_sum_seconds: _Optional[int] = ...) -> None: ...

class PaymentProfile(_message.Message):
    __slots__ = ("stripe_customer_id", "stripe_subscription_id")
    STRIPE_CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    STRIPE_SUBSCRIPTION_ID_FIELD_NUMBER: _ClassVar[int]
    stripe_customer_id: str
    stripe_subscription_id: str
    def __init__(self, stripe_customer_id: _Optional[str] = ..., stripe_subscription_id: _Optional[str] = ...) -> None: ...

class AutoTopupDetail(_message.Message):
    __slots__ = ("state", "failures", "retry_at", "pending_since")
    STATE_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    RETRY_AT_FIELD_NUMBER: _ClassVar[int]
    PENDING_SINCE_FIELD_NUMBER: _ClassVar[int]
    state: _balance_pb2.AutoTopupState
    failures: int
    retry_at: _timestamp_pb2.Timestamp
    pending_since: _timestamp_pb2.Timestamp
    def __init__(self, state: _Optional[_Union[_balance_pb2.AutoTopupState, _Mapping]] = ..., failures: _Optional[int] = ..., retry_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., pending_since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class IssuedKey(_message.Message):
    __slots__ = ("key_id", "scope", "user_id", "created_at", "expires_at", "revoked_at")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    scope: str
    user_id: str
    created_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    revoked_at: _timestamp_pb2.Timestamp
    def __init__(self, key_id: _Optional[str] = ..., scope: _Optional[str] = ..., user_id: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revoked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AccountPayment(_message.Message):
    __slots__ = ("payment_id", "kind", "item_key", "amount_cents", "currency", "granted_seconds", "refunded_cents", "paid_at")
    PAYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ITEM_KEY_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_CENTS_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    GRANTED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    REFUNDED_CENTS_FIELD_NUMBER: _ClassVar[int]
    PAID_AT_FIELD_NUMBER: _ClassVar[int]
    payment_id: str
    kind: str
    item_key: str
    amount_cents: int
    currency: str
    granted_seconds: int
    refunded_cents: int
    paid_at: _timestamp_pb2.Timestamp
    def __init__(self, payment_id: _Optional[str] = ..., kind: _Optional[str] = ..., item_key: _Optional[str] = ..., amount_cents: _Optional[int] = ..., currency: _Optional[str] = ..., granted_seconds: _Optional[int] = ..., refunded_cents: _Optional[int] = ..., paid_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListAccountLedgerRequest(_message.Message):
    __slots__ = ("user_id", "types", "from_at", "to_at", "page_size", "page_token", "order")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    TYPES_FIELD_NUMBER: _ClassVar[int]
    FROM_AT_FIELD_NUMBER: _ClassVar[int]
    TO_AT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    types: _containers.RepeatedScalarFieldContainer[str]
    from_at: _timestamp_pb2.Timestamp
    to_at: _timestamp_pb2.Timestamp
    page_size: int
    page_token: str
    order: str
    def __init__(self, user_id: _Optional[str] = ..., types: _Optional[_Iterable[str]] = ..., from_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., to_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., order: _Optional[str] = ...) -> None: ...

class LedgerRow(_message.Message):
    __slots__ = ("event_seq", "type", "seconds", "reason", "occurred_at", "operation", "bucket_seq", "metadata", "balance_after_seconds", "available_after_seconds", "expired_before_seconds")
    EVENT_SEQ_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    BUCKET_SEQ_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    BALANCE_AFTER_SECONDS_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_AFTER_SECONDS_FIELD_NUMBER: _ClassVar[int]
    EXPIRED_BEFORE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    event_seq: int
    type: str
    seconds: int
    reason: str
    occurred_at: _timestamp_pb2.Timestamp
    operation: str
    bucket_seq: int
    metadata: _struct_pb2.Struct
    balance_after_seconds: int
    available_after_seconds: int
    expired_before_seconds: int
    def __init__(self, event_seq: _Optional[int] = ..., type: _Optional[str] = ..., seconds: _Optional[int] = ..., reason: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., operation: _Optional[str] = ..., bucket_seq: _Optional[int] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., balance_after_seconds: _Optional[int] = ..., available_after_seconds: _Optional[int] = ..., expired_before_seconds: _Optional[int] = ...) -> None: ...

class ListAccountLedgerResponse(_message.Message):
    __slots__ = ("rows", "next_page_token", "expired_since_last_row_seconds")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXPIRED_SINCE_LAST_ROW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    rows: _containers.RepeatedCompositeFieldContainer[LedgerRow]
    next_page_token: str
    expired_since_last_row_seconds: int
    def __init__(self, rows: _Optional[_Iterable[_Union[LedgerRow, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., expired_since_last_row_seconds: _Optional[int] = ...) -> None: ...

class ExportAccountLedgerRequest(_message.Message):
    __slots__ = ("user_id", "types", "from_at", "to_at")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    TYPES_FIELD_NUMBER: _ClassVar[int]
    FROM_AT_FIELD_NUMBER: _ClassVar[int]
    TO_AT_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    types: _containers.RepeatedScalarFieldContainer[str]
    from_at: _timestamp_pb2.Timestamp
    to_at: _timestamp_pb2.Timestamp
    def __init__(self, user_id: _Optional[str] = ..., types: _Optional[_Iterable[str]] = ..., from_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., to_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetAccountUsageRequest(_message.Message):
    __slots__ = ("user_id", "days")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    DAYS_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    days: int
    def __init__(self, user_id: _Optional[str] = ..., days: _Optional[int] = ...) -> None: ...

class AccountUsage(_message.Message):
    __slots__ = ("rows", "total_seconds")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    rows: _containers.RepeatedCompositeFieldContainer[OperationUsage]
    total_seconds: int
    def __init__(self, rows: _Optional[_Iterable[_Union[OperationUsage, _Mapping]]] = ..., total_seconds: _Optional[int] = ...) -> None: ...

class OperationUsage(_message.Message):
    __slots__ = ("date", "operation", "seconds")
    DATE_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    date: str
    operation: str
    seconds: int
    def __init__(self, date: _Optional[str] = ..., operation: _Optional[str] = ..., seconds: _Optional[int] = ...) -> None: ...

class OperatorGrantRequest(_message.Message):
    __slots__ = ("user_id", "source", "seconds", "expires_at", "reason", "idempotency_key")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    source: str
    seconds: int
    expires_at: _timestamp_pb2.Timestamp
    reason: str
    idempotency_key: str
    def __init__(self, user_id: _Optional[str] = ..., source: _Optional[str] = ..., seconds: _Optional[int] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class OperatorClawBackRequest(_message.Message):
    __slots__ = ("user_id", "seconds", "reason", "idempotency_key")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    seconds: int
    reason: str
    idempotency_key: str
    def __init__(self, user_id: _Optional[str] = ..., seconds: _Optional[int] = ..., reason: _Optional[str] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class OperatorRefundPaymentRequest(_message.Message):
    __slots__ = ("user_id", "payment_id", "amount_cents", "reason", "idempotency_key")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_CENTS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    payment_id: str
    amount_cents: int
    reason: str
    idempotency_key: str
    def __init__(self, user_id: _Optional[str] = ..., payment_id: _Optional[str] = ..., amount_cents: _Optional[int] = ..., reason: _Optional[str] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class OperatorCancelSubscriptionRequest(_message.Message):
    __slots__ = ("user_id", "reason", "idempotency_key")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    reason: str
    idempotency_key: str
    def __init__(self, user_id: _Optional[str] = ..., reason: _Optional[str] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class OperatorChangeSubscriptionRequest(_message.Message):
    __slots__ = ("user_id", "plan_key", "reason", "idempotency_key")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PLAN_KEY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    plan_key: str
    reason: str
    idempotency_key: str
    def __init__(self, user_id: _Optional[str] = ..., plan_key: _Optional[str] = ..., reason: _Optional[str] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class OperatorDisableAutoTopupRequest(_message.Message):
    __slots__ = ("user_id", "reason", "idempotency_key")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    reason: str
    idempotency_key: str
    def __init__(self, user_id: _Optional[str] = ..., reason: _Optional[str] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class OperatorRevokeKeyRequest(_message.Message):
    __slots__ = ("key_id", "reason", "idempotency_key")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    reason: str
    idempotency_key: str
    def __init__(self, key_id: _Optional[str] = ..., reason: _Optional[str] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class OperatorActionResponse(_message.Message):
    __slots__ = ("audit", "replayed")
    AUDIT_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    audit: AuditEntry
    replayed: bool
    def __init__(self, audit: _Optional[_Union[AuditEntry, _Mapping]] = ..., replayed: _Optional[bool] = ...) -> None: ...

class AuditEntry(_message.Message):
    __slots__ = ("audit_id", "action", "user_id", "operator_key_id", "reason", "created_at", "before", "after", "detail")
    AUDIT_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    audit_id: str
    action: str
    user_id: str
    operator_key_id: str
    reason: str
    created_at: _timestamp_pb2.Timestamp
    before: _balance_pb2.BalanceTotals
    after: _balance_pb2.BalanceTotals
    detail: _struct_pb2.Struct
    def __init__(self, audit_id: _Optional[str] = ..., action: _Optional[str] = ..., user_id: _Optional[str] = ..., operator_key_id: _Optional[str] = ..., reason: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., before: _Optional[_Union[_balance_pb2.BalanceTotals, _Mapping]] = ..., after: _Optional[_Union[_balance_pb2.BalanceTotals, _Mapping]] = ..., detail: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class ListAuditEntriesRequest(_message.Message):
    __slots__ = ("user_id", "action", "operator_key_id", "from_at", "to_at", "page_size", "page_token")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_AT_FIELD_NUMBER: _ClassVar[int]
    TO_AT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    action: str
    operator_key_id: str
    from_at: _timestamp_pb2.Timestamp
    to_at: _timestamp_pb2.Timestamp
    page_size: int
    page_token: str
    def __init__(self, user_id: _Optional[str] = ..., action: _Optional[str] = ..., operator_key_id: _Optional[str] = ..., from_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., to_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListAuditEntriesResponse(_message.Message):
    __slots__ = ("entries", "next_page_token")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[AuditEntry]
    next_page_token: str
    def __init__(self, entries: _Optional[_Iterable[_Union[AuditEntry, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListStripeEventsRequest(_message.Message):
    __slots__ = ("outcome", "user_id", "page_size", "page_token")
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    outcome: str
    user_id: str
    page_size: int
    page_token: str
    def __init__(self, outcome: _Optional[str] = ..., user_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class StripeEventRecord(_message.Message):
    __slots__ = ("event_id", "event_type", "outcome", "user_id", "detail", "received_at", "payload", "payload_excerpt")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_EXCERPT_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    event_type: str
    outcome: str
    user_id: str
    detail: str
    received_at: _timestamp_pb2.Timestamp
    payload: _struct_pb2.Struct
    payload_excerpt: str
    def __init__(self, event_id: _Optional[str] = ..., event_type: _Optional[str] = ..., outcome: _Optional[str] = ..., user_id: _Optional[str] = ..., detail: _Optional[str] = ..., received_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., payload: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., payload_excerpt: _Optional[str] = ...) -> None: ...

class ListStripeEventsResponse(_message.Message):
    __slots__ = ("events", "next_page_token")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[StripeEventRecord]
    next_page_token: str
    def __init__(self, events: _Optional[_Iterable[_Union[StripeEventRecord, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ReprocessStripeEventRequest(_message.Message):
    __slots__ = ("event_id", "reason", "idempotency_key")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    reason: str
    idempotency_key: str
    def __init__(self, event_id: _Optional[str] = ..., reason: _Optional[str] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class ReprocessStripeEventResponse(_message.Message):
    __slots__ = ("event", "audit", "replayed")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    AUDIT_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    event: StripeEventRecord
    audit: AuditEntry
    replayed: bool
    def __init__(self, event: _Optional[_Union[StripeEventRecord, _Mapping]] = ..., audit: _Optional[_Union[AuditEntry, _Mapping]] = ..., replayed: _Optional[bool] = ...) -> None: ...

class ListMigrationRunsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class MigrationRun(_message.Message):
    __slots__ = ("run_id", "source_file", "started_at", "finished_at", "rows_read", "accounts_migrated", "accounts_skipped", "bad_lines", "bad_line_samples")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FILE_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    ROWS_READ_FIELD_NUMBER: _ClassVar[int]
    ACCOUNTS_MIGRATED_FIELD_NUMBER: _ClassVar[int]
    ACCOUNTS_SKIPPED_FIELD_NUMBER: _ClassVar[int]
    BAD_LINES_FIELD_NUMBER: _ClassVar[int]
    BAD_LINE_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    source_file: str
    started_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    rows_read: int
    accounts_migrated: int
    accounts_skipped: int
    bad_lines: int
    bad_line_samples: _containers.RepeatedCompositeFieldContainer[BadLine]
    def __init__(self, run_id: _Optional[str] = ..., source_file: _Optional[str] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., rows_read: _Optional[int] = ..., accounts_migrated: _Optional[int] = ..., accounts_skipped: _Optional[int] = ..., bad_lines: _Optional[int] = ..., bad_line_samples: _Optional[_Iterable[_Union[BadLine, _Mapping]]] = ...) -> None: ...

class BadLine(_message.Message):
    __slots__ = ("line", "error")
    LINE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    line: int
    error: str
    def __init__(self, line: _Optional[int] = ..., error: _Optional[str] = ...) -> None: ...

class ListMigrationRunsResponse(_message.Message):
    __slots__ = ("runs", "next_page_token")
    RUNS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.RepeatedCompositeFieldContainer[MigrationRun]
    next_page_token: str
    def __init__(self, runs: _Optional[_Iterable[_Union[MigrationRun, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetServiceHealthRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ServiceHealth(_message.Message):
    __slots__ = ("replicas", "database_ok", "database_latency_ms", "pool", "last_tick_at", "webhook_undispatched_events", "webhook_pending_deliveries", "webhook_failed_last_24h", "stripe_events_kept")
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    DATABASE_OK_FIELD_NUMBER: _ClassVar[int]
    DATABASE_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    LAST_TICK_AT_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_UNDISPATCHED_EVENTS_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_PENDING_DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_FAILED_LAST_24H_FIELD_NUMBER: _ClassVar[int]
    STRIPE_EVENTS_KEPT_FIELD_NUMBER: _ClassVar[int]
    replicas: _containers.RepeatedCompositeFieldContainer[ReplicaSeen]
    database_ok: bool
    database_latency_ms: int
    pool: PoolState
    last_tick_at: _timestamp_pb2.Timestamp
    webhook_undispatched_events: int
    webhook_pending_deliveries: int
    webhook_failed_last_24h: int
    stripe_events_kept: int
    def __init__(self, replicas: _Optional[_Iterable[_Union[ReplicaSeen, _Mapping]]] = ..., database_ok: _Optional[bool] = ..., database_latency_ms: _Optional[int] = ..., pool: _Optional[_Union[PoolState, _Mapping]] = ..., last_tick_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., webhook_undispatched_events: _Optional[int] = ..., webhook_pending_deliveries: _Optional[int] = ..., webhook_failed_last_24h: _Optional[int] = ..., stripe_events_kept: _Optional[int] = ...) -> None: ...

class ReplicaSeen(_message.Message):
    __slots__ = ("replica_id", "host", "pid", "started_at", "seen_at")
    REPLICA_ID_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    SEEN_AT_FIELD_NUMBER: _ClassVar[int]
    replica_id: str
    host: str
    pid: int
    started_at: _timestamp_pb2.Timestamp
    seen_at: _timestamp_pb2.Timestamp
    def __init__(self, replica_id: _Optional[str] = ..., host: _Optional[str] = ..., pid: _Optional[int] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., seen_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PoolState(_message.Message):
    __slots__ = ("size", "available", "waiting", "max_size")
    SIZE_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    WAITING_FIELD_NUMBER: _ClassVar[int]
    MAX_SIZE_FIELD_NUMBER: _ClassVar[int]
    size: int
    available: int
    waiting: int
    max_size: int
    def __init__(self, size: _Optional[int] = ..., available: _Optional[int] = ..., waiting: _Optional[int] = ..., max_size: _Optional[int] = ...) -> None: ...

class GetServiceActivityRequest(_message.Message):
    __slots__ = ("hours",)
    HOURS_FIELD_NUMBER: _ClassVar[int]
    hours: int
    def __init__(self, hours: _Optional[int] = ...) -> None: ...

class ServiceActivity(_message.Message):
    __slots__ = ("hours",)
    HOURS_FIELD_NUMBER: _ClassVar[int]
    hours: _containers.RepeatedCompositeFieldContainer[HourActivity]
    def __init__(self, hours: _Optional[_Iterable[_Union[HourActivity, _Mapping]]] = ...) -> None: ...

class HourActivity(_message.Message):
    __slots__ = ("hour_at", "consumed_seconds", "consumes", "refusals", "topups_succeeded", "topups_failed", "webhooks_delivered", "webhooks_failed")
    HOUR_AT_FIELD_NUMBER: _ClassVar[int]
    CONSUMED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CONSUMES_FIELD_NUMBER: _ClassVar[int]
    REFUSALS_FIELD_NUMBER: _ClassVar[int]
    TOPUPS_SUCCEEDED_FIELD_NUMBER: _ClassVar[int]
    TOPUPS_FAILED_FIELD_NUMBER: _ClassVar[int]
    WEBHOOKS_DELIVERED_FIELD_NUMBER: _ClassVar[int]
    WEBHOOKS_FAILED_FIELD_NUMBER: _ClassVar[int]
    hour_at: _timestamp_pb2.Timestamp
    consumed_seconds: int
    consumes: int
    refusals: int
    topups_succeeded: int
    topups_failed: int
    webhooks_delivered: int
    webhooks_failed: int
    def __init__(self, hour_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., consumed_seconds: _Optional[int] = ..., consumes: _Optional[int] = ..., refusals: _Optional[int] = ..., topups_succeeded: _Optional[int] = ..., topups_failed: _Optional[int] = ..., webhooks_delivered: _Optional[int] = ..., webhooks_failed: _Optional[int] = ...) -> None: ...

class RedeemConsoleLoginRequest(_message.Message):
    __slots__ = ("code",)
    CODE_FIELD_NUMBER: _ClassVar[int]
    code: str
    def __init__(self, code: _Optional[str] = ...) -> None: ...

class ConsoleCredentials(_message.Message):
    __slots__ = ("key_id", "secret", "expires_at")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    secret: str
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, key_id: _Optional[str] = ..., secret: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
