/**
 * `@billing/client/admin`: the REST JSON types of the admin API (operator console, outbound webhooks),
 * generated from protos/ (ts-proto, clients/typescript/src/generated). Types only: call the paths with
 * BillingClient.signedRequest and an admin key, on the internal listener.
 */
export type * from './generated/billing/v1/operator.js';
export type * from './generated/billing/v1/webhooks.js';
export type {
  AutoTopupState, BalanceBuckets, BalanceTotals, BonusStatus, DailyBucket, EnhancedBalance, PaidBucket, SubscriptionPeriod,
} from './generated/billing/v1/balance.js';
export type { Hold } from './generated/billing/v1/holds.js';
