"""The one table from error type to gRPC code and HTTP status, and the abort that carries both.

REST: Envoy's Lua filter turns the trailing metadata x-http-status / x-error-json of a
trailers-only reply into the HTTP status and JSON body (see envoy/README.md). gRPC
clients get the code plus google.rpc.Status details (ErrorInfo, BadRequest, InsufficientAiTime).
"""

from __future__ import annotations

import json

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from billing.api.request_ids import REQUEST_ID, REQUEST_ID_HEADER
from billing.domain import errors
from billing.v1 import consumption_pb2

ERROR_DOMAIN = "billing.v1"

# error type -> (gRPC code, HTTP status)
STATUS_BY_ERROR: dict[type[errors.BillingError], tuple[grpc.StatusCode, int]] = {
    errors.InvalidArgument: (grpc.StatusCode.INVALID_ARGUMENT, 400),
    errors.Unauthenticated: (grpc.StatusCode.UNAUTHENTICATED, 401),
    errors.PermissionDenied: (grpc.StatusCode.PERMISSION_DENIED, 403),
    errors.AccountNotFound: (grpc.StatusCode.NOT_FOUND, 404),
    errors.IdempotencyKeyReused: (grpc.StatusCode.ALREADY_EXISTS, 409),
    errors.BalanceTooLow: (grpc.StatusCode.FAILED_PRECONDITION, 409),
    errors.InsufficientAiTime: (grpc.StatusCode.FAILED_PRECONDITION, 402),
    errors.ResumeTokenInvalid: (grpc.StatusCode.INVALID_ARGUMENT, 400),
    errors.ResumeTokenUsed: (grpc.StatusCode.FAILED_PRECONDITION, 409),
    errors.SubscriptionConflict: (grpc.StatusCode.FAILED_PRECONDITION, 409),
    errors.PaymentNotCredited: (grpc.StatusCode.FAILED_PRECONDITION, 409),
    errors.PaymentMethodRequired: (grpc.StatusCode.FAILED_PRECONDITION, 409),
    errors.PaymentProviderRefused: (grpc.StatusCode.FAILED_PRECONDITION, 409),
    errors.PaymentsNotConfigured: (grpc.StatusCode.UNIMPLEMENTED, 501),
    errors.HoldNotFound: (grpc.StatusCode.NOT_FOUND, 404),
    errors.HoldConflict: (grpc.StatusCode.ALREADY_EXISTS, 409),
    errors.HoldSettled: (grpc.StatusCode.FAILED_PRECONDITION, 409),
    errors.HoldExceeded: (grpc.StatusCode.OUT_OF_RANGE, 400),
    errors.TooManyHolds: (grpc.StatusCode.FAILED_PRECONDITION, 409),
    errors.TooManyWatchers: (grpc.StatusCode.RESOURCE_EXHAUSTED, 429),
    errors.RateLimited: (grpc.StatusCode.RESOURCE_EXHAUSTED, 429),
    errors.WebhookEndpointNotFound: (grpc.StatusCode.NOT_FOUND, 404),
    errors.WebhookEventNotFound: (grpc.StatusCode.NOT_FOUND, 404),
    errors.ApiKeyNotFound: (grpc.StatusCode.NOT_FOUND, 404),
    errors.PaymentNotFound: (grpc.StatusCode.NOT_FOUND, 404),
    errors.StripeEventNotFound: (grpc.StatusCode.NOT_FOUND, 404),
    errors.ActionNotPossible: (grpc.StatusCode.FAILED_PRECONDITION, 409),
    # ABORTED: "retry at a higher level"; the trailing retry-after says when.
    errors.RequestInProgress: (grpc.StatusCode.ABORTED, 409),
}


def suggestion_json(suggestion: errors.Suggestion) -> dict:
    fields = {"type": suggestion.type, "key": suggestion.key, "plan": suggestion.plan, "minutes": suggestion.minutes}
    return {name: value for name, value in fields.items() if value is not None}


def suggestion_proto(suggestion: errors.Suggestion) -> consumption_pb2.Suggestion:
    return consumption_pb2.Suggestion(**suggestion_json(suggestion))


def insufficient_ai_time_proto(error: errors.InsufficientAiTime) -> consumption_pb2.InsufficientAiTime:
    return consumption_pb2.InsufficientAiTime(
        balance_seconds=error.balance_seconds,
        breakdown_seconds=consumption_pb2.BreakdownSeconds(bonus_daily=error.bonus_daily_seconds, paid=error.paid_seconds),
        suggestions=[suggestion_proto(s) for s in error.suggestions],
        catalog_version=error.catalog_version,
        resume_token=error.resume_token or "",
        deficit_seconds=error.deficit_seconds,
    )


def error_body(error: errors.BillingError, http_status: int) -> dict:
    if isinstance(error, errors.InsufficientAiTime):
        # The contract's InsufficientFundsError, field for field.
        return {
            "error": error.reason,
            "http_status": http_status,
            "balance_seconds": error.balance_seconds,
            "breakdown_seconds": {"bonus_daily": error.bonus_daily_seconds, "paid": error.paid_seconds},
            "suggestions": [suggestion_json(s) for s in error.suggestions],
            "catalog_version": error.catalog_version,
            "resume_token": error.resume_token,
        }
    body = {"error": error.reason, "http_status": http_status, "message": error.message}
    if error.field:
        body["field"] = error.field
    body["request_id"] = REQUEST_ID.get()
    return body


def _details(error: errors.BillingError) -> list[any_pb2.Any]:
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN)
    if error.field:
        info.metadata["field"] = error.field
    details = [info]
    if isinstance(error, errors.InvalidArgument) and error.field:
        details.append(
            error_details_pb2.BadRequest(
                field_violations=[error_details_pb2.BadRequest.FieldViolation(field=error.field, description=error.message)]
            )
        )
    if isinstance(error, errors.InsufficientAiTime):
        details.append(insufficient_ai_time_proto(error))
    packed = []
    for detail in details:
        wrapper = any_pb2.Any()
        wrapper.Pack(detail)
        packed.append(wrapper)
    return packed


async def abort_with_error(context: grpc.aio.ServicerContext, error: errors.BillingError):
    code, http_status = STATUS_BY_ERROR[type(error)]  # a new error type must be added to the table
    status = status_pb2.Status(code=code.value[0], message=error.message, details=_details(error))
    # A refusal that passes with time (too many streams) says when to try again, as the rate limit's 429 does.
    retry_after = getattr(error, "retry_after_seconds", None)
    await context.abort(
        code,
        error.message,
        trailing_metadata=(
            *((("retry-after", str(retry_after)),) if retry_after is not None else ()),
            ("grpc-status-details-bin", status.SerializeToString()),
            *_rest_error(http_status, error_body(error, http_status)),
        ),
    )


async def abort_unavailable(context: grpc.aio.ServicerContext):
    """The database is unreachable, saturated or timed out: retry later with the same idempotency key."""
    message = "temporarily unavailable; retry with the same idempotency_key"
    body = {"error": "UNAVAILABLE", "http_status": 503, "message": message, "request_id": REQUEST_ID.get()}
    await context.abort(
        grpc.StatusCode.UNAVAILABLE, message, trailing_metadata=(("retry-after", "1"), *_rest_error(503, body))
    )


async def abort_unimplemented(context: grpc.aio.ServicerContext, method: str):
    """A method of the contract not built on this server yet (the generated base class raises
    NotImplementedError): 501 UNIMPLEMENTED, which clients (the operator console) tell apart from a failure."""
    name = method.rsplit("/", 1)[-1][:100]
    message = f"{name} is not implemented on this server yet"
    body = {"error": "UNIMPLEMENTED", "http_status": 501, "message": message, "request_id": REQUEST_ID.get()}
    await context.abort(grpc.StatusCode.UNIMPLEMENTED, message, trailing_metadata=_rest_error(501, body))


async def abort_internal(context: grpc.aio.ServicerContext):
    body = {"error": "INTERNAL", "http_status": 500, "message": "internal error", "request_id": REQUEST_ID.get()}
    await context.abort(grpc.StatusCode.INTERNAL, "internal error", trailing_metadata=_rest_error(500, body))


def _rest_error(http_status: int, body: dict) -> tuple[tuple[str, str], ...]:
    """What Envoy's Lua filter turns into the REST status and body; the request id as a header too
    (the 402 body is the contract's, field for field, so it carries the id only there)."""
    return (
        ("x-http-status", str(http_status)),
        ("x-error-json", json.dumps(body, separators=(",", ":"), ensure_ascii=True)),
        (REQUEST_ID_HEADER, REQUEST_ID.get()),
    )
