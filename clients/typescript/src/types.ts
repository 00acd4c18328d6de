/**
 * What the server sends and takes over REST, field for field.
 *
 * The names are the frontend contract's where it has one (EnhancedBalance, PricingCatalog,
 * SubscriptionPlan, Package, UsageAnalytics, BillingEvent, BillingEventHistory,
 * InsufficientFundsError, BatchOperationRequest/Result, PurchaseRequest/Response, ...), otherwise
 * the proto message's (protos/billing/v1/*.proto). Nested objects the contract writes inline are
 * named interfaces here (BalanceTotals, BalanceBuckets, ...), so that
 * tests/unit/test_typescript_client.py can hold every interface to its proto message: a proto field
 * added without its property here fails that test (and so does a property the proto lacks).
 *
 * Wire rules (Envoy's transcoder: preserve_proto_field_names, always_print_primitive_fields):
 * every non-optional scalar is always present (0, "", false, [] when empty); proto3 `optional`
 * fields are absent when unset (`?` here); int32 and double are JSON numbers; timestamps are
 * RFC 3339 strings in UTC with `Z`; nullable times (google.protobuf.Value) are a string or null.
 *
 * Rules for this file (the drift test parses it with a regular expression): one `export interface`
 * per message, one property per line, no inline object types; a property's proto message is
 * named by its interface.
 */

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
export interface PricingCatalog {
  version: string;
  rollover_policy: RolloverPolicy;
  subscriptions: SubscriptionPlan[];
  packages: Package[];
  /** ISO 4217 code the prices are in. */
  currency: string;
  /** Present only when the requested currency had no prices and USD was served. */
  currency_fallback_from?: string;
}

/** The contract's name for a catalog that may have fallen back to USD: the same shape. */
export type CurrencyAwareCatalog = PricingCatalog;

export interface RolloverPolicy {
  days: number;
}

export interface SubscriptionPlan {
  key: string;
  name: string;
  /** Minutes included per billing period. */
  minutes: number;
  /** Display price in major units (9.99): print it, never recompute it. */
  price: number;
  /** The authoritative price, in the currency's minor units. */
  price_cents: number;
  bonusDaily?: number;
  monthlyBonusCap?: number;
  rolloverCap?: number;
  taxInclusive: boolean;
  advisor: Advisor;
}

export interface Advisor {
  eligible: boolean;
  payoutUSD?: number;
}

export interface Package {
  key: string;
  name: string;
  minutes: number;
  price: number;
  price_cents: number;
  taxInclusive: boolean;
}

// ---------------------------------------------------------------- balance

/** GET /v1/billing/balance/{user_id} */
export interface EnhancedBalance {
  /** Version of the response shape ("2025-09-01"), not of the account. */
  version: string;
  plan_key: string;
  /** "inactive" on the free plan, "active" on a paid one; past_due, canceled, ... */
  subscription_status: string;
  catalog_version: string;
  totals: BalanceTotals;
  buckets: BalanceBuckets;
  bonus: BonusStatus;
  /** Paid plans: the current period, a pending downgrade, cancellation at period end. */
  subscription: SubscriptionPeriod;
  auto_topup: AutoTopupState;
}

/**
 * One event of GET /v1/billing/balance/{user_id}/stream (Server-Sent Events): the balance the GET
 * answers, with the account's version (a 64-bit integer, sent as a string; every change raises
 * it), or a heartbeat (`heartbeat: true`, no balance) while nothing changes.
 */
export interface BalanceUpdate {
  version: string;
  balance?: EnhancedBalance;
  heartbeat: boolean;
}

export interface BalanceTotals {
  total_seconds: number;
  paid_seconds: number;
  /** The daily bonus only; every other source counts as paid. */
  bonus_seconds: number;
  next_expiry_at: Timestamp | null;
}

/** Each list is in consumption order. */
export interface BalanceBuckets {
  daily: DailyBucket[];
  paid: PaidBucket[];
}

export interface DailyBucket {
  seconds: number;
  expires_at: Timestamp;
}

export interface PaidBucket {
  seconds: number;
  /** null for buckets that never expire (welcome, gift). */
  expires_at: Timestamp | null;
  source: BucketSource;
}

export interface BonusStatus {
  daily_minutes: number;
  used_this_month_minutes: number;
  monthly_cap_minutes: number;
}

export interface SubscriptionPeriod {
  current_period_start_at: Timestamp | null;
  current_period_end_at: Timestamp | null;
  cancel_at_period_end: boolean;
  /** The plan that takes over at the end of the period (a downgrade), or "". */
  pending_plan_key: string;
}

export interface AutoTopupState {
  enabled: boolean;
  threshold_seconds: number;
  package_key: string;
  /** A top-up payment was started and its credit has not arrived yet. */
  pending: boolean;
  /** The last attempt's failure code, "" when none. */
  last_failure: string;
  /** The card needs its owner (3-D Secure): show it; it is not retried blindly. */
  action_required: boolean;
}

// ---------------------------------------------------------------- usage and history

/** GET /v1/billing/usage/{user_id}?period=day|month */
export interface UsageAnalytics {
  total_seconds: number;
  /** Seconds per operation; zeros kept. */
  by_operation: Record<string, number>;
  /** One entry per UTC day of the period, zero-filled. */
  daily_trend: DailyUsage[];
}

export interface DailyUsage {
  /** UTC calendar date, YYYY-MM-DD. */
  date: string;
  seconds: number;
}

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
export interface BillingEventHistory {
  events: BillingEvent[];
  /** Pass as page_token to read older events; "" on the last page. */
  next_page_token: string;
}

export interface BillingEvent {
  type: BillingEventType;
  /** Signed: credits positive, consumption negative (0 for notices). */
  seconds: number;
  reason: string;
  timestamp: Timestamp;
  metadata?: Record<string, unknown>;
}

// ---------------------------------------------------------------- consumption

export interface ConsumeRequest {
  user_id: string;
  operation: Operation;
  seconds: number;
  idempotency_key: string;
  /** From an earlier 402; runs the operation once after a top-up. */
  resume_token?: string;
}

/** POST /v1/billing/consume */
export interface ConsumeResponse {
  user_id: string;
  operation: string;
  consumed_seconds: number;
  /** Which buckets paid, in the order they were drawn from. */
  taken: BucketDebit[];
  /** The balance right after this consumption. */
  totals: BalanceTotals;
  idempotency_key: string;
  /** True when this is the stored answer to an earlier request with the same key. */
  replayed: boolean;
}

export interface BucketDebit {
  source: BucketSource;
  seconds: number;
  expires_at: Timestamp | null;
}

export interface Suggestion {
  type: 'package' | 'upgrade';
  /** Package key (type "package"). */
  key?: string;
  /** Plan key (type "upgrade"). */
  plan?: string;
  minutes?: number;
}

export interface BreakdownSeconds {
  bonus_daily: number;
  paid: number;
}

/**
 * The 402 body, exactly the contract's InsufficientFundsError. The client throws it as the
 * InsufficientFundsError class (errors.ts), whose instances carry these fields.
 */
export interface InsufficientFundsErrorBody {
  error: 'INSUFFICIENT_AI_TIME';
  http_status: 402;
  balance_seconds: number;
  breakdown_seconds: BreakdownSeconds;
  suggestions: Suggestion[];
  catalog_version: string;
  /** Single use, bound to the user and operation, valid 1 hour (always sent; null if none was issued). */
  resume_token: string | null;
}

/** One operation of a batch preflight (the contract's name; proto OperationEstimate). */
export interface BatchOperationRequest {
  operation: Operation;
  estimate_seconds: number;
}

/** The body of POST /v1/billing/check-sufficient-batch, spelled as the contract sends it. */
export interface BatchCheckRequest {
  userId: string;
  operations: BatchOperationRequest[];
}

export interface BatchOperationResult {
  operation: string;
  ok: boolean;
  deficit_seconds: number;
  suggestions: Suggestion[];
}

/** The check-sufficient-batch answer: a bare JSON array, one result per operation, cumulative. */
export type BatchCheckResult = BatchOperationResult[];

// ---------------------------------------------------------------- accounts

export interface CreateAccountRequest {
  user_id: string;
  /** Defaults to free (a paid plan needs an admin key). */
  plan_key?: string;
}

/** POST /v1/billing/accounts (idempotent by user_id: created is false the second time). */
export interface CreateAccountResponse {
  user_id: string;
  plan_key: string;
  subscription_status: string;
  created_at: Timestamp;
  created: boolean;
  totals: BalanceTotals;
}

/**
 * A short-lived user key (CreateSessionKey, called by the app backend with its service key and
 * handed to the browser). The client needs key_id and secret; expires_at lets it fetch a new one.
 */
export interface CreateSessionKeyResponse {
  key_id: string;
  secret: string;
  scope: string;
  user_id: string;
  expires_at: Timestamp;
}

// ---------------------------------------------------------------- payments

/** The contract's PurchaseRequest (body of POST /v1/billing/packages/purchase). */
export interface PurchaseRequest {
  user_id: string;
  package_key: string;
  /** ISO 4217; defaults to USD; an unpriced currency falls back to USD. */
  currency?: string;
  /** The same key returns the same checkout session. */
  idempotency_key?: string;
}

/** The contract's PackagePurchaseRequest is PurchaseRequest. */
export type PackagePurchaseRequest = PurchaseRequest;

export interface PackagePurchaseResponse {
  /** Where the browser goes to pay (Stripe Checkout). */
  checkout_url: string;
  session_id: string;
  /** The currency charged and its price, resolved by the server from the catalog. */
  currency: string;
  unit_amount_cents: number;
  display_price: number;
  package_minutes: number;
  currency_fallback_from?: string;
  package_key: string;
}

/** The contract's other name for the purchase answer. */
export type PurchaseResponse = PackagePurchaseResponse;

export interface CreateSubscriptionCheckoutRequest {
  user_id: string;
  plan_key: string;
  currency?: string;
  idempotency_key?: string;
}

export interface SubscriptionCheckoutResponse {
  checkout_url: string;
  session_id: string;
  plan_key: string;
  currency: string;
  unit_amount_cents: number;
  display_price: number;
  /** Minutes credited each paid period. */
  plan_minutes: number;
  currency_fallback_from?: string;
}

export interface CancelSubscriptionRequest {
  user_id: string;
  idempotency_key: string;
}

export interface ChangeSubscriptionPlanRequest {
  user_id: string;
  plan_key: string;
  idempotency_key: string;
}

/** The account's subscription as the service knows it (cancel and change answer it). */
export interface SubscriptionState {
  user_id: string;
  plan_key: string;
  /** active, past_due, canceled, inactive (no paid plan), ... */
  subscription_status: string;
  cancel_at_period_end: boolean;
  pending_plan_key: string;
  current_period_start_at: Timestamp | null;
  current_period_end_at: Timestamp | null;
}

/** PUT /v1/billing/auto-topup/{user_id} (absolute: a repeat is the same, no idempotency key). */
export interface UpdateAutoTopupRequest {
  user_id: string;
  enabled: boolean;
  /** Required (1..2,678,400) when enabled. */
  threshold_seconds?: number;
  /** A package of the catalog; required when enabled. */
  package_key?: string;
  currency?: string;
}

/** GET and PUT /v1/billing/auto-topup/{user_id} */
export interface AutoTopupSettings {
  user_id: string;
  enabled: boolean;
  threshold_seconds: number;
  package_key: string;
  currency: string;
  pending: boolean;
  /** Consecutive failed attempts, and the last one's code (card_declined, requires_action, ...). */
  failures: number;
  last_failure: string;
  action_required: boolean;
}

export interface CreateAutoTopupSetupRequest {
  user_id: string;
}

/** A checkout page that saves a card for auto top-up (nothing is charged). */
export interface AutoTopupSetupResponse {
  checkout_url: string;
  session_id: string;
}

// ---------------------------------------------------------------- errors

/** Every error but the 402: `{"error", "http_status", "message", "field"?, "request_id"?}`. */
export interface ErrorBody {
  error: string;
  http_status: number;
  message: string;
  field?: string;
  request_id?: string | null;
}
