/**
 * The admin API as the console calls it: every call signed with the operator's key by
 * @billing/client (BillingClient.signedRequest), on the page's own origin (the internal listener,
 * which serves both the console and /v1/billing/admin/...). The console can do nothing the API
 * would refuse that key.
 */
import { BillingApiError, BillingClient, pathSegment, type QueryValue } from '@billing/client';
import type {
  AccountOverview, AccountUsage, ListAccountLedgerResponse, ListAuditEntriesResponse, ListMigrationRunsResponse,
  ListStripeEventsResponse, ListWebhookDeliveriesResponse, ListWebhookEndpointsResponse, OperatorActionResponse,
  ReplayWebhookDeliveriesResponse, ReprocessStripeEventResponse, SearchAccountsResponse, ServiceActivity, ServiceHealth,
} from '@billing/client/admin';
import type { OperatorKey } from './session.js';

const ADMIN = '/v1/billing/admin';

export interface LedgerQuery {
  types?: string[];
  fromAt?: string;
  toAt?: string;
  pageSize?: number;
  pageToken?: string;
  order?: 'oldest_first' | 'newest_first';
}

export interface AuditQuery {
  userId?: string;
  action?: string;
  operatorKeyId?: string;
  fromAt?: string;
  toAt?: string;
  pageToken?: string;
}

/** Every operator action carries a reason and an idempotency key (one per dialog: a retry is safe). */
export interface ActionBase {
  reason: string;
  idempotencyKey: string;
}

function account(userId: string): string {
  return `${ADMIN}/accounts/${pathSegment(userId)}`;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value ? value : undefined;
}

export class ConsoleApi {
  readonly client: BillingClient;

  constructor(readonly key: OperatorKey, options: { baseUrl?: string; fetch?: typeof fetch } = {}) {
    this.client = new BillingClient({
      baseUrl: options.baseUrl ?? '',
      credentials: key,
      ...(options.fetch ? { fetch: options.fetch } : {}),
      retry: { maxAttempts: 2 },
    });
  }

  private get<T>(path: string, query?: Record<string, QueryValue>): Promise<T> {
    return this.client.signedRequest<T>('GET', path, query ? { query } : {});
  }

  private post<T>(path: string, body: Record<string, unknown>): Promise<T> {
    return this.client.signedRequest<T>('POST', path, { body });
  }

  // ---------------------------------------------------------------- accounts

  searchAccounts(query: string, limit = 20): Promise<SearchAccountsResponse> {
    return this.get(`${ADMIN}/accounts`, { query, limit });
  }

  accountOverview(userId: string): Promise<AccountOverview> {
    return this.get(account(userId));
  }

  ledger(userId: string, query: LedgerQuery = {}): Promise<ListAccountLedgerResponse> {
    return this.get(`${account(userId)}/ledger`, {
      types: query.types && query.types.length ? query.types : undefined,
      from_at: nonEmpty(query.fromAt),
      to_at: nonEmpty(query.toAt),
      page_size: query.pageSize,
      page_token: nonEmpty(query.pageToken),
      order: query.order,
    });
  }

  /** The ledger as CSV (signed like every call, so it is fetched here and saved from a Blob). */
  async exportLedger(userId: string, query: Pick<LedgerQuery, 'types' | 'fromAt' | 'toAt'> = {}): Promise<{ blob: Blob; rowCount: number }> {
    const { text, contentType } = await this.client.signedRequestText('GET', `${account(userId)}/ledger.csv`, {
      query: {
        types: query.types && query.types.length ? query.types : undefined,
        from_at: nonEmpty(query.fromAt),
        to_at: nonEmpty(query.toAt),
      },
    });
    const lines = text.split('\n').filter((line) => line.trim() !== '').length;
    return { blob: new Blob([text], { type: contentType || 'text/csv' }), rowCount: Math.max(0, lines - 1) };
  }

  usage(userId: string, days = 30): Promise<AccountUsage> {
    return this.get(`${account(userId)}/usage`, { days });
  }

  // ---------------------------------------------------------------- actions

  grant(userId: string, action: ActionBase & { source: 'gift' | 'adjustment'; seconds: number; expiresAt?: string }) {
    return this.post<OperatorActionResponse>(`${account(userId)}/grants`, {
      source: action.source, seconds: action.seconds, reason: action.reason, idempotency_key: action.idempotencyKey,
      ...(action.expiresAt ? { expires_at: action.expiresAt } : {}),
    });
  }

  clawBack(userId: string, action: ActionBase & { seconds: number }) {
    return this.post<OperatorActionResponse>(`${account(userId)}/claw-backs`, {
      seconds: action.seconds, reason: action.reason, idempotency_key: action.idempotencyKey,
    });
  }

  refundPayment(userId: string, paymentId: string, action: ActionBase & { amountCents: number }) {
    return this.post<OperatorActionResponse>(`${account(userId)}/payments/${pathSegment(paymentId)}/refund`, {
      amount_cents: action.amountCents, reason: action.reason, idempotency_key: action.idempotencyKey,
    });
  }

  cancelSubscription(userId: string, action: ActionBase) {
    return this.post<OperatorActionResponse>(`${account(userId)}/subscription/cancel`, {
      reason: action.reason, idempotency_key: action.idempotencyKey,
    });
  }

  changeSubscription(userId: string, action: ActionBase & { planKey: string }) {
    return this.post<OperatorActionResponse>(`${account(userId)}/subscription/change`, {
      plan_key: action.planKey, reason: action.reason, idempotency_key: action.idempotencyKey,
    });
  }

  disableAutoTopup(userId: string, action: ActionBase) {
    return this.post<OperatorActionResponse>(`${account(userId)}/auto-topup/disable`, {
      reason: action.reason, idempotency_key: action.idempotencyKey,
    });
  }

  revokeKey(keyId: string, action: ActionBase) {
    return this.post<OperatorActionResponse>(`${ADMIN}/keys/${pathSegment(keyId)}/revoke`, {
      reason: action.reason, idempotency_key: action.idempotencyKey,
    });
  }

  // ---------------------------------------------------------------- audit, provider events, operations

  audit(query: AuditQuery = {}): Promise<ListAuditEntriesResponse> {
    return this.get(`${ADMIN}/audit`, {
      user_id: nonEmpty(query.userId),
      action: nonEmpty(query.action),
      operator_key_id: nonEmpty(query.operatorKeyId),
      from_at: nonEmpty(query.fromAt),
      to_at: nonEmpty(query.toAt),
      page_token: nonEmpty(query.pageToken),
    });
  }

  stripeEvents(query: { outcome?: string; userId?: string; pageToken?: string } = {}): Promise<ListStripeEventsResponse> {
    return this.get(`${ADMIN}/stripe-events`, {
      outcome: nonEmpty(query.outcome), user_id: nonEmpty(query.userId), page_token: nonEmpty(query.pageToken),
    });
  }

  reprocessStripeEvent(eventId: string, action: ActionBase): Promise<ReprocessStripeEventResponse> {
    return this.post(`${ADMIN}/stripe-events/${pathSegment(eventId)}/reprocess`, {
      reason: action.reason, idempotency_key: action.idempotencyKey,
    });
  }

  webhookEndpoints(): Promise<ListWebhookEndpointsResponse> {
    return this.get(`${ADMIN}/webhook-endpoints`);
  }

  webhookDeliveries(query: { status?: string; userId?: string; endpointId?: string; pageToken?: string } = {}) {
    return this.get<ListWebhookDeliveriesResponse>(`${ADMIN}/webhook-deliveries`, {
      status: nonEmpty(query.status), user_id: nonEmpty(query.userId), endpoint_id: nonEmpty(query.endpointId),
      page_token: nonEmpty(query.pageToken),
    });
  }

  replayWebhookEvent(eventId: string): Promise<ReplayWebhookDeliveriesResponse> {
    return this.post(`${ADMIN}/webhook-deliveries/${pathSegment(eventId)}/replay`, {});
  }

  migrationRuns(pageToken?: string): Promise<ListMigrationRunsResponse> {
    return this.get(`${ADMIN}/migration-runs`, { page_token: nonEmpty(pageToken) });
  }

  health(): Promise<ServiceHealth> {
    return this.get(`${ADMIN}/health`);
  }

  activity(hours = 24): Promise<ServiceActivity> {
    return this.get(`${ADMIN}/activity`, { hours });
  }
}

/** The RPC is not built on this server yet (501 UNIMPLEMENTED): the page says so instead of failing. */
export function isUnimplemented(error: unknown): boolean {
  return error instanceof BillingApiError && error.status === 501;
}

/** The key is unknown, expired or revoked (401), or not an admin key (403). */
export function isAuthFailure(error: unknown): boolean {
  return error instanceof BillingApiError && (error.status === 401 || error.status === 403);
}

/** An error's text for the operator: the API's JSON error body (message, field, request id) when there is one. */
export function describeError(error: unknown): string {
  if (error instanceof BillingApiError) {
    const field = error.field ? ` (field: ${error.field})` : '';
    const request = error.requestId ? ` [request ${error.requestId}]` : '';
    return `${error.code}: ${error.message}${field}${request}`;
  }
  return error instanceof Error ? error.message : String(error);
}
