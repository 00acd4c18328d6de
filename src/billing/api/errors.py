"""The one table from error type to gRPC code and HTTP status, and the abort that carries both.

REST: Envoy's Lua filter turns the trailing metadata x-http-status / x-error-json of a
trailers-only reply into the HTTP status and JSON body (see envoy/README.md). gRPC
clients get the code plus google.rpc.Status details (ErrorInfo, BadRequest, InsufficientAiTime).
"""

from __future__ import annotations

import functools
import json
import logging

import grpc
import psycopg
from google.protobuf import any_pb2
from psycopg_pool import PoolTimeout
from google.rpc import error_details_pb2, status_pb2

from billing.domain import errors
from billing.v1 import consumption_pb2

log = logging.getLogger(__name__)
ERROR_DOMAIN = "billing.v1"

# error type -> (gRPC code, HTTP status)
STATUS_BY_ERROR: dict[type[errors.BillingError], tuple[grpc.StatusCode, int]] = {
    errors.InvalidArgument: (grpc.StatusCode.INVALID_ARGUMENT, 400),
    errors.AccountNotFound: (grpc.StatusCode.NOT_FOUND, 404),
    errors.IdempotencyKeyReused: (grpc.StatusCode.ALREADY_EXISTS, 409),
    errors.BalanceTooLow: (grpc.StatusCode.FAILED_PRECONDITION, 409),
    errors.InsufficientAiTime: (grpc.StatusCode.FAILED_PRECONDITION, 402),
    errors.ResumeTokenInvalid: (grpc.StatusCode.INVALID_ARGUMENT, 400),
    errors.ResumeTokenUsed: (grpc.StatusCode.FAILED_PRECONDITION, 409),
    errors.ResumeTokenExpired: (grpc.StatusCode.FAILED_PRECONDITION, 410),
}


def suggestion_json(suggestion: errors.Suggestion) -> dict:
    fields = {"type": suggestion.type, "key": suggestion.key, "plan": suggestion.plan, "minutes": suggestion.minutes}
    return {name: value for name, value in fields.items() if value is not None}


def suggestion_proto(suggestion: errors.Suggestion) -> consumption_pb2.Suggestion:
    return consumption_pb2.Suggestion(**suggestion_json(suggestion))


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
        details.append(
            consumption_pb2.InsufficientAiTime(
                balance_seconds=error.balance_seconds,
                breakdown_seconds=consumption_pb2.BreakdownSeconds(
                    bonus_daily=error.bonus_daily_seconds, paid=error.paid_seconds
                ),
                suggestions=[suggestion_proto(s) for s in error.suggestions],
                catalog_version=error.catalog_version,
                resume_token=error.resume_token or "",
                deficit_seconds=error.deficit_seconds,
            )
        )
    packed = []
    for detail in details:
        wrapper = any_pb2.Any()
        wrapper.Pack(detail)
        packed.append(wrapper)
    return packed


async def abort_with_error(context: grpc.aio.ServicerContext, error: errors.BillingError):
    code, http_status = STATUS_BY_ERROR[type(error)]  # a new error type must be added to the table
    status = status_pb2.Status(code=code.value[0], message=error.message, details=_details(error))
    await context.abort(
        code,
        error.message,
        trailing_metadata=(
            ("grpc-status-details-bin", status.SerializeToString()),
            ("x-http-status", str(http_status)),
            ("x-error-json", json.dumps(error_body(error, http_status), separators=(",", ":"), ensure_ascii=True)),
        ),
    )


async def abort_unavailable(context: grpc.aio.ServicerContext):
    """The database is unreachable, saturated or timed out: retry later with the same idempotency key."""
    body = {"error": "UNAVAILABLE", "http_status": 503, "message": "temporarily unavailable; retry with the same idempotency_key"}
    await context.abort(
        grpc.StatusCode.UNAVAILABLE,
        body["message"],
        trailing_metadata=(
            ("x-http-status", "503"), ("retry-after", "1"), ("x-error-json", json.dumps(body, separators=(",", ":"))),
        ),
    )


async def abort_internal(context: grpc.aio.ServicerContext):
    body = {"error": "INTERNAL", "http_status": 500, "message": "internal error"}
    await context.abort(
        grpc.StatusCode.INTERNAL,
        "internal error",
        trailing_metadata=(("x-http-status", "500"), ("x-error-json", json.dumps(body, separators=(",", ":")))),
    )


def translate_errors(method):
    """Maps the use cases' errors to statuses, once, at the edge."""

    @functools.wraps(method)
    async def wrapper(self, request, context):
        try:
            return await method(self, request, context)
        except errors.BillingError as error:
            await abort_with_error(context, error)
        except grpc.aio.AbortError:
            raise
        except (PoolTimeout, psycopg.OperationalError):
            # Connection loss, pool exhaustion, statement timeout, deadlock, serialization failure.
            log.warning("database unavailable in %s", method.__name__, exc_info=True)
            await abort_unavailable(context)
        except Exception:
            log.exception("unexpected error in %s", method.__name__)
            await abort_internal(context)

    return wrapper
