/**
 * Compile-time checks of src/types.ts against the generated proto types (src/generated/): `npm test`
 * builds this file, so a failed check fails the build. Generation keeps the fields in step with
 * the protos; these hold what types.ts adds by hand:
 * - each public type has exactly its proto message's fields, but the contract's extras and omissions
 *   listed here (the 402 body's `error` / `http_status`, its missing `deficit_seconds`, `userId`);
 * - nothing the browser reads or sends is left `any` (a google.protobuf.Value not narrowed) or
 *   `| undefined` on a required field (a message field the server always sets, not narrowed).
 */
import type * as pub from '../src/types.js';
import type * as accounts from '../src/generated/billing/v1/accounts.js';
import type * as balance from '../src/generated/billing/v1/balance.js';
import type * as catalog from '../src/generated/billing/v1/catalog.js';
import type * as consumption from '../src/generated/billing/v1/consumption.js';
import type * as holds from '../src/generated/billing/v1/holds.js';
import type * as keys from '../src/generated/billing/v1/keys.js';
import type * as payments from '../src/generated/billing/v1/payments.js';
import type * as service from '../src/generated/billing/v1/billing_service.js';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Expect<T extends true> = T;
type IsAny<T> = 0 extends 1 & T ? true : false;
/** Declared required (not `?`, not an index signature such as Record<string, unknown>'s). */
type RequiredKeys<T> = { [K in keyof T]-?: string extends K ? never : object extends Pick<T, K> ? never : K }[keyof T];

/** The public type P has message M's fields, less `Omitted`, plus `Extra` (the contract's own). */
export type SameFields<P, M, Extra extends PropertyKey = never, Omitted extends keyof M = never> = Equal<
  keyof P,
  Exclude<keyof M, Omitted> | Extra
>;

/** No `any` anywhere in T, and no required property that admits undefined. */
export type Narrowed<T> =
  IsAny<T> extends true
    ? false
    : T extends readonly (infer E)[]
      ? Narrowed<E>
      : T extends object
        ? false extends
            | { [K in keyof T]-?: Narrowed<Exclude<T[K], undefined>> }[keyof T]
            | { [K in RequiredKeys<T>]: undefined extends T[K] ? false : true }[RequiredKeys<T>]
          ? false
          : true
        : true;

export type FieldsMatchTheProtos = [
  Expect<SameFields<pub.PricingCatalog, catalog.PricingCatalog>>,
  Expect<SameFields<pub.RolloverPolicy, catalog.RolloverPolicy>>,
  Expect<SameFields<pub.SubscriptionPlan, catalog.SubscriptionPlan>>,
  Expect<SameFields<pub.Advisor, catalog.Advisor>>,
  Expect<SameFields<pub.Package, catalog.Package>>,
  Expect<SameFields<pub.EnhancedBalance, balance.EnhancedBalance>>,
  Expect<SameFields<pub.BalanceUpdate, service.BalanceUpdate>>,
  Expect<SameFields<pub.BalanceTotals, balance.BalanceTotals>>,
  Expect<SameFields<pub.BalanceBuckets, balance.BalanceBuckets>>,
  Expect<SameFields<pub.DailyBucket, balance.DailyBucket>>,
  Expect<SameFields<pub.PaidBucket, balance.PaidBucket>>,
  Expect<SameFields<pub.BonusStatus, balance.BonusStatus>>,
  Expect<SameFields<pub.SubscriptionPeriod, balance.SubscriptionPeriod>>,
  Expect<SameFields<pub.AutoTopupState, balance.AutoTopupState>>,
  Expect<SameFields<pub.UsageAnalytics, balance.UsageAnalytics>>,
  Expect<SameFields<pub.DailyUsage, balance.DailyUsage>>,
  Expect<SameFields<pub.BillingEventHistory, balance.BillingEventHistory>>,
  Expect<SameFields<pub.BillingEvent, balance.BillingEvent>>,
  Expect<SameFields<pub.ConsumeRequest, consumption.ConsumeRequest>>,
  Expect<SameFields<pub.ConsumeResponse, consumption.ConsumeResponse>>,
  Expect<SameFields<pub.BucketDebit, consumption.BucketDebit>>,
  Expect<SameFields<pub.Suggestion, consumption.Suggestion>>,
  Expect<SameFields<pub.BreakdownSeconds, consumption.BreakdownSeconds>>,
  Expect<SameFields<pub.InsufficientFundsErrorBody, consumption.InsufficientAiTime, 'error' | 'http_status', 'deficit_seconds'>>,
  Expect<SameFields<pub.BatchOperationRequest, consumption.OperationEstimate>>,
  Expect<SameFields<pub.BatchCheckRequest, consumption.CheckSufficientBatchRequest, 'userId', 'user_id'>>,
  Expect<SameFields<pub.BatchOperationResult, consumption.BatchOperationResult>>,
  Expect<SameFields<pub.Hold, holds.Hold>>,
  Expect<SameFields<pub.CreateHoldRequest, holds.CreateHoldRequest>>,
  // The path carries hold_id: the bodies leave it out.
  Expect<SameFields<pub.ExtendHoldRequest, holds.ExtendHoldRequest, never, 'hold_id'>>,
  Expect<SameFields<pub.CommitHoldRequest, holds.CommitHoldRequest, never, 'hold_id'>>,
  Expect<SameFields<pub.ReleaseHoldRequest, holds.ReleaseHoldRequest, never, 'hold_id'>>,
  Expect<SameFields<pub.HoldResponse, holds.HoldResponse>>,
  Expect<SameFields<pub.ListHoldsResponse, holds.ListHoldsResponse>>,
  Expect<SameFields<pub.CreateAccountRequest, accounts.CreateAccountRequest>>,
  Expect<SameFields<pub.CreateAccountResponse, accounts.CreateAccountResponse>>,
  Expect<SameFields<pub.CreateSessionKeyResponse, keys.CreateSessionKeyResponse>>,
  Expect<SameFields<pub.PurchaseRequest, payments.PurchasePackageRequest>>,
  Expect<SameFields<pub.PackagePurchaseResponse, payments.PackagePurchaseResponse>>,
  Expect<SameFields<pub.CreateSubscriptionCheckoutRequest, payments.CreateSubscriptionCheckoutRequest>>,
  Expect<SameFields<pub.SubscriptionCheckoutResponse, payments.SubscriptionCheckoutResponse>>,
  Expect<SameFields<pub.CancelSubscriptionRequest, payments.CancelSubscriptionRequest>>,
  Expect<SameFields<pub.ChangeSubscriptionPlanRequest, payments.ChangeSubscriptionPlanRequest>>,
  Expect<SameFields<pub.SubscriptionState, payments.SubscriptionState>>,
  Expect<SameFields<pub.UpdateAutoTopupRequest, payments.UpdateAutoTopupRequest>>,
  Expect<SameFields<pub.AutoTopupSettings, payments.AutoTopupSettings>>,
  Expect<SameFields<pub.CreateAutoTopupSetupRequest, payments.CreateAutoTopupSetupRequest>>,
  Expect<SameFields<pub.AutoTopupSetupResponse, payments.AutoTopupSetupResponse>>,
];

/** The roots: every other wire type is reached from one of them. */
export type EverythingIsNarrowed = [
  Expect<Narrowed<pub.PricingCatalog>>,
  Expect<Narrowed<pub.BalanceUpdate>>,
  Expect<Narrowed<pub.UsageAnalytics>>,
  Expect<Narrowed<pub.BillingEventHistory>>,
  Expect<Narrowed<pub.ConsumeRequest>>,
  Expect<Narrowed<pub.ConsumeResponse>>,
  Expect<Narrowed<pub.InsufficientFundsErrorBody>>,
  Expect<Narrowed<pub.BatchCheckRequest>>,
  Expect<Narrowed<pub.BatchCheckResult>>,
  Expect<Narrowed<pub.CreateHoldRequest>>,
  Expect<Narrowed<pub.ExtendHoldRequest>>,
  Expect<Narrowed<pub.CommitHoldRequest>>,
  Expect<Narrowed<pub.ReleaseHoldRequest>>,
  Expect<Narrowed<pub.HoldResponse>>,
  Expect<Narrowed<pub.ListHoldsResponse>>,
  Expect<Narrowed<pub.CreateAccountRequest>>,
  Expect<Narrowed<pub.CreateAccountResponse>>,
  Expect<Narrowed<pub.CreateSessionKeyResponse>>,
  Expect<Narrowed<pub.PurchaseRequest>>,
  Expect<Narrowed<pub.PackagePurchaseResponse>>,
  Expect<Narrowed<pub.CreateSubscriptionCheckoutRequest>>,
  Expect<Narrowed<pub.SubscriptionCheckoutResponse>>,
  Expect<Narrowed<pub.CancelSubscriptionRequest>>,
  Expect<Narrowed<pub.ChangeSubscriptionPlanRequest>>,
  Expect<Narrowed<pub.SubscriptionState>>,
  Expect<Narrowed<pub.UpdateAutoTopupRequest>>,
  Expect<Narrowed<pub.AutoTopupSettings>>,
  Expect<Narrowed<pub.CreateAutoTopupSetupRequest>>,
  Expect<Narrowed<pub.AutoTopupSetupResponse>>,
  Expect<Narrowed<pub.ErrorBody>>,
];

/** The checks themselves see what they are for. */
export type TheChecksBite = [
  Expect<Equal<Narrowed<balance.PaidBucket>, false>>, // expires_at: any
  Expect<Equal<Narrowed<catalog.SubscriptionPlan>, false>>, // advisor: Advisor | undefined
  Expect<Equal<SameFields<pub.InsufficientFundsErrorBody, consumption.InsufficientAiTime>, false>>,
  Expect<Equal<SameFields<Omit<pub.EnhancedBalance, 'auto_topup'>, balance.EnhancedBalance>, false>>,
];
