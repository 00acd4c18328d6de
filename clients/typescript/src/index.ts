export * from './types.js';
export { BillingApiError, InsufficientFundsError, isBillingApiError, isInsufficientFunds } from './errors.js';
export {
  BillingClient, parseRetryAfter, pathSegment,
  type AutoTopupUpdate, type BillingClientOptions, type ConsumeOptions, type CreateHoldOptions, type Credentials,
  type EventsPageOptions, type ExtendHoldOptions, type PurchaseOptions, type ResumeOptions, type ResumeOutcome,
  type QueryValue, type RetryOptions, type SignedMethod, type SignedRequestOptions, type SignedTextResponse,
  type SubscriptionCheckoutOptions,
} from './client.js';
export { bodyDigest, canonicalRequest, hmacSha256Hex, signatureHeaders, type SigningKey } from './signing.js';
export {
  MemoryStorage, RESUME_KEY_PREFIX, RESUME_TOKEN_TTL_MS, ResumeStore, type KeyValueStore, type ResumeEntry,
} from './storage.js';
export {
  StreamUnsupportedError, changesByItselfAt, watchBalanceStream, type BalanceWatch, type OpenStream,
  type WatchBalanceOptions,
} from './balance_watch.js';
export { SseParser } from './sse.js';
