import type { ErrorBody, InsufficientFundsErrorBody } from './types.js';

/**
 * Any error answer of the billing API but the 402: `{"error", "http_status", "message", "field"?}`.
 * `code` is the server's error code (INVALID_ARGUMENT, UNAUTHENTICATED, RESUME_TOKEN_USED, ...),
 * `status` the HTTP status. Network failures are NETWORK_ERROR with status 0.
 */
export class BillingApiError extends Error {
  override readonly name: string = 'BillingApiError';
  readonly code: string;
  readonly status: number;
  readonly field: string | undefined;
  readonly requestId: string | undefined;
  /** Seconds the server asked to wait (Retry-After), when it said. */
  readonly retryAfterSeconds: number | undefined;
  readonly body: unknown;

  constructor(init: {
    code: string;
    status: number;
    message: string;
    field?: string | undefined;
    requestId?: string | undefined;
    retryAfterSeconds?: number | undefined;
    body?: unknown;
    cause?: unknown;
  }) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.code = init.code;
    this.status = init.status;
    this.field = init.field;
    this.requestId = init.requestId;
    this.retryAfterSeconds = init.retryAfterSeconds;
    this.body = init.body;
  }

  /** The contract's `error` field: the code. */
  get error(): string {
    return this.code;
  }

  static fromBody(status: number, body: unknown, headers?: Headers, retryAfterSeconds?: number): BillingApiError {
    const parsed = isErrorBody(body) ? body : undefined;
    const requestId = parsed?.request_id ?? headers?.get('x-request-id') ?? undefined;
    return new BillingApiError({
      code: parsed?.error ?? codeForStatus(status),
      status,
      message: parsed?.message ?? `HTTP ${status}`,
      field: parsed?.field,
      requestId: requestId === null ? undefined : requestId,
      retryAfterSeconds,
      body,
    });
  }
}

// The class below shares its name with this interface (declaration merging): an
// InsufficientFundsError instance has every field of the contract's 402 body.
export interface InsufficientFundsError extends InsufficientFundsErrorBody {}

/**
 * HTTP 402 INSUFFICIENT_AI_TIME: the contract's InsufficientFundsError, thrown. Carries the
 * server's suggestions (show them, buy / upgrade) and the resume token, which the client has
 * already kept in sessionStorage with the blocked operation (see BillingClient.resumeAfterPurchase).
 */
export class InsufficientFundsError extends Error {
  override readonly name: string = 'InsufficientFundsError';
  /** HTTP status, as the contract's universal handler reads it (`error.status === 402`). */
  readonly status = 402 as const;
  readonly code = 'INSUFFICIENT_AI_TIME' as const;
  /** The operation that was refused, when the client knows it (consume). */
  readonly operation: string | undefined;
  /** The seconds the refused operation asked for, when known. */
  readonly requestedSeconds: number | undefined;

  constructor(body: InsufficientFundsErrorBody, context: { operation?: string; requestedSeconds?: number } = {}) {
    super(`insufficient AI time: ${body.balance_seconds} s available`);
    this.error = 'INSUFFICIENT_AI_TIME';
    this.http_status = 402;
    this.balance_seconds = body.balance_seconds;
    this.breakdown_seconds = { ...body.breakdown_seconds };
    this.suggestions = body.suggestions.map((s) => ({ ...s }));
    this.catalog_version = body.catalog_version;
    this.resume_token = body.resume_token ?? null;
    this.operation = context.operation;
    this.requestedSeconds = context.requestedSeconds;
  }

  /** Seconds missing for the refused operation, when the client knows what it asked for. */
  get deficitSeconds(): number | undefined {
    return this.requestedSeconds === undefined ? undefined : Math.max(0, this.requestedSeconds - this.balance_seconds);
  }

  /** The 402 body as the server sent it (the contract's plain object). */
  toJSON(): InsufficientFundsErrorBody {
    return {
      error: this.error,
      http_status: this.http_status,
      balance_seconds: this.balance_seconds,
      breakdown_seconds: { ...this.breakdown_seconds },
      suggestions: this.suggestions.map((s) => ({ ...s })),
      catalog_version: this.catalog_version,
      resume_token: this.resume_token ?? null,
    };
  }
}

export function isInsufficientFundsBody(body: unknown): body is InsufficientFundsErrorBody {
  if (!isObject(body) || body['error'] !== 'INSUFFICIENT_AI_TIME') return false;
  const breakdown = body['breakdown_seconds'];
  return typeof body['balance_seconds'] === 'number' && Array.isArray(body['suggestions']) && isObject(breakdown);
}

function isErrorBody(body: unknown): body is ErrorBody {
  return isObject(body) && typeof body['error'] === 'string';
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function codeForStatus(status: number): string {
  switch (status) {
    case 400: return 'INVALID_ARGUMENT';
    case 401: return 'UNAUTHENTICATED';
    case 403: return 'PERMISSION_DENIED';
    case 404: return 'NOT_FOUND';
    case 409: return 'CONFLICT';
    case 429: return 'RATE_LIMITED';
    case 502: case 503: case 504: return 'UNAVAILABLE';
    default: return 'ERROR';
  }
}

/** Typing helpers for a `catch (e)` block. */
export function isInsufficientFunds(error: unknown): error is InsufficientFundsError {
  return error instanceof InsufficientFundsError;
}

export function isBillingApiError(error: unknown): error is BillingApiError {
  return error instanceof BillingApiError;
}
