/**
 * What the server sends and takes over REST, field for field.
 *
 * Every message's fields come from the types generated from the protos (src/generated/, written by
 * `make gen` with ts-proto; never edit them): a proto field added, renamed or retyped changes these
 * interfaces with it. This file only gives them the frontend contract's names (EnhancedBalance,
 * PricingCatalog, InsufficientFundsError, BatchOperationRequest, PurchaseRequest/Response, ...; the
 * proto message's name otherwise) and narrows what a proto cannot say:
 * - google.protobuf.Value fields, which this API fills with an RFC 3339 time or null;
 * - string fields whose values the contract enumerates (BucketSource, Operation, BillingEventType);
 * - message fields the server always sets (ts-proto types them `| undefined`);
 * - request fields the server defaults when absent (`?` here), and the contract's spellings that
 *   are not proto field names (the batch body's `userId`, the 402 body's `error` and `http_status`).
 * test/wire_types.ts holds every narrowing to its proto field at compile time.
 *
 * Wire rules (Envoy's transcoder: preserve_proto_field_names, always_print_primitive_fields):
 * every non-optional scalar is always present (0, "", false, [] when empty); proto3 `optional`
 * fields are absent when unset (`?`); int32 and double are JSON numbers, int64 JSON strings;
 * timestamps are RFC 3339 strings in UTC with `Z`; nullable times (google.protobuf.Value) are a
 * string or null.
 */

import type * as accounts from './generated/billing/v1/accounts.js';
import type * as balance from './generated/billing/v1/balance.js';
import type * as catalog from './generated/billing/v1/catalog.js';
import type * as consumption from './generated/billing/v1/consumption.js';
import type * as holds from './generated/billing/v1/holds.js';
import type * as keys from './generated/billing/v1/keys.js';
import type * as payments from './generated/billing/v1/payments.js';
import type * as service from './generated/billing/v1/billing_service.js';

/** M without the fields K, which the interface declares again (K must be fields of M). */
type Except<M, K extends keyof M> = Omit<M, K>;

/** RFC 3339 UTC instant, e.g. "2025-09-02T00:00:00Z" (fractions when non-zero). */
export type Timestamp = string;

/** Bucket sources, in the contract's words. */
export type BucketSource = 'daily' | 'subscription' | 'rollover' | 'package' | 'welcome' | 'gift';

/** Operations Consume accepts (and the batch preflight estimates). */
export type Operation = 'build' | 'plan' | 'export' | 'metadata_generation';

/** Currencies the catalog prices (others fall back to USD with `currency_fallback_from`). */
export type Currency = 'USD' | 'EUR' | 'GBP' | 'EGP' | 'SAR' | 'AED';

// ---------------------------------------------------------------- catalog (public)

/** GET /v1/billing/catalog?currency=XXX (unsigned; ETag / If-None-Match). */
export interface PricingCatalog extends catalog.PricingCatalog {
  rollover_policy: RolloverPolicy;
  subscriptions: SubscriptionPlan[];
  packages: Package[];
}

/** The contract's name for a catalog that may have fallen back to USD: the same shape. */
export type CurrencyAwareCatalog = PricingCatalog;

export interface RolloverPolicy extends catalog.RolloverPolicy {}

/** `price` is for display (9.99): print it, never recompute it; `price_cents` is authoritative. */
export interface SubscriptionPlan extends catalog.SubscriptionPlan {
  advisor: Advisor;
}

export interface Advisor extends catalog.Advisor {}

export interface Package extends catalog.Package {}

// ---------------------------------------------------------------- balance

/** GET /v1/billing/balance/{user_id} */
export interface EnhancedBalance extends balance.EnhancedBalance {
  totals: BalanceTotals;
  buckets: BalanceBuckets;
  bonus: BonusStatus;
  subscription: SubscriptionPeriod;
  auto_topup: AutoTopupState;
}

/**
 * One event of GET /v1/billing/balance/{user_id}/stream (Server-Sent Events): the balance the GET
 * answers, with the account's version (a 64-bit integer, sent as a string; every change raises
 * it), or a heartbeat (`heartbeat: true`, no balance) while nothing changes.
 */
export interface BalanceUpdate extends Except<service.BalanceUpdate, 'balance'> {
  balance?: EnhancedBalance;
}

/**
 * `bonus_seconds` is the daily bonus only; every other source counts as paid. `total_seconds`
 * (paid + bonus) is what can be consumed or held now: `held_seconds`, reserved by open holds,
 * is not in it.
 */
export interface BalanceTotals extends balance.BalanceTotals {
  next_expiry_at: Timestamp | null;
}

/** Each list is in consumption order. */
export interface BalanceBuckets extends balance.BalanceBuckets {
  daily: DailyBucket[];
  paid: PaidBucket[];
}

export interface DailyBucket extends balance.DailyBucket {
  expires_at: Timestamp;
}

export interface PaidBucket extends balance.PaidBucket {
  /** null for buckets that never expire (welcome, gift). */
  expires_at: Timestamp | null;
  source: BucketSource;
}

export interface BonusStatus extends balance.BonusStatus {}

export interface SubscriptionPeriod extends balance.SubscriptionPeriod {
  current_period_start_at: Timestamp | null;
  current_period_end_at: Timestamp | null;
}

/** `last_failure` is "" when none; `action_required`: the card needs its owner (3-D Secure). */
export interface AutoTopupState extends balance.AutoTopupState {}

// ---------------------------------------------------------------- usage and history

/**
 * GET /v1/billing/usage/{user_id}?period=day|month: seconds per operation (zeros kept), and one
 * entry per UTC day of the period, zero-filled.
 */
export interface UsageAnalytics extends balance.UsageAnalytics {}

export interface DailyUsage extends balance.DailyUsage {}

export type BillingEventType =
  | 'subscription_credit'
  | 'package_credit'
  | 'daily_bonus'
  | 'consumption'
  | 'rollover_created'
  | 'rollover_discard'
  | 'rollover_discard_pending'
  | 'auto_topup_triggered'
  | 'adjustment';

/** GET /v1/billing/events/{user_id}?limit=N&page_token=T (newest first). */
export interface BillingEventHistory extends Except<balance.BillingEventHistory, 'events'> {
  events: BillingEvent[];
}

/** `seconds` is signed: credits positive, consumption negative (0 for notices). */
export interface BillingEvent extends Except<balance.BillingEvent, 'metadata'> {
  type: BillingEventType;
  timestamp: Timestamp;
  metadata?: Record<string, unknown>;
}

// ---------------------------------------------------------------- consumption

/** `resume_token`: from an earlier 402; runs the operation once after a top-up. */
export interface ConsumeRequest extends Except<consumption.ConsumeRequest, 'resume_token'> {
  operation: Operation;
  resume_token?: string;
}

/** POST /v1/billing/consume */
export interface ConsumeResponse extends consumption.ConsumeResponse {
  /** Which buckets paid, in the order they were drawn from. */
  taken: BucketDebit[];
  /** The balance right after this consumption. */
  totals: BalanceTotals;
}

export interface BucketDebit extends consumption.BucketDebit {
  source: BucketSource;
  expires_at: Timestamp | null;
}

/** A package (`key`) or an upgrade (`plan`). */
export interface Suggestion extends consumption.Suggestion {
  type: 'package' | 'upgrade';
}

export interface BreakdownSeconds extends consumption.BreakdownSeconds {}

/**
 * The 402 body, exactly the contract's InsufficientFundsError (the gRPC detail InsufficientAiTime
 * without deficit_seconds, plus `error` and `http_status`). The client throws it as the
 * InsufficientFundsError class (errors.ts), whose instances carry these fields.
 */
export interface InsufficientFundsErrorBody
  extends Except<consumption.InsufficientAiTime, 'deficit_seconds' | 'breakdown_seconds' | 'suggestions' | 'resume_token'> {
  error: 'INSUFFICIENT_AI_TIME';
  http_status: 402;
  breakdown_seconds: BreakdownSeconds;
  suggestions: Suggestion[];
  /** Single use, bound to the user and operation, valid 1 hour (always sent; null if none was issued). */
  resume_token: string | null;
}

/** One operation of a batch preflight (the contract's name; proto OperationEstimate). */
export interface BatchOperationRequest extends consumption.OperationEstimate {
  operation: Operation;
}

/** The body of POST /v1/billing/check-sufficient-batch, spelled as the contract sends it. */
export interface BatchCheckRequest extends Except<consumption.CheckSufficientBatchRequest, 'user_id' | 'operations'> {
  /** The JSON name of user_id, which the transcoder accepts in request bodies. */
  userId: string;
  operations: BatchOperationRequest[];
}

export interface BatchOperationResult extends consumption.BatchOperationResult {
  suggestions: Suggestion[];
}

/** The check-sufficient-batch answer: a bare JSON array, one result per operation, cumulative. */
export type BatchCheckResult = BatchOperationResult[];

// ---------------------------------------------------------------- holds

/** open; settled (a final commit or a release); expired (settled by itself at expires_at). */
export type HoldState = 'open' | 'settled' | 'expired';

/** Seconds reserved before work of unknown length: `held_seconds` in all, `committed_seconds` used. */
export interface Hold extends holds.Hold {
  operation: Operation;
  state: HoldState;
  expires_at: Timestamp;
}

/**
 * Body of POST /v1/billing/holds. `hold_id` is the hold's idempotency key (unique per user): the
 * same request again answers the same hold; other values with it are 409 HOLD_CONFLICT.
 * `ttl_seconds` defaults to 900 (5 to 86,400).
 */
export interface CreateHoldRequest extends Except<holds.CreateHoldRequest, 'operation' | 'ttl_seconds' | 'resume_token'> {
  operation: Operation;
  ttl_seconds?: number;
  resume_token?: string;
}

/** Body of POST /v1/billing/holds/{hold_id}/extend: more seconds (all or nothing) and/or a new expiry. */
export interface ExtendHoldRequest
  extends Except<holds.ExtendHoldRequest, 'hold_id' | 'seconds' | 'ttl_seconds' | 'idempotency_key'> {
  seconds?: number;
  ttl_seconds?: number;
  idempotency_key?: string;
}

/** Body of POST /v1/billing/holds/{hold_id}/commit: `used_seconds` is cumulative; `final` settles. */
export interface CommitHoldRequest extends Except<holds.CommitHoldRequest, 'hold_id' | 'final'> {
  final?: boolean;
}

/** Body of POST /v1/billing/holds/{hold_id}/release. */
export interface ReleaseHoldRequest extends Except<holds.ReleaseHoldRequest, 'hold_id'> {}

/** Create, extend, commit and release answer the hold and the balance's totals right after. */
export interface HoldResponse extends holds.HoldResponse {
  hold: Hold;
  totals: BalanceTotals;
}

/** GET /v1/billing/holds?user_id=U: the open holds, oldest first. */
export interface ListHoldsResponse extends holds.ListHoldsResponse {
  holds: Hold[];
  totals: BalanceTotals;
}

// ---------------------------------------------------------------- accounts

/** `plan_key` defaults to free (a paid plan needs an admin key). */
export interface CreateAccountRequest extends Except<accounts.CreateAccountRequest, 'plan_key'> {
  plan_key?: string;
}

/** POST /v1/billing/accounts (idempotent by user_id: created is false the second time). */
export interface CreateAccountResponse extends accounts.CreateAccountResponse {
  created_at: Timestamp;
  totals: BalanceTotals;
}

/**
 * A short-lived user key (CreateSessionKey, called by the app backend with its service key and
 * handed to the browser). The client needs key_id and secret; expires_at lets it fetch a new one.
 */
export interface CreateSessionKeyResponse extends keys.CreateSessionKeyResponse {
  expires_at: Timestamp;
}

// ---------------------------------------------------------------- payments

/**
 * The contract's PurchaseRequest (body of POST /v1/billing/packages/purchase). `currency` defaults
 * to USD (an unpriced one falls back to USD); the same `idempotency_key` returns the same session.
 */
export interface PurchaseRequest extends Except<payments.PurchasePackageRequest, 'currency' | 'idempotency_key'> {
  currency?: string;
  idempotency_key?: string;
}

/** The contract's PackagePurchaseRequest is PurchaseRequest. */
export type PackagePurchaseRequest = PurchaseRequest;

/** `checkout_url`: where the browser goes to pay (Stripe Checkout); the price is the server's. */
export interface PackagePurchaseResponse extends payments.PackagePurchaseResponse {}

/** The contract's other name for the purchase answer. */
export type PurchaseResponse = PackagePurchaseResponse;

export interface CreateSubscriptionCheckoutRequest
  extends Except<payments.CreateSubscriptionCheckoutRequest, 'currency' | 'idempotency_key'> {
  currency?: string;
  idempotency_key?: string;
}

/** `plan_minutes`: minutes credited each paid period. */
export interface SubscriptionCheckoutResponse extends payments.SubscriptionCheckoutResponse {}

export interface CancelSubscriptionRequest extends payments.CancelSubscriptionRequest {}

export interface ChangeSubscriptionPlanRequest extends payments.ChangeSubscriptionPlanRequest {}

/** The account's subscription as the service knows it (cancel and change answer it). */
export interface SubscriptionState extends payments.SubscriptionState {
  current_period_start_at: Timestamp | null;
  current_period_end_at: Timestamp | null;
}

/**
 * PUT /v1/billing/auto-topup/{user_id} (absolute: a repeat is the same, no idempotency key).
 * `threshold_seconds` (1..2,678,400) and `package_key` are required when enabled.
 */
export interface UpdateAutoTopupRequest
  extends Except<payments.UpdateAutoTopupRequest, 'threshold_seconds' | 'package_key' | 'currency'> {
  threshold_seconds?: number;
  package_key?: string;
  currency?: string;
}

/** GET and PUT /v1/billing/auto-topup/{user_id} */
export interface AutoTopupSettings extends payments.AutoTopupSettings {}

export interface CreateAutoTopupSetupRequest extends payments.CreateAutoTopupSetupRequest {}

/** A checkout page that saves a card for auto top-up (nothing is charged). */
export interface AutoTopupSetupResponse extends payments.AutoTopupSetupResponse {}

// ---------------------------------------------------------------- errors

/** Every error but the 402: `{"error", "http_status", "message", "field"?, "request_id"?}` (no proto message). */
export interface ErrorBody {
  error: string;
  http_status: number;
  message: string;
  field?: string;
  request_id?: string | null;
}
