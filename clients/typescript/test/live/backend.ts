/**
 * The compiled client as a Node backend uses it: signed with a service key (acting for any user,
 * each call naming one), against a running stack. tests/e2e/test_typescript_client_live.py runs it:
 *
 *   BILLING_BASE_URL=http://127.0.0.1:8080 BILLING_SERVICE_KEY='{"key_id":..,"secret":..}' BILLING_USER=alice \
 *     node build/test/live/backend.js
 *
 * A job of unknown length: hold, extend, commit as it goes, settle; the 402 of a hold the balance
 * cannot cover; the list of open holds; and the errors a backend must handle.
 */
import assert from 'node:assert/strict';
import { BillingApiError, BillingClient, type Credentials, InsufficientFundsError, MemoryStorage } from '../../src/index.js';

const baseUrl = process.env['BILLING_BASE_URL'];
const keyJson = process.env['BILLING_SERVICE_KEY'];
const user = process.env['BILLING_USER'];
if (!baseUrl || !keyJson || !user) throw new Error('set BILLING_BASE_URL, BILLING_SERVICE_KEY and BILLING_USER');
const key = JSON.parse(keyJson) as Credentials;

function step(name: string): void {
  console.log(`ok - ${name}`);
}

const billing = new BillingClient({ baseUrl, credentials: key, storage: new MemoryStorage() });

await billing.createAccount(user);
const start = (await billing.getEnhancedBalance(user)).totals;
step(`account ${user}: ${start.total_seconds} s, ${start.held_seconds} s held`);

const { hold, totals } = await billing.createHold('build', 300, { userId: user, ttlSeconds: 600 });
assert.equal(hold.state, 'open');
assert.equal(hold.held_seconds, 300);
assert.equal(totals.held_seconds, start.held_seconds + 300);
assert.equal(totals.total_seconds, start.total_seconds - 300);
step(`hold ${hold.hold_id}: 300 s held until ${hold.expires_at}`);

const again = await billing.createHold('build', 300, { userId: user, holdId: hold.hold_id, ttlSeconds: 600 });
assert.deepEqual(again.hold, hold);
step('the same hold again: the same hold, nothing more held');

assert.equal((await billing.commitHold(hold.hold_id, 120, { userId: user })).hold.committed_seconds, 120);
const extended = await billing.extendHold(hold.hold_id, { userId: user, seconds: 200 });
assert.equal(extended.hold.held_seconds, 500);
step('committed 120 s so far, then held 200 s more');

const listed = await billing.listHolds(user);
assert.deepEqual(listed.holds.map((h) => h.hold_id), [hold.hold_id]);
step('listed the open hold');

const exceeded = await billing.commitHold(hold.hold_id, 501, { userId: user }).catch((e: unknown) => e);
assert.ok(exceeded instanceof BillingApiError && exceeded.code === 'HOLD_EXCEEDED', String(exceeded));
const settled = await billing.commitHold(hold.hold_id, 420, { userId: user, final: true });
assert.equal(settled.hold.state, 'settled');
assert.equal(settled.totals.held_seconds, start.held_seconds);
assert.equal(settled.totals.total_seconds, start.total_seconds - 420);
step('final commit of 420 s: the other 80 s went back');

const late = await billing.commitHold(hold.hold_id, 430, { userId: user }).catch((e: unknown) => e);
assert.ok(late instanceof BillingApiError && late.code === 'HOLD_SETTLED' && late.status === 409, String(late));
const unknown = await billing.releaseHold('no-such-hold', user).catch((e: unknown) => e);
assert.ok(unknown instanceof BillingApiError && unknown.code === 'HOLD_NOT_FOUND' && unknown.status === 404, String(unknown));
step('after settling: 409 HOLD_SETTLED; an unknown hold: 404 HOLD_NOT_FOUND');

const short = settled.totals.total_seconds + 60;
const refusal = await billing.createHold('export', short, { userId: user }).catch((e: unknown) => e);
assert.ok(refusal instanceof InsufficientFundsError, String(refusal));
assert.equal(refusal.operation, 'export');
assert.ok(refusal.resume_token);
assert.deepEqual((await billing.listHolds(user)).holds, []);
step(`402 for ${short} s, nothing held`);

const released = await billing.releaseHold((await billing.createHold('plan', 30, { userId: user })).hold.hold_id, user);
assert.equal(released.hold.state, 'settled');
assert.equal(released.hold.committed_seconds, 0);
step('released a hold with nothing committed');

console.log('backend holds: all passed');
