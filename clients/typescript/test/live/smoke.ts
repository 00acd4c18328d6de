/**
 * The compiled client against a running stack (REST through Envoy, the real server, the Stripe
 * stand-in): tests/e2e/test_typescript_client_live.py runs it with a fresh session key.
 *
 *   BILLING_BASE_URL=http://127.0.0.1:8080 BILLING_SESSION_KEY='{"key_id":..,"secret":..,"user_id":..}' \
 *     node build/test/live/smoke.js
 *
 * Whatever the unit tests cannot show: the server accepts the client's signatures (paths with ':'
 * and '@', a page token with '=', UTF-8 bodies), the ETag round trip, a real 402 and its resume,
 * and the live balance stream through Envoy.
 */
import assert from 'node:assert/strict';
import {
  BillingApiError, BillingClient, type Credentials, InsufficientFundsError, MemoryStorage,
} from '../../src/index.js';

const baseUrl = process.env['BILLING_BASE_URL'];
const keyJson = process.env['BILLING_SESSION_KEY'];
if (!baseUrl || !keyJson) throw new Error('set BILLING_BASE_URL and BILLING_SESSION_KEY');
const key = JSON.parse(keyJson) as Credentials;

const statuses: number[] = [];
const recordingFetch: typeof fetch = async (input, init) => {
  const response = await fetch(input, init);
  statuses.push(response.status);
  return response;
};

function step(name: string): void {
  console.log(`ok - ${name}`);
}

const client = new BillingClient({ baseUrl, credentials: key, storage: new MemoryStorage(), fetch: recordingFetch });

const account = await client.createAccount();
assert.equal(account.user_id, key.user_id);
step(`account ${account.user_id} (created: ${account.created})`);

const eur = await client.getPricingCatalog('EUR');
const again = await client.getPricingCatalog('EUR');
assert.equal(again, eur);
assert.equal(statuses.at(-1), 304);
step(`catalog ${eur.version} in ${eur.currency}, then 304 from the ETag`);

const balance = await client.getEnhancedBalance();
assert.ok(balance.totals.total_seconds > 0);
step(`balance ${balance.totals.total_seconds} s`);

const consumed = await client.consume('build', 60, { context: { note: 'café ☕' } });
assert.equal(consumed.consumed_seconds, 60);
step('consume 60 s');

const preflight = await client.checkSufficientBatch(undefined, [
  { operation: 'plan', estimate_seconds: 30 }, { operation: 'export', estimate_seconds: 86_400 },
]);
assert.deepEqual(preflight.map((r) => r.ok), [true, false]);
step('batch preflight');

const short = (await client.getEnhancedBalance()).totals.total_seconds + 600;
const refusal = await client.consume('export', short).catch((e: unknown) => e);
assert.ok(refusal instanceof InsufficientFundsError, String(refusal));
assert.ok(refusal.resume_token);
assert.deepEqual(client.pendingResumes().map((e) => e.operation), ['export']);
step(`402 for ${short} s, suggestions ${JSON.stringify(refusal.suggestions)}`);

const suggestion = refusal.suggestions.find((s) => s.type === 'package');
assert.ok(suggestion?.key);
const purchase = await client.purchasePackage({ package_key: suggestion.key, currency: 'EUR' });
const paid = await fetch(`${purchase.checkout_url}/pay`, { method: 'POST', headers: { Accept: 'application/json' } });
assert.ok(paid.ok, `pay: ${paid.status}`);
step(`bought ${purchase.package_key} for ${purchase.display_price} ${purchase.currency}`);

let cleaned = '';
const outcomes = await client.resumeAfterPurchase({
  url: 'http://localhost:3000/?purchased=true', replaceUrl: (url) => (cleaned = url),
});
assert.equal(cleaned, 'http://localhost:3000/');
assert.equal(outcomes.length, 1);
assert.equal(outcomes[0]!.status, 'resumed', JSON.stringify(outcomes[0]));
assert.deepEqual(client.pendingResumes(), []);
step('resumed after ?purchased=true');

const pages = [];
for await (const page of client.iterateBillingEvents(undefined, { limit: 2 })) pages.push(page);
assert.ok(pages.length >= 3, `pages: ${pages.length}`);
const types = new Set(pages.flatMap((p) => p.events.map((e) => e.type)));
assert.ok(types.has('package_credit') && types.has('consumption'), [...types].join());
step(`history: ${pages.length} pages of 2 (page tokens signed as sent)`);

const usage = await client.getUsageAnalytics(undefined, 'day');
assert.equal(usage.by_operation['export'], short);
step('usage of today');

const noCard = await client.setAutoTopup({ enabled: true, threshold_seconds: 1200, package_key: 'mini' }).catch((e: unknown) => e);
assert.ok(noCard instanceof BillingApiError && noCard.code === 'PAYMENT_METHOD_REQUIRED', String(noCard));
step('auto top-up without a card: 409 PAYMENT_METHOD_REQUIRED');

const other = await client.getEnhancedBalance('someone-else').catch((e: unknown) => e);
assert.ok(other instanceof BillingApiError && other.status === 403);
step('another user: 403');
const updates: Array<{ total: number; version: string }> = [];
let updated: () => void = () => undefined;
const watch = client.watchBalance(undefined, (live, version) => {
  updates.push({ total: live.totals.total_seconds, version });
  updated();
});
const nextUpdate = (): Promise<void> => new Promise<void>((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error('no balance update within 2 s')), 2_000);
  updated = () => {
    clearTimeout(timer);
    resolve();
  };
});
await nextUpdate();
const before = updates.at(-1)!;
await client.consume('plan', 30);
await nextUpdate();
const after = updates.at(-1)!;
assert.equal(after.total, before.total - 30);
assert.ok(BigInt(after.version) > BigInt(before.version));
watch.stop();
await watch.finished;
step(`live balance: ${before.total} s -> ${after.total} s over Server-Sent Events (version ${after.version})`);

console.log('live smoke: all passed');
