import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { BillingApiError, BillingClient, InsufficientFundsError, MemoryStorage, ResumeStore } from '../src/index.js';
import { FakeServer, RECORDED_USER, body, fixture, makeClient } from './helpers.js';

const USER = RECORDED_USER;
const PAGE = 'http://localhost:3000/studio?doc=7&purchased=true';
const TOKEN = (fixture('consume_insufficient').response.body as { resume_token: string }).resume_token;

function sentJson(server: FakeServer, index: number): Record<string, unknown> {
  return JSON.parse(server.sent[index]!.body!) as Record<string, unknown>;
}

/** A client whose `export` of 7200 s was refused (402), with its storage. */
async function blocked(...later: Parameters<FakeServer['reply']>) {
  const storage = new MemoryStorage();
  const server = new FakeServer().reply('consume_insufficient', ...later);
  const made = makeClient(server, { storage });
  const error = await made.client.consume('export', 7200, { context: { doc: 7 } }).catch((e: unknown) => e);
  assert.ok(error instanceof InsufficientFundsError);
  return { ...made, server, storage, error };
}

describe('402: the blocked operation is kept in session storage', () => {
  test('keyed by user and operation, with its idempotency key, token and the app\'s context', async () => {
    const { storage, client, now } = await blocked();
    const kept = JSON.parse(storage.getItem(ResumeStore.keyFor(USER, 'export'))!) as Record<string, unknown>;
    assert.deepEqual(kept, {
      user_id: USER, operation: 'export', seconds: 7200, idempotency_key: 'uuid-1', resume_token: TOKEN,
      stored_at: now(), context: { doc: 7 },
    });
    assert.deepEqual(client.pendingResumes().map((e) => e.operation), ['export']);
  });

  test('a newer refusal of the same operation replaces the older one', async () => {
    const { client, server } = await blocked();
    server.reply('consume_insufficient');
    await client.consume('export', 600).catch(() => undefined);
    assert.deepEqual(client.pendingResumes().map((e) => [e.operation, e.seconds]), [['export', 600]]);
  });

  test('discardResume forgets it', async () => {
    const { client } = await blocked();
    client.discardResume('export');
    assert.deepEqual(client.pendingResumes(), []);
  });

  test('entries older than the token\'s hour are dropped, not resumed', async () => {
    const { client, server, advance } = await blocked();
    advance(60 * 60 * 1000);
    const outcomes = await client.resumeAfterPurchase({ url: PAGE, replaceUrl: () => undefined });
    assert.deepEqual(outcomes, []);
    assert.equal(server.sent.length, 1);
  });
});

describe('resumeAfterPurchase', () => {
  test('without ?purchased=true: nothing', async () => {
    const { client, server } = await blocked();
    let replaced: string | undefined;
    const outcomes = await client.resumeAfterPurchase({ url: 'http://localhost:3000/studio?doc=7', replaceUrl: (u) => (replaced = u) });
    assert.deepEqual(outcomes, []);
    assert.equal(replaced, undefined);
    assert.equal(server.sent.length, 1);
    assert.equal(client.pendingResumes().length, 1);
  });

  test('?purchased=true: the parameter goes, the operation runs once with its token and its own key, then is forgotten', async () => {
    const { client, server } = await blocked('consume_resumed');
    let replaced: string | undefined;
    const outcomes = await client.resumeAfterPurchase({ url: PAGE, replaceUrl: (u) => (replaced = u) });
    assert.equal(replaced, 'http://localhost:3000/studio?doc=7');
    assert.equal(outcomes.length, 1);
    const [outcome] = outcomes;
    assert.equal(outcome!.status, 'resumed');
    assert.deepEqual(outcome!.entry.context, { doc: 7 });
    if (outcome?.status === 'resumed') assert.equal(outcome.response.consumed_seconds, 7200);
    assert.deepEqual(sentJson(server, 1), {
      user_id: USER, operation: 'export', seconds: 7200, idempotency_key: 'uuid-1', resume_token: TOKEN,
    });
    assert.deepEqual(client.pendingResumes(), []);
    assert.deepEqual(await client.resumeAfterPurchase({ url: PAGE, replaceUrl: () => undefined }), [], 'once only');
    assert.equal(server.sent.length, 2);
  });

  test('two calls at once (React StrictMode runs effects twice) share one run', async () => {
    const { client, server } = await blocked('consume_resumed');
    const options = { url: PAGE, replaceUrl: () => undefined };
    const [a, b] = await Promise.all([client.resumeAfterPurchase(options), client.resumeAfterPurchase(options)]);
    assert.equal(a, b);
    assert.equal(server.sent.length, 2);
  });

  test('the credit is late (redirect before webhook): still short, tried again until it lands', async () => {
    const { client, server, sleeps } = await blocked('consume_insufficient', 'consume_insufficient', 'consume_resumed');
    const [outcome] = await client.resumeAfterPurchase({ url: PAGE, replaceUrl: () => undefined });
    assert.equal(outcome!.status, 'resumed');
    assert.deepEqual(sleeps, [500, 1000]);
    assert.ok(server.sent.slice(1).every((s) => JSON.parse(s.body!).idempotency_key === 'uuid-1'));
    assert.deepEqual(client.pendingResumes(), []);
  });

  test('still short after waitForCreditMs: "insufficient", kept for a manual retry (resumeNow)', async () => {
    const { client, server } = await blocked('consume_insufficient');
    const [outcome] = await client.resumeAfterPurchase({ url: PAGE, replaceUrl: () => undefined, waitForCreditMs: 0 });
    assert.equal(outcome!.status, 'insufficient');
    assert.deepEqual(client.pendingResumes().map((e) => e.resume_token), [TOKEN]);
    server.reply('consume_resumed');
    const retried = await client.resumeNow('export');
    assert.equal(retried?.status, 'resumed');
    assert.deepEqual(client.pendingResumes(), []);
    assert.equal(await client.resumeNow('export'), undefined);
  });

  test('token already used (another tab resumed it): "failed", forgotten', async () => {
    const { client } = await blocked('consume_resume_token_used');
    const [outcome] = await client.resumeAfterPurchase({ url: PAGE, replaceUrl: () => undefined });
    assert.equal(outcome!.status, 'failed');
    if (outcome?.status === 'failed') {
      assert.ok(outcome.error instanceof BillingApiError);
      assert.equal(outcome.error.code, 'RESUME_TOKEN_USED');
    }
    assert.deepEqual(client.pendingResumes(), []);
  });
});

describe('storage', () => {
  const global = globalThis as { sessionStorage?: unknown; localStorage?: unknown; location?: unknown; history?: unknown };
  afterEach(() => {
    delete global.sessionStorage;
    delete global.localStorage;
    delete global.location;
    delete global.history;
  });

  test('defaults to sessionStorage; localStorage is never written', async () => {
    const session = new MemoryStorage();
    const local = new MemoryStorage();
    global.sessionStorage = session;
    global.localStorage = local;
    const server = new FakeServer().reply('consume_insufficient');
    const client = new BillingClient({
      baseUrl: 'http://billing.test', fetch: server.fetch, credentials: { key_id: 'k', secret: 's', user_id: USER },
    });
    await client.consume('export', 7200).catch(() => undefined);
    assert.equal(session.length, 1);
    assert.equal(local.length, 0);
  });

  test('localStorage is refused', () => {
    const local = new MemoryStorage();
    global.localStorage = local;
    assert.throws(() => new BillingClient({ baseUrl: 'http://billing.test', storage: local }), /never localStorage/);
  });

  test('in a page: location.href is read and history.replaceState drops the parameter', async () => {
    const calls: unknown[][] = [];
    global.location = { href: PAGE, origin: 'http://localhost:3000' };
    global.history = { state: { keep: 1 }, replaceState: (...args: unknown[]) => calls.push(args) };
    const { client, server } = await blocked('consume_resumed');
    const outcomes = await client.resumeAfterPurchase();
    assert.equal(outcomes[0]!.status, 'resumed');
    assert.deepEqual(calls, [[{ keep: 1 }, '', 'http://localhost:3000/studio?doc=7']]);
    assert.equal(server.sent.length, 2);
  });

  test('same-origin client: baseUrl "" uses the page\'s origin', async () => {
    global.location = { href: 'http://localhost:3000/', origin: 'http://localhost:3000' };
    const server = new FakeServer().reply('balance_new');
    const client = new BillingClient({ fetch: server.fetch, credentials: { key_id: 'k', secret: 's', user_id: USER } });
    assert.deepEqual(await client.getEnhancedBalance(), body('balance_new'));
    assert.equal(server.sent[0]!.url.origin, 'http://localhost:3000');
  });
});
