import { type BalanceWatch, type OpenStream, type WatchBalanceOptions, watchBalanceStream } from './balance_watch.js';
import { BillingApiError, InsufficientFundsError, isInsufficientFundsBody } from './errors.js';
import { signatureHeaders, type SigningKey } from './signing.js';
import {
  checkNotLocalStorage, defaultStorage, type KeyValueStore, type ResumeEntry, ResumeStore,
} from './storage.js';
import type {
  AutoTopupSettings, AutoTopupSetupResponse, BatchCheckResult, BatchOperationRequest, BillingEventHistory,
  CommitHoldRequest, ConsumeResponse, CreateAccountResponse, CreateHoldRequest, EnhancedBalance, ExtendHoldRequest,
  HoldResponse, ListHoldsResponse, Operation, PackagePurchaseResponse, PricingCatalog, ReleaseHoldRequest,
  SubscriptionCheckoutResponse, SubscriptionState, UsageAnalytics,
} from './types.js';

/** A signing key: a short-lived user key from the app backend (CreateSessionKey), or any key. */
export type Credentials = SigningKey & { user_id?: string; expires_at?: string };

export interface RetryOptions {
  /** Tries in all, the first included (default 4). */
  maxAttempts?: number;
  /** First backoff when the server gives no Retry-After (default 250 ms), doubled each time. */
  baseDelayMs?: number;
  /** Cap of one backoff (default 4 s). */
  maxDelayMs?: number;
  /** A Retry-After longer than this is not waited for: the error is thrown (default 30 s). */
  maxRetryAfterMs?: number;
}

export interface BillingClientOptions {
  /** Origin (and optional path prefix) of the REST API, e.g. "https://billing.example.com";
   * "" or omitted: the page's own origin. */
  baseUrl?: string;
  /** The key requests are signed with, or a function that fetches one from the app backend
   * (called lazily, again shortly before expires_at, and once after a 401). */
  credentials?: Credentials | (() => Promise<Credentials>);
  /** The user the calls act for when a method is not given one (default: the key's user_id). */
  userId?: string;
  /** Where blocked operations and resume tokens are kept (default sessionStorage, else memory;
   * localStorage is refused). */
  storage?: KeyValueStore;
  retry?: RetryOptions;
  fetch?: typeof fetch;
  /** Unix milliseconds (tests). */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  randomUUID?: () => string;
}

export interface ConsumeOptions {
  userId?: string;
  /** Default: a new UUID. Reused on every retry of this call (and by its resume after a 402). */
  idempotencyKey?: string;
  resumeToken?: string;
  /** Kept (as JSON) with the blocked operation on a 402 and given back by resumeAfterPurchase. */
  context?: unknown;
}

export interface CreateHoldOptions {
  userId?: string;
  /** The hold's id, unique per user, and its idempotency key. Default: a new UUID, reused on every
   * retry of this call (a retry answers the same hold). Keep it: extend, commit and release name it. */
  holdId?: string;
  /** Default 900 (5 to 86,400): an open hold past it settles by itself at what was committed. */
  ttlSeconds?: number;
  /** From an earlier 402 (of a consume or a hold): places the hold once after a top-up. */
  resumeToken?: string;
}

export interface ExtendHoldOptions {
  userId?: string;
  /** Seconds to hold more (all or nothing; a 402 if short). */
  seconds?: number;
  /** Moves the expiry to this many seconds from now (5 to 86,400). */
  ttlSeconds?: number;
  /** Default: a new UUID, reused on every retry of this call, so a retry holds nothing more. */
  idempotencyKey?: string;
}

export interface EventsPageOptions {
  userId?: string;
  /** Default 50, at most 200. */
  limit?: number;
  pageToken?: string;
}

export interface PurchaseOptions {
  package_key: string;
  currency?: string;
  user_id?: string;
  idempotency_key?: string;
}

export interface SubscriptionCheckoutOptions {
  plan_key: string;
  currency?: string;
  user_id?: string;
  idempotency_key?: string;
}

export interface AutoTopupUpdate {
  enabled: boolean;
  threshold_seconds?: number;
  package_key?: string;
  currency?: string;
  user_id?: string;
}

export type ResumeOutcome =
  | { status: 'resumed'; entry: ResumeEntry; response: ConsumeResponse }
  /** Still short (the credit may not have arrived, or was too small): the entry is kept again. */
  | { status: 'insufficient'; entry: ResumeEntry; error: InsufficientFundsError }
  /** The token was used or unknown, or another error: the entry is dropped. (An expired token counts
   * as none: the consume runs if the balance covers it, else a 402 with a new token, "insufficient".) */
  | { status: 'failed'; entry: ResumeEntry; error: unknown };

export interface ResumeOptions {
  /** The page's URL (default location.href). Nothing happens unless it has purchased=true. */
  url?: string;
  /** Replaces the address bar's URL without the parameter (default history.replaceState). */
  replaceUrl?: (url: string) => void;
  /** How long a resume that is still short keeps trying while the payment's credit arrives
   * (Checkout's redirect can overtake its webhook). Default 15 s; 0: one try. */
  waitForCreditMs?: number;
}

/** A query parameter: a value, or a repeated parameter (`types=a&types=b`); undefined ones are left out. */
export type QueryValue = string | number | boolean | readonly (string | number)[] | undefined;

export type SignedMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

export interface SignedRequestOptions {
  query?: Record<string, QueryValue>;
  /** Sent as JSON (the same bytes on every retry). */
  body?: unknown;
  headers?: Record<string, string>;
}

/** A signed call's answer read as text (e.g. a CSV export), with its content type. */
export interface SignedTextResponse {
  text: string;
  contentType: string;
}

interface RequestSpec {
  method: SignedMethod;
  path: string;
  query?: Record<string, QueryValue>;
  body?: unknown;
  signed?: boolean;
  headers?: Record<string, string>;
  /** Statuses answered without a body that are not errors (the catalog's 304). */
  accept?: number[];
  /** A 2xx body as text, not parsed as JSON. */
  asText?: boolean;
}

interface RawResponse {
  status: number;
  headers: Headers;
  body: unknown;
}

const CONTENT_TYPE = 'application/json';
const CREDENTIAL_REFRESH_MARGIN_MS = 60_000;

/**
 * The billing API for a browser (or any platform with fetch and WebCrypto).
 *
 * Every call but the catalog is signed; writes carry an idempotency key generated per operation and
 * reused on each retry; 503 and 429 (and network failures) are retried with backoff, honoring
 * Retry-After; a 402 throws InsufficientFundsError and keeps the blocked consume with its resume
 * token in sessionStorage, for resumeAfterPurchase() when the user is back with ?purchased=true.
 */
export class BillingClient {
  private readonly baseUrl: string;
  private readonly fetchImpl: typeof fetch;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly sleepGiven: boolean; // a test's sleep: the live balance waits with it too
  private readonly randomUUID: () => string;
  private readonly retry: Required<RetryOptions>;
  private readonly credentialSource: BillingClientOptions['credentials'];
  private readonly defaultUserId: string | undefined;
  private credentials: Credentials | undefined;
  private pendingCredentials: Promise<Credentials> | undefined;
  private readonly catalogs = new Map<string, { etag: string; catalog: PricingCatalog }>();
  private resuming: Promise<ResumeOutcome[]> | undefined;
  readonly resumeStore: ResumeStore;

  constructor(options: BillingClientOptions = {}) {
    this.baseUrl = (options.baseUrl ?? '').replace(/\/+$/, '');
    const platformFetch = options.fetch ?? globalThis.fetch;
    if (!platformFetch) throw new Error('BillingClient needs fetch');
    this.fetchImpl = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.now = options.now ?? (() => Date.now());
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.sleepGiven = options.sleep !== undefined;
    this.randomUUID = options.randomUUID ?? (() => globalThis.crypto.randomUUID());
    this.retry = {
      maxAttempts: Math.max(1, options.retry?.maxAttempts ?? 4),
      baseDelayMs: options.retry?.baseDelayMs ?? 250,
      maxDelayMs: options.retry?.maxDelayMs ?? 4_000,
      maxRetryAfterMs: options.retry?.maxRetryAfterMs ?? 30_000,
    };
    this.credentialSource = options.credentials;
    if (options.credentials && typeof options.credentials !== 'function') this.credentials = options.credentials;
    this.defaultUserId = options.userId;
    const storage = options.storage ?? defaultStorage();
    checkNotLocalStorage(storage);
    this.resumeStore = new ResumeStore(storage);
  }

  // ------------------------------------------------------------ catalog (public, cached)

  /**
   * The pricing catalog in one currency (GET /v1/billing/catalog, unsigned). Kept per currency
   * with its ETag; later calls send If-None-Match and a 304 returns the kept copy. A currency
   * without prices comes back in USD with `currency_fallback_from` set.
   */
  async getPricingCatalog(currency: string = 'USD'): Promise<PricingCatalog> {
    const cacheKey = currency.toUpperCase();
    const cached = this.catalogs.get(cacheKey);
    const response = await this.send({
      method: 'GET',
      path: '/v1/billing/catalog',
      query: { currency },
      signed: false,
      ...(cached ? { headers: { 'If-None-Match': cached.etag } } : {}),
      accept: [304],
    });
    if (response.status === 304) {
      if (cached) return cached.catalog;
      this.catalogs.delete(cacheKey);
      return this.getPricingCatalog(currency); // nothing kept to reuse: ask again without the ETag
    }
    const catalog = response.body as PricingCatalog;
    const etag = response.headers.get('etag');
    if (etag) this.catalogs.set(cacheKey, { etag, catalog });
    else this.catalogs.delete(cacheKey);
    return catalog;
  }

  /** The catalog kept for a currency, if any (no request). */
  cachedCatalog(currency: string = 'USD'): PricingCatalog | undefined {
    return this.catalogs.get(currency.toUpperCase())?.catalog;
  }

  /** True when a balance names another catalog version than the one kept for the currency:
   * prices changed, show the refresh banner (or just call getPricingCatalog again). */
  isCatalogOutdated(catalogVersion: string, currency: string = 'USD'): boolean {
    const kept = this.cachedCatalog(currency);
    return kept !== undefined && kept.version !== catalogVersion;
  }

  // ------------------------------------------------------------ reads

  /** GET /v1/billing/balance/{user_id} */
  async getEnhancedBalance(userId?: string): Promise<EnhancedBalance> {
    const user = await this.userOf(userId);
    return (await this.send({ method: 'GET', path: `/v1/billing/balance/${pathSegment(user)}` })).body as EnhancedBalance;
  }

  /**
   * Live balance: GET /v1/billing/balance/{user_id}/stream (Server-Sent Events, read with fetch:
   * EventSource cannot sign). onUpdate gets the balance at once, then after every change; the
   * watch reconnects by itself (backoff, since_version) until stop(). `finished` rejects when
   * streaming cannot work (no ReadableStream, 4xx): poll getEnhancedBalance instead.
   */
  watchBalance(
    userId: string | undefined, onUpdate: (balance: EnhancedBalance, version: string) => void,
    options: WatchBalanceOptions = {},
  ): BalanceWatch {
    const open: OpenStream = async (sinceVersion, signal) => {
      const user = await this.userOf(userId);
      const url = this.url({
        method: 'GET', path: `/v1/billing/balance/${pathSegment(user)}/stream`, query: { since_version: sinceVersion },
      });
      for (let refreshedKey = false; ; refreshedKey = true) {
        const key = await this.signingKey(refreshedKey);
        const headers = {
          Accept: 'text/event-stream',
          ...await signatureHeaders(key, 'GET', url.pathname + url.search, undefined, this.now() / 1000),
        };
        const response = await this.fetchImpl(url.toString(), { method: 'GET', headers, signal });
        if (response.ok) return response;
        const parsed = await readJson(response);
        if (response.status === 401 && typeof this.credentialSource === 'function' && !refreshedKey) continue;
        const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'), this.now());
        throw BillingApiError.fromBody(response.status, parsed, response.headers,
          retryAfterMs === undefined ? undefined : retryAfterMs / 1000);
      }
    };
    return watchBalanceStream(open, onUpdate, options, this.sleepGiven ? (ms) => this.sleep(ms) : undefined);
  }

  /** GET /v1/billing/usage/{user_id}?period=day|month (the current UTC day or month). */
  async getUsageAnalytics(userId?: string, period: 'day' | 'month' = 'month'): Promise<UsageAnalytics> {
    const user = await this.userOf(userId);
    return (await this.send({ method: 'GET', path: `/v1/billing/usage/${pathSegment(user)}`, query: { period } }))
      .body as UsageAnalytics;
  }

  /**
   * One page of the ledger, newest first (GET /v1/billing/events/{user_id}?limit=N[&page_token=T]).
   * `getBillingEvents(userId, 50)` as in the contract, or with options; pass the answer's
   * next_page_token as pageToken for the next (older) page; "" means there is none.
   */
  async getBillingEvents(userId?: string, limitOrOptions: number | EventsPageOptions = 50): Promise<BillingEventHistory> {
    const options = typeof limitOrOptions === 'number' ? { limit: limitOrOptions } : limitOrOptions;
    const user = await this.userOf(options.userId ?? userId);
    const query: Record<string, string | number | undefined> = { limit: options.limit ?? 50 };
    if (options.pageToken) query['page_token'] = options.pageToken;
    return (await this.send({ method: 'GET', path: `/v1/billing/events/${pathSegment(user)}`, query }))
      .body as BillingEventHistory;
  }

  /** Every page of the ledger in turn (stops when the server says there are no more). */
  async *iterateBillingEvents(userId?: string, options: Omit<EventsPageOptions, 'pageToken'> = {}): AsyncGenerator<BillingEventHistory> {
    let pageToken: string | undefined;
    do {
      const page = await this.getBillingEvents(userId, { ...options, ...(pageToken ? { pageToken } : {}) });
      yield page;
      pageToken = page.next_page_token || undefined;
    } while (pageToken);
  }

  /**
   * Batch preflight (POST /v1/billing/check-sufficient-batch): cumulative in the listed order,
   * read-only; one result per operation, with suggestions where it falls short.
   */
  async checkSufficientBatch(userId: string | undefined, operations: BatchOperationRequest[]): Promise<BatchCheckResult> {
    const user = await this.userOf(userId);
    return (await this.send({
      method: 'POST', path: '/v1/billing/check-sufficient-batch', body: { userId: user, operations },
    })).body as BatchCheckResult;
  }

  /** The contract's name for checkSufficientBatch. */
  checkBatchOperations(userId: string | undefined, operations: BatchOperationRequest[]): Promise<BatchCheckResult> {
    return this.checkSufficientBatch(userId, operations);
  }

  // ------------------------------------------------------------ writes

  /** POST /v1/billing/accounts: idempotent by user (the welcome bonus is granted once). */
  async createAccount(userId?: string): Promise<CreateAccountResponse> {
    return (await this.send({ method: 'POST', path: '/v1/billing/accounts', body: { user_id: await this.userOf(userId) } }))
      .body as CreateAccountResponse;
  }

  /**
   * POST /v1/billing/consume. On 402 throws InsufficientFundsError and keeps the operation with its
   * resume token (sessionStorage, keyed by user and operation) for resumeAfterPurchase().
   */
  async consume(operation: Operation, seconds: number, options: ConsumeOptions = {}): Promise<ConsumeResponse> {
    return this.consumeOnce(operation, seconds, options, true);
  }

  private async consumeOnce(
    operation: Operation | string, seconds: number, options: ConsumeOptions, keepRefusal: boolean,
  ): Promise<ConsumeResponse> {
    const user = await this.userOf(options.userId);
    const idempotencyKey = options.idempotencyKey ?? this.randomUUID();
    const body: Record<string, unknown> = { user_id: user, operation, seconds, idempotency_key: idempotencyKey };
    if (options.resumeToken) body['resume_token'] = options.resumeToken;
    try {
      return (await this.send({ method: 'POST', path: '/v1/billing/consume', body })).body as ConsumeResponse;
    } catch (error) {
      if (error instanceof InsufficientFundsError) {
        const refusal = new InsufficientFundsError(error.toJSON(), { operation, requestedSeconds: seconds });
        if (keepRefusal && refusal.resume_token) {
          this.resumeStore.save({
            user_id: user, operation, seconds, idempotency_key: idempotencyKey, resume_token: refusal.resume_token,
            stored_at: this.now(), ...(options.context !== undefined ? { context: options.context } : {}),
          });
        }
        throw refusal;
      }
      throw error;
    }
  }

  // ------------------------------------------------------------ holds (for work of unknown length)

  /**
   * POST /v1/billing/holds: reserves `seconds` (all or nothing) before work whose length is not
   * known yet. A short balance throws InsufficientFundsError (the same 402 as consume's; nothing is
   * held, and nothing is kept for resumeAfterPurchase: pass its resume_token as resumeToken to
   * place the hold after a top-up). Then commitHold what the work used, and settle it.
   */
  async createHold(operation: Operation, seconds: number, options: CreateHoldOptions = {}): Promise<HoldResponse> {
    const body: CreateHoldRequest = {
      user_id: await this.userOf(options.userId),
      hold_id: options.holdId ?? this.randomUUID(),
      operation,
      seconds,
    };
    if (options.ttlSeconds !== undefined) body.ttl_seconds = options.ttlSeconds;
    if (options.resumeToken) body.resume_token = options.resumeToken;
    try {
      return (await this.send({ method: 'POST', path: '/v1/billing/holds', body })).body as HoldResponse;
    } catch (error) {
      if (error instanceof InsufficientFundsError) {
        throw new InsufficientFundsError(error.toJSON(), { operation, requestedSeconds: seconds });
      }
      throw error;
    }
  }

  /** POST /v1/billing/holds/{hold_id}/extend: holds more and/or moves the expiry (402 if short). */
  async extendHold(holdId: string, options: ExtendHoldOptions): Promise<HoldResponse> {
    const body: ExtendHoldRequest = {
      user_id: await this.userOf(options.userId),
      idempotency_key: options.idempotencyKey ?? this.randomUUID(),
    };
    if (options.seconds !== undefined) body.seconds = options.seconds;
    if (options.ttlSeconds !== undefined) body.ttl_seconds = options.ttlSeconds;
    try {
      return (await this.send({ method: 'POST', path: `/v1/billing/holds/${pathSegment(holdId)}/extend`, body }))
        .body as HoldResponse;
    } catch (error) {
      if (error instanceof InsufficientFundsError && options.seconds !== undefined) {
        throw new InsufficientFundsError(error.toJSON(), { requestedSeconds: options.seconds });
      }
      throw error;
    }
  }

  /**
   * POST /v1/billing/holds/{hold_id}/commit: `usedSeconds` is cumulative (a retry takes nothing
   * more; less than before is 400, above what is held 400 HOLD_EXCEEDED: extend first). `final`
   * settles: the rest goes back to the buckets it came from.
   */
  async commitHold(holdId: string, usedSeconds: number, options: { final?: boolean; userId?: string } = {}): Promise<HoldResponse> {
    const body: CommitHoldRequest = { user_id: await this.userOf(options.userId), used_seconds: usedSeconds };
    if (options.final) body.final = true;
    return (await this.send({ method: 'POST', path: `/v1/billing/holds/${pathSegment(holdId)}/commit`, body }))
      .body as HoldResponse;
  }

  /** POST /v1/billing/holds/{hold_id}/release: settles at what was committed (again: the same answer). */
  async releaseHold(holdId: string, userId?: string): Promise<HoldResponse> {
    const body: ReleaseHoldRequest = { user_id: await this.userOf(userId) };
    return (await this.send({ method: 'POST', path: `/v1/billing/holds/${pathSegment(holdId)}/release`, body }))
      .body as HoldResponse;
  }

  /** GET /v1/billing/holds?user_id=U: the open holds, oldest first, and the totals. */
  async listHolds(userId?: string): Promise<ListHoldsResponse> {
    const user = await this.userOf(userId);
    return (await this.send({ method: 'GET', path: '/v1/billing/holds', query: { user_id: user } })).body as ListHoldsResponse;
  }

  /**
   * POST /v1/billing/packages/purchase: a Checkout session priced by the server; send the browser
   * to checkout_url. Accepts the package key alone, as in the contract's first example.
   */
  async purchasePackage(request: string | PurchaseOptions): Promise<PackagePurchaseResponse> {
    const options = typeof request === 'string' ? { package_key: request } : request;
    const body = {
      user_id: await this.userOf(options.user_id),
      package_key: options.package_key,
      ...(options.currency ? { currency: options.currency } : {}),
      idempotency_key: options.idempotency_key ?? this.randomUUID(),
    };
    return (await this.send({ method: 'POST', path: '/v1/billing/packages/purchase', body })).body as PackagePurchaseResponse;
  }

  /** POST /v1/billing/subscriptions/checkout: Checkout for a paid plan. */
  async subscriptionCheckout(request: string | SubscriptionCheckoutOptions): Promise<SubscriptionCheckoutResponse> {
    const options = typeof request === 'string' ? { plan_key: request } : request;
    const body = {
      user_id: await this.userOf(options.user_id),
      plan_key: options.plan_key,
      ...(options.currency ? { currency: options.currency } : {}),
      idempotency_key: options.idempotency_key ?? this.randomUUID(),
    };
    return (await this.send({ method: 'POST', path: '/v1/billing/subscriptions/checkout', body }))
      .body as SubscriptionCheckoutResponse;
  }

  /** POST /v1/billing/subscriptions/cancel: at the end of the current period. */
  async cancelSubscription(options: { user_id?: string; idempotency_key?: string } = {}): Promise<SubscriptionState> {
    const body = { user_id: await this.userOf(options.user_id), idempotency_key: options.idempotency_key ?? this.randomUUID() };
    return (await this.send({ method: 'POST', path: '/v1/billing/subscriptions/cancel', body })).body as SubscriptionState;
  }

  /** POST /v1/billing/subscriptions/change: up now (the difference invoiced), down at period end. */
  async changePlan(request: string | { plan_key: string; user_id?: string; idempotency_key?: string }): Promise<SubscriptionState> {
    const options = typeof request === 'string' ? { plan_key: request } : request;
    const body = {
      user_id: await this.userOf(options.user_id),
      plan_key: options.plan_key,
      idempotency_key: options.idempotency_key ?? this.randomUUID(),
    };
    return (await this.send({ method: 'POST', path: '/v1/billing/subscriptions/change', body })).body as SubscriptionState;
  }

  /** GET /v1/billing/auto-topup/{user_id} */
  async getAutoTopup(userId?: string): Promise<AutoTopupSettings> {
    const user = await this.userOf(userId);
    return (await this.send({ method: 'GET', path: `/v1/billing/auto-topup/${pathSegment(user)}` })).body as AutoTopupSettings;
  }

  /** PUT /v1/billing/auto-topup/{user_id}: absolute (a repeat is the same). Enabling needs a saved
   * card (setupAutoTopup), else 409 PAYMENT_METHOD_REQUIRED. */
  async setAutoTopup(settings: AutoTopupUpdate): Promise<AutoTopupSettings> {
    const { user_id: userId, ...body } = settings;
    const user = await this.userOf(userId);
    return (await this.send({ method: 'PUT', path: `/v1/billing/auto-topup/${pathSegment(user)}`, body }))
      .body as AutoTopupSettings;
  }

  /** POST /v1/billing/auto-topup/setup: a Checkout page that saves a card (nothing charged). */
  async setupAutoTopup(userId?: string): Promise<AutoTopupSetupResponse> {
    return (await this.send({ method: 'POST', path: '/v1/billing/auto-topup/setup', body: { user_id: await this.userOf(userId) } }))
      .body as AutoTopupSetupResponse;
  }

  // ------------------------------------------------------------ the resume flow

  /** Blocked operations waiting for a purchase (this tab, this hour). */
  pendingResumes(): ResumeEntry[] {
    return this.resumeStore.list(this.now());
  }

  /** Forget a blocked operation (the user dismissed it). */
  discardResume(operation: string, userId?: string): void {
    this.resumeStore.remove(this.knownUser(userId), operation);
  }

  /**
   * After Checkout sends the user back with `?purchased=true`: removes the parameter from the
   * address bar, then runs each kept blocked operation once with its resume token and its own
   * idempotency key (so a second run, in another tab or after a reload, can never charge twice),
   * and forgets it. Without the parameter it does nothing. A resume still short while the
   * payment's credit is on its way is tried again for up to waitForCreditMs, then kept for a
   * manual retry (outcome "insufficient"). Concurrent calls share one run.
   */
  resumeAfterPurchase(options: ResumeOptions = {}): Promise<ResumeOutcome[]> {
    const href = options.url ?? (globalThis as { location?: { href: string } }).location?.href;
    if (!href) return Promise.resolve([]);
    const url = new URL(href);
    if (url.searchParams.get('purchased') !== 'true') return this.resuming ?? Promise.resolve([]);
    url.searchParams.delete('purchased');
    const replace = options.replaceUrl ?? replaceAddressBar;
    replace(url.toString());
    if (!this.resuming) {
      // Taken out of storage before the first await: a concurrent or later call finds nothing.
      const entries = this.resumeStore.list(this.now());
      for (const entry of entries) this.resumeStore.remove(entry.user_id, entry.operation);
      this.resuming = this.resumeAll(entries, options.waitForCreditMs ?? 15_000).finally(() => {
        this.resuming = undefined;
      });
    }
    return this.resuming;
  }

  /** Runs one kept operation now (a "try again" button): the same as the automatic resume. */
  async resumeNow(operation: string, userId?: string, waitForCreditMs = 0): Promise<ResumeOutcome | undefined> {
    const entry = this.resumeStore.get(await this.userOf(userId), operation);
    if (!entry) return undefined;
    this.resumeStore.remove(entry.user_id, entry.operation);
    return this.resumeOne(entry, waitForCreditMs);
  }

  private async resumeAll(entries: ResumeEntry[], waitForCreditMs: number): Promise<ResumeOutcome[]> {
    const outcomes: ResumeOutcome[] = [];
    for (const entry of entries) outcomes.push(await this.resumeOne(entry, waitForCreditMs));
    return outcomes;
  }

  private async resumeOne(entry: ResumeEntry, waitForCreditMs: number): Promise<ResumeOutcome> {
    const deadline = this.now() + waitForCreditMs;
    let delay = 500;
    for (;;) {
      try {
        const response = await this.consumeOnce(entry.operation, entry.seconds, {
          userId: entry.user_id, idempotencyKey: entry.idempotency_key, resumeToken: entry.resume_token,
        }, false);
        return { status: 'resumed', entry, response };
      } catch (error) {
        if (!(error instanceof InsufficientFundsError)) return { status: 'failed', entry, error };
        if (this.now() + delay > deadline) {
          // The token stays valid after a 402: keep the operation for a later purchase or a retry.
          const kept = { ...entry, resume_token: error.resume_token || entry.resume_token };
          this.resumeStore.save(kept);
          return { status: 'insufficient', entry: kept, error };
        }
        await this.sleep(delay);
        delay = Math.min(delay * 2, 4_000);
      }
    }
  }

  // ------------------------------------------------------------ any signed call

  /**
   * Any REST call of the API, signed with the client's key, with the retries and typed errors of
   * every other method: for paths this client has no method for, e.g. the admin API
   * (/v1/billing/admin/..., an admin key, the internal listener). `path` is the path without its
   * query (encode path variables with pathSegment); `query` values are encoded here. Resolves with
   * the parsed JSON body (undefined when empty); throws BillingApiError (InsufficientFundsError on a
   * 402) as the typed methods do. A write carrying an idempotency key is safe to retry; one
   * without is retried only on statuses that say it was not processed (429, 502, 503, 504).
   */
  async signedRequest<T = unknown>(method: SignedMethod, path: string, options: SignedRequestOptions = {}): Promise<T> {
    return (await this.send(this.signedSpec(method, path, options))).body as T;
  }

  /** signedRequest, the 2xx answer read as text (a CSV export) rather than JSON. */
  async signedRequestText(method: SignedMethod, path: string, options: SignedRequestOptions = {}): Promise<SignedTextResponse> {
    const response = await this.send({ ...this.signedSpec(method, path, options), asText: true });
    return { text: typeof response.body === 'string' ? response.body : '', contentType: response.headers.get('content-type') ?? '' };
  }

  private signedSpec(method: SignedMethod, path: string, options: SignedRequestOptions): RequestSpec {
    if (!path.startsWith('/') || path.includes('?') || path.includes('#')) {
      throw new Error(`BillingClient: path must start with / and carry no query (pass options.query), got ${JSON.stringify(path)}`);
    }
    return {
      method, path,
      ...(options.query ? { query: options.query } : {}),
      ...(options.body !== undefined ? { body: options.body } : {}),
      ...(options.headers ? { headers: options.headers } : {}),
    };
  }

  // ------------------------------------------------------------ transport

  /** The user a call acts for: given, else the client's, else the session key's (fetched if need be). */
  private async userOf(userId: string | undefined): Promise<string> {
    const known = userId ?? this.defaultUserId ?? this.credentials?.user_id;
    if (known) return known;
    if (typeof this.credentialSource === 'function') {
      const key = await this.signingKey();
      if (key.user_id) return key.user_id;
    }
    return this.knownUser(undefined);
  }

  private knownUser(userId: string | undefined): string {
    const user = userId ?? this.defaultUserId ?? this.credentials?.user_id;
    if (!user) throw new Error('BillingClient: no user_id (pass one, or construct the client with userId or a session key)');
    return user;
  }

  private async signingKey(forceRefresh = false): Promise<Credentials> {
    const source = this.credentialSource;
    if (!source) throw new Error('BillingClient: this call is signed; construct the client with credentials');
    if (typeof source !== 'function') return source;
    const current = this.credentials;
    const fresh = current && !forceRefresh && !(current.expires_at &&
      Date.parse(current.expires_at) - CREDENTIAL_REFRESH_MARGIN_MS <= this.now());
    if (fresh) return current;
    if (!this.pendingCredentials) {
      this.pendingCredentials = source().then((key) => {
        this.credentials = key;
        return key;
      }).finally(() => {
        this.pendingCredentials = undefined;
      });
    }
    return this.pendingCredentials;
  }

  private url(spec: RequestSpec): URL {
    const base = this.baseUrl || (globalThis as { location?: { origin: string } }).location?.origin;
    if (!base) throw new Error('BillingClient: baseUrl is required outside a browser page');
    let query = '';
    for (const [name, value] of Object.entries(spec.query ?? {})) {
      if (value === undefined) continue;
      for (const one of Array.isArray(value) ? value : [value]) {
        query += `${query ? '&' : '?'}${encodeURIComponent(name)}=${queryValue(String(one))}`;
      }
    }
    return new URL(`${base}${spec.path}${query}`);
  }

  /** One call with its retries; resolves with 2xx (or an accepted status), throws typed errors. */
  private async send(spec: RequestSpec): Promise<RawResponse> {
    const url = this.url(spec);
    const pathAndQuery = url.pathname + url.search; // what the request line will carry
    const body = spec.body === undefined ? undefined : JSON.stringify(spec.body); // the same bytes every try
    let refreshedKey = false;
    for (let attempt = 1; ; attempt++) {
      const headers: Record<string, string> = { Accept: CONTENT_TYPE, ...spec.headers };
      if (body !== undefined) headers['Content-Type'] = CONTENT_TYPE;
      if (spec.signed !== false) {
        const key = await this.signingKey();
        Object.assign(headers, await signatureHeaders(key, spec.method, pathAndQuery, body, this.now() / 1000));
      }
      let response: Response;
      try {
        response = await this.fetchImpl(url.toString(), { method: spec.method, headers, ...(body !== undefined ? { body } : {}) });
      } catch (cause) {
        if (attempt < this.retry.maxAttempts) {
          await this.sleep(this.backoff(attempt));
          continue;
        }
        throw new BillingApiError({ code: 'NETWORK_ERROR', status: 0, message: `request failed: ${String(cause)}`, cause });
      }
      const status = response.status;
      if (spec.accept?.includes(status)) return { status, headers: response.headers, body: undefined };
      if (spec.asText && status >= 200 && status < 300) return { status, headers: response.headers, body: await response.text() };
      const parsed = await readJson(response);
      if (status >= 200 && status < 300) return { status, headers: response.headers, body: parsed };
      if (status === 402 && isInsufficientFundsBody(parsed)) throw new InsufficientFundsError(parsed);
      const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'), this.now());
      if (status === 401 && typeof this.credentialSource === 'function' && !refreshedKey) {
        refreshedKey = true; // an expired or rotated session key: fetch a new one, once
        await this.signingKey(true);
        attempt--;
        continue;
      }
      if (isRetryable(status) && attempt < this.retry.maxAttempts &&
          (retryAfterMs === undefined || retryAfterMs <= this.retry.maxRetryAfterMs)) {
        await this.sleep(retryAfterMs ?? this.backoff(attempt));
        continue;
      }
      throw BillingApiError.fromBody(status, parsed, response.headers,
        retryAfterMs === undefined ? undefined : retryAfterMs / 1000);
    }
  }

  /** Exponential, with jitter in [half, whole], capped. */
  private backoff(attempt: number): number {
    const ceiling = Math.min(this.retry.maxDelayMs, this.retry.baseDelayMs * 2 ** (attempt - 1));
    return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
  }
}

function isRetryable(status: number): boolean {
  return status === 503 || status === 429 || status === 502 || status === 504;
}

/** Retry-After: delta seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, nowMs: number): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowMs);
}

async function readJson(response: Response): Promise<unknown> {
  const text = await response.text();
  if (!text) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/**
 * A user id as a path segment. The transcoder keeps RFC 6570 reserved characters percent-encoded
 * in path variables (so `%3A` would reach the server as three characters), while the signature
 * check decodes them: ':' and '@', which user ids may contain, go unencoded (both are legal in a
 * path segment); everything else is percent-encoded.
 */
export function pathSegment(value: string): string {
  return encodeURIComponent(value).replace(/%3A/gi, ':').replace(/%40/gi, '@');
}

function queryValue(value: string): string {
  return encodeURIComponent(value);
}

function replaceAddressBar(url: string): void {
  const history = (globalThis as { history?: History }).history;
  history?.replaceState(history.state, '', url);
}
