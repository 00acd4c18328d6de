/**
 * Receiving the service's outbound events on a backend (issue 22): `@billing/client/webhooks`.
 *
 * The service signs every delivery as Standard Webhooks (https://www.standardwebhooks.com/):
 * `webhook-id` (the event's id, the same at every redelivery: deduplicate on it),
 * `webhook-timestamp` (unix seconds of this attempt), `webhook-signature` (`v1,<base64>` of
 * HMAC-SHA256 over `id.timestamp.body`, two space-separated while a secret is being rotated), with
 * the endpoint's secret `whsec_<base64>`. `verifyBillingWebhook` checks them with the
 * `standardwebhooks` package (the specification's own library, as the service signs with its Python
 * twin): any one signature matching in constant time, the timestamp within 5 minutes of this
 * machine's clock, then returns the event typed by its `type`.
 *
 * A separate entry point, not part of `@billing/client`: the secret belongs on the app's backend,
 * never in a browser, and the browser bundle does not carry the verifier.
 *
 * Payload: `{id, type, created_at, user_id, data}`; `data.totals` is the balance after the change
 * (as GET /v1/billing/balance's `totals`), `data.events` the ledger rows it reports (as the history's
 * events), and each type adds its own fields (src/billing/domain/outbound.py writes them).
 */

import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import type { BalanceTotals, BillingEvent, Timestamp } from './types.js';

export { WebhookVerificationError };

/** The catalogue (src/billing/domain/outbound_types.py EVENT_TYPES), in its order. */
export const BILLING_WEBHOOK_EVENT_TYPES = [
  'balance.low',
  'balance.depleted',
  'balance.recovered',
  'credit.granted',
  'credit.expiring',
  'credit.expired',
  'topup.succeeded',
  'topup.failed',
  'topup.disabled',
  'subscription.activated',
  'subscription.renewed',
  'subscription.changed',
  'subscription.canceled',
  'subscription.past_due',
  'refund.applied',
  'hold.expired',
] as const;

export type BillingWebhookEventType = (typeof BILLING_WEBHOOK_EVENT_TYPES)[number];

/** A ledger row as the history shows it; in an event its `metadata` is always there (maybe `{}`). */
export interface WebhookLedgerRow extends BillingEvent {
  metadata: Record<string, unknown>;
}

/** What every event's `data` carries. */
export interface WebhookData {
  /** The balance right after the change. */
  totals: BalanceTotals;
  /** The ledger rows the event reports (`[]` for balance and hold events). */
  events: WebhookLedgerRow[];
}

/** The plan after the change and before it. */
export interface PlanChange {
  plan_key: string;
  previous_plan_key: string;
}

/** Each type's own `data` fields, besides `totals` and `events`. */
export interface BillingWebhookDataByType {
  /** The available balance went below this threshold (several at once: highest first). */
  'balance.low': { threshold_seconds: number };
  'balance.depleted': {};
  /** Back above every threshold. */
  'balance.recovered': {};
  /** A credit ledger row (`events[0]`): package, subscription, rollover, top-up, gift, welcome, adjustment. */
  'credit.granted': { source: string };
  /**
   * A rollover's discard notice (`events[0]`, the rollover_discard_pending row), or a bucket expiring
   * within 3 days (`source`, `bucket_seq`; no row); once per bucket.
   */
  'credit.expiring': { expires_at: Timestamp; seconds_at_risk: number; source?: string; bucket_seq?: number };
  /** A rollover discarded (`events[0]`), or a bucket expired with free seconds (`source`, `bucket_seq`, `expires_at`). */
  'credit.expired': { expired_seconds: number; source?: string; bucket_seq?: number; expires_at?: Timestamp };
  /** An auto top-up's package credit (`events[0]`). */
  'topup.succeeded': { package_key: string };
  /** `retry_at`: when auto top-up tries again (null: it will not). */
  'topup.failed': { failures: number; last_failure: string; retry_at: Timestamp | null };
  'topup.disabled': { last_failure: string };
  'subscription.activated': PlanChange;
  /** The period's subscription credit(s) in `events`. */
  'subscription.renewed': PlanChange;
  'subscription.changed': PlanChange;
  /** `at_period_end`: a cancellation scheduled for the end of the period (true) or done now (false). */
  'subscription.canceled': PlanChange & { at_period_end: boolean };
  'subscription.past_due': PlanChange;
  /** The refund's adjustment rows in `events`. */
  'refund.applied': { payment_id: string; removed_seconds: number };
  /** An open hold reached its expiry and settled at what was committed. */
  'hold.expired': { hold_id: string; committed_seconds: number; released_seconds: number };
}

/** One event of type T, as sent. */
export interface BillingWebhookEventOf<T extends BillingWebhookEventType> {
  /** `evt_...`: stable, equal to the `webhook-id` header. */
  id: string;
  type: T;
  created_at: Timestamp;
  user_id: string;
  data: WebhookData & BillingWebhookDataByType[T];
}

/** Every event of the catalogue, discriminated by `type`. */
export type BillingWebhookEvent = { [T in BillingWebhookEventType]: BillingWebhookEventOf<T> }[BillingWebhookEventType];

/**
 * A correctly signed event whose type this version of the client does not know (the service added
 * one). Answer it 2xx: an account's events are sent in order, so an error answer holds back that
 * account's later events until the delivery is retried out (~28 h).
 */
export interface UnknownBillingWebhookEvent {
  id: string;
  type: string;
  created_at: Timestamp;
  user_id: string;
  data: Partial<WebhookData> & Record<string, unknown>;
}

/** The request's headers: node:http's `req.headers`, a fetch `Headers`, or a plain object (any case). */
export type WebhookHeaders =
  | { get(name: string): string | null }
  | Readonly<Record<string, string | readonly string[] | undefined>>;

const KNOWN: ReadonlySet<string> = new Set(BILLING_WEBHOOK_EVENT_TYPES);

export function isBillingWebhookEventType(type: string): type is BillingWebhookEventType {
  return KNOWN.has(type);
}

/** Narrows a verified event to the catalogue (then `switch (event.type)` types its `data`). */
export function isKnownBillingWebhookEvent(
  event: BillingWebhookEvent | UnknownBillingWebhookEvent,
): event is BillingWebhookEvent {
  return isBillingWebhookEventType(event.type);
}

/**
 * Verifies a delivery and returns its event. `rawBody`: the request body exactly as received (the
 * bytes, or their UTF-8 text), never JSON parsed and serialized again. `secret`: the endpoint's
 * `whsec_...` (during a rotation the service signs with the new and the old secret, so either works).
 *
 * Throws `WebhookVerificationError` (answer 400) when a header is missing, no signature matches, the
 * timestamp is more than 5 minutes from this machine's clock, or the signed body is not an event
 * (or its `id` is not the `webhook-id`). An event of a type this client does not know is returned,
 * not thrown: check `isKnownBillingWebhookEvent` and acknowledge the others.
 */
export function verifyBillingWebhook(
  rawBody: string | Uint8Array,
  headers: WebhookHeaders,
  secret: string,
): BillingWebhookEvent | UnknownBillingWebhookEvent {
  const wanted = {
    'webhook-id': header(headers, 'webhook-id'),
    'webhook-timestamp': header(headers, 'webhook-timestamp'),
    'webhook-signature': header(headers, 'webhook-signature'),
  };
  if (!wanted['webhook-id'] || !wanted['webhook-timestamp'] || !wanted['webhook-signature']) {
    throw new WebhookVerificationError('Missing required headers');
  }
  new Webhook(secret).verify(rawBody, wanted as Record<string, string>, { jsonParse: false });
  let payload: unknown;
  try {
    payload = JSON.parse(typeof rawBody === 'string' ? rawBody : new TextDecoder('utf-8', { fatal: true }).decode(rawBody));
  } catch {
    throw new WebhookVerificationError('The signed body is not JSON');
  }
  if (!isEvent(payload)) {
    throw new WebhookVerificationError('The signed body is not a billing event');
  }
  if (payload.id !== wanted['webhook-id']) {
    throw new WebhookVerificationError('The event id is not the webhook-id');
  }
  return payload;
}

function header(headers: WebhookHeaders, name: string): string | undefined {
  if (typeof (headers as { get?: unknown }).get === 'function') {
    return (headers as { get(name: string): string | null }).get(name) ?? undefined;
  }
  const record = headers as Readonly<Record<string, string | readonly string[] | undefined>>;
  let value = record[name];
  if (value === undefined) {
    const key = Object.keys(record).find((k) => k.toLowerCase() === name);
    value = key === undefined ? undefined : record[key];
  }
  // node:http joins repeated headers with ", " (an array only for set-cookie): one value or none.
  return typeof value === 'string' ? value : undefined;
}

function isEvent(value: unknown): value is BillingWebhookEvent | UnknownBillingWebhookEvent {
  if (typeof value !== 'object' || value === null) return false;
  const event = value as Record<string, unknown>;
  return (
    typeof event.id === 'string' &&
    typeof event.type === 'string' &&
    typeof event.created_at === 'string' &&
    typeof event.user_id === 'string' &&
    typeof event.data === 'object' &&
    event.data !== null &&
    !Array.isArray(event.data)
  );
}
