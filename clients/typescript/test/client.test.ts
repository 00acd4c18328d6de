import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  BillingApiError, BillingClient, type BillingEventHistory, type EnhancedBalance, InsufficientFundsError,
  type PricingCatalog, parseRetryAfter,
} from '../src/index.js';
import { FakeServer, RECORDED_USER, body, fixture, makeClient } from './helpers.js';

const USER = RECORDED_USER;

function sentJson(server: FakeServer, index: number): Record<string, unknown> {
  return JSON.parse(server.sent[index]!.body!) as Record<string, unknown>;
}

describe('reads', () => {
  test('getEnhancedBalance: GET /v1/billing/balance/{user_id}, the recorded answer as is', async () => {
    const server = new FakeServer().reply('balance_subscribed');
    const { client } = makeClient(server);
    const balance: EnhancedBalance = await client.getEnhancedBalance(USER);
    assert.equal(server.sent[0]!.method, 'GET');
    assert.equal(server.sent[0]!.url.pathname + server.sent[0]!.url.search, fixture('balance_subscribed').request.path);
    assert.equal(server.sent[0]!.headers['accept'], 'application/json');
    assert.deepEqual(balance, body('balance_subscribed'));
    assert.equal(balance.plan_key, 'pro');
    assert.equal(balance.subscription.cancel_at_period_end, false);
    assert.equal(balance.auto_topup.enabled, true);
    assert.equal(balance.buckets.paid.find((b) => b.source === 'welcome')?.expires_at, null);
  });

  test('the user defaults to the session key\'s user', async () => {
    const server = new FakeServer().reply('balance_new');
    const { client } = makeClient(server);
    await client.getEnhancedBalance();
    assert.equal(server.sent[0]!.url.pathname, `/v1/billing/balance/${USER}`);
  });

  test('no user anywhere: a clear error, no request', async () => {
    const server = new FakeServer();
    const { client } = makeClient(server, { credentials: { key_id: 'k', secret: 's' } });
    await assert.rejects(client.getEnhancedBalance(), /no user_id/);
    assert.equal(server.sent.length, 0);
  });

  test('getUsageAnalytics: period month by default, day on request', async () => {
    const server = new FakeServer().reply('usage_month', 'usage_day');
    const { client } = makeClient(server);
    const month = await client.getUsageAnalytics(USER);
    const day = await client.getUsageAnalytics(USER, 'day');
    assert.equal(server.sent[0]!.url.search, '?period=month');
    assert.equal(server.sent[1]!.url.search, '?period=day');
    assert.equal(month.daily_trend.length >= 1, true);
    assert.equal(day.daily_trend.length, 1);
    assert.equal(typeof month.by_operation['build'], 'number');
  });

  test('getBillingEvents(userId, limit) as in the contract, and every page in turn', async () => {
    const server = new FakeServer().reply('events_page1', 'events_page1', 'events_page2');
    const { client } = makeClient(server);
    const first: BillingEventHistory = await client.getBillingEvents(USER, 3);
    assert.equal(server.sent[0]!.url.search, '?limit=3');
    assert.ok(first.next_page_token);
    const pages: BillingEventHistory[] = [];
    for await (const page of client.iterateBillingEvents(USER, { limit: 3 })) pages.push(page);
    assert.equal(pages.length, 2);
    assert.equal(server.sent[2]!.url.searchParams.get('page_token'), first.next_page_token);
    assert.equal(pages[1]!.next_page_token, '');
    const types = pages.flatMap((p) => p.events.map((e) => e.type));
    assert.ok(types.includes('package_credit') && types.includes('consumption') && types.includes('daily_bonus'));
  });

  test('getBillingEvents defaults to 50', async () => {
    const server = new FakeServer().reply('events_page2');
    const { client } = makeClient(server);
    await client.getBillingEvents(USER);
    assert.equal(server.sent[0]!.url.search, '?limit=50');
  });

  test('checkSufficientBatch posts the contract\'s {userId, operations} and returns the bare array', async () => {
    const server = new FakeServer().reply('batch_check');
    const { client } = makeClient(server);
    const operations = fixture('batch_check').request.body as { operations: [] };
    const results = await client.checkSufficientBatch(USER, operations.operations);
    assert.deepEqual(sentJson(server, 0), fixture('batch_check').request.body);
    assert.ok(Array.isArray(results));
    assert.deepEqual(results.map((r) => r.ok), [true, true, false]);
    assert.ok(results[2]!.deficit_seconds > 0 && results[2]!.suggestions.length > 0);
    assert.equal(server.sent[0]!.headers['content-type'], 'application/json');
  });
});

describe('catalog', () => {
  test('kept per currency with its ETag; If-None-Match and a 304 return the kept copy', async () => {
    const server = new FakeServer().reply('catalog_usd', 'catalog_usd_not_modified', 'catalog_eur');
    const { client } = makeClient(server);
    const first: PricingCatalog = await client.getPricingCatalog('USD');
    const etag = fixture('catalog_usd').response.headers['etag'];
    assert.ok(etag);
    assert.equal(server.sent[0]!.headers['if-none-match'], undefined);
    const second = await client.getPricingCatalog('usd');
    assert.equal(server.sent[1]!.headers['if-none-match'], etag);
    assert.equal(second, first);
    const eur = await client.getPricingCatalog('EUR');
    assert.equal(server.sent[2]!.headers['if-none-match'], undefined, 'another currency, another cache entry');
    assert.equal(eur.currency, 'EUR');
    assert.equal(client.cachedCatalog('USD'), first);
    assert.ok(eur.packages.every((p) => p.taxInclusive) && first.packages.every((p) => !p.taxInclusive));
  });

  test('a currency without prices: USD with currency_fallback_from', async () => {
    const server = new FakeServer().reply('catalog_jpy_fallback');
    const { client } = makeClient(server);
    const catalog = await client.getPricingCatalog('JPY');
    assert.equal(catalog.currency, 'USD');
    assert.equal(catalog.currency_fallback_from, 'JPY');
    assert.equal(fixture('catalog_usd').response.body && 'currency_fallback_from' in (body<PricingCatalog>('catalog_usd')), false);
  });

  test('a 304 with nothing kept asks again without If-None-Match', async () => {
    const server = new FakeServer().reply('catalog_usd_not_modified', 'catalog_usd');
    const { client } = makeClient(server);
    const catalog = await client.getPricingCatalog('USD');
    assert.equal(catalog.version, body<PricingCatalog>('catalog_usd').version);
    assert.equal(server.sent.length, 2);
  });

  test('isCatalogOutdated compares a balance\'s catalog_version with the kept catalog', async () => {
    const server = new FakeServer().reply('catalog_usd');
    const { client } = makeClient(server);
    assert.equal(client.isCatalogOutdated('anything'), false, 'nothing kept yet');
    const catalog = await client.getPricingCatalog();
    assert.equal(client.isCatalogOutdated(body<EnhancedBalance>('balance_new').catalog_version), false);
    assert.equal(client.isCatalogOutdated(`${catalog.version}-next`), true);
  });
});

describe('writes', () => {
  test('consume: an idempotency key per operation; the recorded answer', async () => {
    const server = new FakeServer().reply('consume', 'consume');
    const { client } = makeClient(server);
    const answer = await client.consume('build', 120, { userId: USER });
    await client.consume('build', 120, { userId: USER });
    assert.deepEqual(sentJson(server, 0), { user_id: USER, operation: 'build', seconds: 120, idempotency_key: 'uuid-1' });
    assert.equal(sentJson(server, 1)['idempotency_key'], 'uuid-2');
    assert.equal(answer.consumed_seconds, 120);
    assert.equal(answer.replayed, false);
    assert.ok(answer.taken.length >= 1);
  });

  test('purchasePackage(key) as in the contract, or with a currency', async () => {
    const server = new FakeServer().reply('purchase_package', 'purchase_package');
    const { client } = makeClient(server);
    const bought = await client.purchasePackage('booster');
    assert.deepEqual(sentJson(server, 0), { user_id: USER, package_key: 'booster', idempotency_key: 'uuid-1' });
    await client.purchasePackage({ package_key: 'booster', currency: 'EUR', idempotency_key: 'buy-1' });
    assert.deepEqual(sentJson(server, 1), fixture('purchase_package').request.body);
    assert.match(bought.checkout_url, /^https?:\/\//);
    assert.equal(bought.display_price, bought.unit_amount_cents / 100);
  });

  test('subscriptions: checkout, change, cancel', async () => {
    const server = new FakeServer().reply('subscription_checkout', 'subscription_change', 'subscription_cancel');
    const { client } = makeClient(server);
    const checkout = await client.subscriptionCheckout({ plan_key: 'pro', currency: 'USD' });
    const changed = await client.changePlan('business');
    const canceled = await client.cancelSubscription();
    assert.equal(server.sent[0]!.url.pathname, '/v1/billing/subscriptions/checkout');
    assert.deepEqual(sentJson(server, 0), { user_id: USER, plan_key: 'pro', currency: 'USD', idempotency_key: 'uuid-1' });
    assert.deepEqual(sentJson(server, 1), { user_id: USER, plan_key: 'business', idempotency_key: 'uuid-2' });
    assert.deepEqual(sentJson(server, 2), { user_id: USER, idempotency_key: 'uuid-3' });
    assert.equal(checkout.plan_key, 'pro');
    assert.equal(changed.plan_key, 'business');
    assert.equal(canceled.cancel_at_period_end, true);
  });

  test('auto top-up: GET, PUT to the user\'s path (user_id not repeated in the body), setup; 409 without a card', async () => {
    const server = new FakeServer().reply('auto_topup_get', 'auto_topup_no_card', 'auto_topup_setup', 'auto_topup_put');
    const { client } = makeClient(server);
    const before = await client.getAutoTopup();
    assert.equal(before.enabled, false);
    const settings = { enabled: true, threshold_seconds: 1200, package_key: 'mini', currency: 'USD' };
    const refused = await client.setAutoTopup(settings).catch((e: unknown) => e);
    assert.ok(refused instanceof BillingApiError);
    assert.equal(refused.code, 'PAYMENT_METHOD_REQUIRED');
    assert.equal(refused.status, 409);
    assert.equal(refused.field, 'enabled');
    const setup = await client.setupAutoTopup();
    assert.ok(setup.checkout_url);
    const after = await client.setAutoTopup(settings);
    assert.equal(after.enabled, true);
    assert.equal(server.sent[1]!.method, 'PUT');
    assert.equal(server.sent[1]!.url.pathname, `/v1/billing/auto-topup/${USER}`);
    assert.deepEqual(sentJson(server, 1), settings);
    assert.equal(server.pending, 0);
  });
});

describe('errors', () => {
  for (const [name, code, status, field] of [
    ['error_invalid_argument', 'INVALID_ARGUMENT', 400, 'seconds'],
    ['error_unauthenticated', 'UNAUTHENTICATED', 401, undefined],
    ['error_permission_denied', 'PERMISSION_DENIED', 403, undefined],
    ['error_idempotency_key_reused', 'IDEMPOTENCY_KEY_REUSED', 409, undefined],
    ['consume_resume_token_used', 'RESUME_TOKEN_USED', 409, undefined],
  ] as const) {
    test(`${status} ${code} -> BillingApiError, not retried`, async () => {
      const server = new FakeServer().reply(name);
      const { client, sleeps } = makeClient(server);
      const error = await client.getEnhancedBalance(USER).catch((e: unknown) => e);
      assert.ok(error instanceof BillingApiError, String(error));
      assert.equal(error.code, code);
      assert.equal(error.error, code);
      assert.equal(error.status, status);
      if (field) assert.equal(error.field, field);
      assert.equal(error.requestId, (fixture(name).response.body as { request_id: string }).request_id);
      assert.equal(error.message, (fixture(name).response.body as { message: string }).message);
      assert.deepEqual(sleeps, []);
      assert.equal(server.sent.length, 1);
    });
  }

  test('402 -> InsufficientFundsError with the contract\'s fields (and status 402 for the universal handler)', async () => {
    const server = new FakeServer().reply('consume_insufficient');
    const { client } = makeClient(server);
    const error = await client.consume('export', 7200).catch((e: unknown) => e);
    assert.ok(error instanceof InsufficientFundsError);
    assert.ok(error instanceof Error);
    const recorded = fixture('consume_insufficient').response.body as Record<string, unknown>;
    assert.deepEqual(error.toJSON(), recorded);
    assert.equal(error.status, 402);
    assert.equal(error.http_status, 402);
    assert.equal(error.error, 'INSUFFICIENT_AI_TIME');
    assert.equal(error.operation, 'export');
    assert.equal(error.deficitSeconds, 7200 - error.balance_seconds);
    assert.deepEqual(error.suggestions.map((s) => s.type), ['package', 'upgrade']);
    assert.ok(error.resume_token?.startsWith('rt_'));
  });

  test('a body that is not JSON still gives a BillingApiError', async () => {
    const server = new FakeServer().reply({ status: 500, headers: { 'content-type': 'text/plain' }, body: 'upstream exploded' });
    const { client } = makeClient(server);
    const error = await client.getEnhancedBalance(USER).catch((e: unknown) => e);
    assert.ok(error instanceof BillingApiError);
    assert.equal(error.code, 'ERROR');
    assert.equal(error.status, 500);
  });
});

describe('retries', () => {
  test('503 with Retry-After: waits what the server says, then the same request again (same key, new signature)', async () => {
    const server = new FakeServer().reply('error_unavailable', 'consume');
    const { client, sleeps } = makeClient(server);
    const answer = await client.consume('build', 120, { userId: USER });
    assert.equal(answer.consumed_seconds, 120);
    assert.deepEqual(sleeps, [1000]);
    assert.equal(server.sent.length, 2);
    assert.equal(server.sent[0]!.body, server.sent[1]!.body, 'the same bytes, the same idempotency key');
    assert.equal(sentJson(server, 1)['idempotency_key'], 'uuid-1');
    assert.notEqual(server.sent[0]!.headers['x-hmac-timestamp'], server.sent[1]!.headers['x-hmac-timestamp']);
  });

  test('429 (rate limit) is retried the same way', async () => {
    const server = new FakeServer().reply('error_rate_limited', 'catalog_usd');
    const { client, sleeps } = makeClient(server);
    await client.getPricingCatalog('USD');
    assert.deepEqual(sleeps, [1000]);
  });

  test('bounded: after maxAttempts the 503 is thrown, with its Retry-After', async () => {
    const server = new FakeServer().reply('error_unavailable', 'error_unavailable', 'error_unavailable', 'error_unavailable');
    const { client, sleeps } = makeClient(server);
    const error = await client.getEnhancedBalance(USER).catch((e: unknown) => e);
    assert.ok(error instanceof BillingApiError);
    assert.equal(error.code, 'UNAVAILABLE');
    assert.equal(error.status, 503);
    assert.equal(error.retryAfterSeconds, 1);
    assert.equal(server.sent.length, 4);
    assert.deepEqual(sleeps, [1000, 1000, 1000]);
  });

  test('without Retry-After: exponential backoff with jitter, capped', async () => {
    const unavailable = { ...fixture('error_unavailable').response, headers: { 'content-type': 'application/json' } };
    const server = new FakeServer().reply(unavailable, unavailable, unavailable, unavailable, unavailable, 'balance_new');
    const { client, sleeps } = makeClient(server, { retry: { maxAttempts: 6, baseDelayMs: 100, maxDelayMs: 500 } });
    await client.getEnhancedBalance(USER);
    assert.equal(sleeps.length, 5);
    const ceilings = [100, 200, 400, 500, 500];
    sleeps.forEach((ms, i) => assert.ok(ms >= ceilings[i]! / 2 && ms <= ceilings[i]!, `${ms} within [${ceilings[i]! / 2}, ${ceilings[i]}]`));
  });

  test('a Retry-After longer than maxRetryAfterMs is not waited for', async () => {
    const longWait = { ...fixture('error_unavailable').response, headers: { 'content-type': 'application/json', 'retry-after': '120' } };
    const server = new FakeServer().reply(longWait);
    const { client, sleeps } = makeClient(server);
    const error = await client.getEnhancedBalance(USER).catch((e: unknown) => e);
    assert.ok(error instanceof BillingApiError && error.retryAfterSeconds === 120);
    assert.deepEqual(sleeps, []);
  });

  test('network failures are retried, then NETWORK_ERROR', async () => {
    const down = () => new TypeError('fetch failed');
    const server = new FakeServer().reply(down, 'balance_new', down, down);
    const { client } = makeClient(server, { retry: { maxAttempts: 2 } });
    await client.getEnhancedBalance(USER);
    const error = await client.getEnhancedBalance(USER).catch((e: unknown) => e);
    assert.ok(error instanceof BillingApiError);
    assert.equal(error.code, 'NETWORK_ERROR');
    assert.equal(error.status, 0);
  });

  test('Retry-After as an HTTP date', () => {
    const now = Date.parse('2026-12-02T19:34:02Z');
    assert.equal(parseRetryAfter('Wed, 02 Dec 2026 19:34:05 GMT', now), 3000);
    assert.equal(parseRetryAfter('2', now), 2000);
    assert.equal(parseRetryAfter(null, now), undefined);
    assert.equal(parseRetryAfter('soon', now), undefined);
  });
});

describe('credentials', () => {
  test('a provider is called lazily, once, and again shortly before expires_at', async () => {
    let calls = 0;
    const server = new FakeServer().reply('catalog_usd', 'balance_new', 'balance_new', 'balance_new');
    const { client, advance } = makeClient(server, {
      credentials: async () => {
        calls++;
        return { key_id: `bk_${calls}`, secret: 's', user_id: USER, expires_at: '2026-12-02T20:34:02Z' };
      },
    });
    await client.getPricingCatalog();
    assert.equal(calls, 0, 'the catalog needs no key');
    await Promise.all([client.getEnhancedBalance(), client.getEnhancedBalance()]);
    assert.equal(calls, 1);
    advance(60 * 60 * 1000 - 30_000); // 30 s before expiry
    await client.getEnhancedBalance();
    assert.equal(calls, 2);
    assert.equal(server.sent[3]!.headers['x-hmac-key-id'], 'bk_2');
  });

  test('a 401 fetches a new key once and tries again', async () => {
    let calls = 0;
    const server = new FakeServer().reply('error_unauthenticated', 'balance_new', 'error_unauthenticated', 'error_unauthenticated');
    const { client } = makeClient(server, {
      credentials: async () => ({ key_id: `bk_${++calls}`, secret: 's', user_id: USER }),
    });
    await client.getEnhancedBalance();
    assert.deepEqual(server.sent.map((s) => s.headers['x-hmac-key-id']), ['bk_1', 'bk_2']);
    const error = await client.getEnhancedBalance().catch((e: unknown) => e);
    assert.ok(error instanceof BillingApiError && error.status === 401, 'a second 401 in a row is thrown');
    assert.equal(calls, 3);
  });

  test('a signed call without credentials fails before sending', async () => {
    const server = new FakeServer();
    const client = new BillingClient({ baseUrl: 'http://billing.test', fetch: server.fetch, userId: USER });
    await assert.rejects(client.getEnhancedBalance(), /credentials/);
    assert.equal(server.sent.length, 0);
  });
});
