import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  BillingApiError, SseParser, StreamUnsupportedError, changesByItselfAt, type EnhancedBalance,
  type WatchBalanceOptions,
} from '../src/index.js';
import { FakeServer, RECORDED_USER, SESSION_KEY, body, makeClient } from './helpers.js';

const BALANCE = body<EnhancedBalance>('balance_new');

describe('SseParser', () => {
  test('returns the data of each complete event, across chunk boundaries and line endings', () => {
    const parser = new SseParser();
    assert.deepEqual(parser.push('data: {"a"'), []);
    assert.deepEqual(parser.push(':1}\n\ndata: x\r\n\r'), ['{"a":1}']);
    assert.deepEqual(parser.push('\ndata:y\rdata: z\r\r'), ['x']); // the last \r may be half of \r\n
    assert.deepEqual(parser.push('\n'), ['y\nz']);
  });

  test('skips comments, other fields and blank lines without data', () => {
    const parser = new SseParser();
    assert.deepEqual(parser.push(': keep-alive\n\nevent: balance\nid: 7\nretry: 10\ndata\n\n\n'), ['']);
  });

  test('refuses an event larger than its bound', () => {
    const parser = new SseParser();
    assert.throws(() => parser.push(`data: ${'x'.repeat(1_048_577)}\n`), /larger than allowed/);
  });
});

/** A text/event-stream reply whose body sends `events` (BalanceUpdate JSON), then ends. */
function eventStream(...events: object[]): Response {
  const text = events.map((event) => `data: ${JSON.stringify(event)}\n\n`).join('');
  return new Response(text, { status: 200, headers: { 'content-type': 'text/event-stream' } });
}

function update(version: string): object {
  return { version, balance: BALANCE, heartbeat: false };
}

const HEARTBEAT = { version: '0', heartbeat: true };

/** The recorded balance's day: its daily bucket expires at the next midnight. */
const RECORDED_AT = Date.parse('2026-12-02T12:00:00Z');

/** Waits recorded, none slept: reconnects happen at once; the clock stands on the recorded day. */
function watchOptions(sleeps: number[], extra: WatchBalanceOptions = {}): WatchBalanceOptions {
  return {
    baseDelayMs: 100, maxDelayMs: 1_000, onReconnect: (_error, delayMs) => sleeps.push(delayMs),
    now: () => RECORDED_AT, ...extra,
  };
}

describe('watchBalance', () => {
  test('signs the stream path as every call, and reconnects with since_version after the stream ends', async () => {
    const versions: string[] = [];
    const sleeps: number[] = [];
    let heartbeats = 0;
    const server = new FakeServer().reply(
      () => eventStream(update('3'), HEARTBEAT, update('4')), () => eventStream(update('6')),
    );
    const { client } = makeClient(server);
    const watch = client.watchBalance(undefined, (_balance, version) => {
      versions.push(version);
      if (version === '6') watch.stop();
    }, watchOptions(sleeps, { onHeartbeat: () => heartbeats++ }));
    await watch.finished;
    assert.deepEqual(versions, ['3', '4', '6']);
    assert.equal(heartbeats, 1);
    assert.equal(sleeps.length, 1);
    const [first, second] = server.sent;
    assert.equal(first!.url.pathname, `/v1/billing/balance/${RECORDED_USER}/stream`);
    assert.equal(first!.url.search, '');
    assert.equal(first!.headers['x-hmac-key-id'], SESSION_KEY.key_id);
    assert.match(first!.headers['x-hmac-signature']!, /^[0-9a-f]{64}$/);
    assert.equal(second!.url.search, '?since_version=4');
  });

  test('a reconnect after the balance changed by itself (a bucket expired) asks for the balance again', async () => {
    let clock = RECORDED_AT;
    const server = new FakeServer().reply(
      () => eventStream(update('4')),
      () => eventStream(update('4')),
      () => eventStream(update('5')),
    );
    const { client } = makeClient(server);
    const watch = client.watchBalance(undefined, (_balance, version) => {
      if (version === '4') clock += 13 * 3_600_000; // past the daily bucket's midnight
      if (version === '5') watch.stop();
    }, watchOptions([], { now: () => clock }));
    await watch.finished;
    const searches = server.sent.map((request) => request.url.search);
    // First: nothing known. Second: the day ended since version 4 came, so version 4 shows too
    // much: ask again. Third: version 4 was received today (01:00) and it is 14:00: resume after it.
    assert.deepEqual(searches, ['', '', '?since_version=4']);
  });

  test("a caller's own since_version is trusted until the day ends, not after", async () => {
    let clock = RECORDED_AT;
    const server = new FakeServer().reply(() => eventStream(HEARTBEAT), () => eventStream(update('9')));
    const { client } = makeClient(server);
    const watch = client.watchBalance(undefined, () => watch.stop(), watchOptions([], {
      sinceVersion: '8', now: () => clock, onHeartbeat: () => { clock += 13 * 3_600_000; },
    }));
    await watch.finished;
    assert.deepEqual(server.sent.map((request) => request.url.search), ['?since_version=8', '']);
  });

  test('the instant a balance changes by itself: its first expiry, its period end or the next UTC midnight', () => {
    const at = Date.parse('2026-12-02T12:00:00Z');
    assert.equal(changesByItselfAt(BALANCE, at), Date.parse('2026-12-03T00:00:00Z'));
    const soon = { ...BALANCE, totals: { ...BALANCE.totals, next_expiry_at: '2026-12-02T12:30:00Z' } };
    assert.equal(changesByItselfAt(soon, at), Date.parse('2026-12-02T12:30:00Z'));
    const none = { ...BALANCE, totals: { ...BALANCE.totals, next_expiry_at: null } };
    assert.equal(changesByItselfAt(none, Date.parse('2026-12-31T23:00:00Z')), Date.parse('2027-01-01T00:00:00Z'));
  });

  test('backs off after failures in a row, honoring Retry-After, and resets after a message', async () => {
    const sleeps: number[] = [];
    const server = new FakeServer().reply(
      () => new Error('network down'),
      () => new Error('network down'),
      { status: 429, headers: { 'retry-after': '7', 'content-type': 'application/json' },
        body: { error: 'TOO_MANY_WATCHERS', http_status: 429, message: 'too many' } },
      () => eventStream(update('1')),
      () => eventStream(update('2')),
    );
    const { client } = makeClient(server);
    const watch = client.watchBalance('alice', (_balance, version) => {
      if (version === '2') watch.stop();
    }, watchOptions(sleeps));
    await watch.finished;
    assert.equal(sleeps.length, 4);
    assert.ok(sleeps[0]! >= 50 && sleeps[0]! <= 100, `first backoff ${sleeps[0]}`);
    assert.ok(sleeps[1]! >= 100 && sleeps[1]! <= 200, `second backoff ${sleeps[1]}`);
    assert.equal(sleeps[2], 7_000);
    assert.ok(sleeps[3]! >= 50 && sleeps[3]! <= 100, `after a message, the first backoff again: ${sleeps[3]}`);
  });

  test('a refusal that retrying cannot cure ends the watch with the error', async () => {
    const server = new FakeServer().reply({
      status: 403, headers: { 'content-type': 'application/json' },
      body: { error: 'PERMISSION_DENIED', http_status: 403, message: 'not yours' },
    });
    const { client } = makeClient(server);
    const error = await client.watchBalance('bob', () => undefined, watchOptions([])).finished.catch((e: unknown) => e);
    assert.ok(error instanceof BillingApiError);
    assert.equal(error.status, 403);
  });

  test('an answer that is not an event stream says streaming is unsupported', async () => {
    const server = new FakeServer().reply({ status: 200, headers: { 'content-type': 'application/json' }, body: BALANCE });
    const { client } = makeClient(server);
    const error = await client.watchBalance('alice', () => undefined, watchOptions([])).finished.catch((e: unknown) => e);
    assert.ok(error instanceof StreamUnsupportedError);
  });

  test('stop() before the first answer ends the watch quietly', async () => {
    const server = new FakeServer().reply(() => eventStream(update('1')));
    const { client } = makeClient(server);
    const watch = client.watchBalance('alice', () => assert.fail('no update after stop'), watchOptions([]));
    watch.stop();
    await watch.finished;
  });
});
