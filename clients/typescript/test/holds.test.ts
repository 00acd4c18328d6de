import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  BillingApiError, InsufficientFundsError, type HoldResponse, type ListHoldsResponse,
} from '../src/index.js';
import { FakeServer, RECORDED_USER, body, fixture, makeClient } from './helpers.js';

const USER = RECORDED_USER;
/** A Node backend signs with its service key (no user of its own): every call names the user. */
const SERVICE_KEY = { key_id: 'bk_test_service', secret: 'service-secret' };

function sentJson(server: FakeServer, index: number): Record<string, unknown> {
  return JSON.parse(server.sent[index]!.body!) as Record<string, unknown>;
}

describe('holds', () => {
  test('createHold: POST /v1/billing/holds with a hold_id made once, and the recorded answer as is', async () => {
    const server = new FakeServer().reply('hold_create');
    const { client } = makeClient(server);
    const reply: HoldResponse = await client.createHold('build', 600, { holdId: 'hold-1', ttlSeconds: 600 });
    assert.equal(server.sent[0]!.method, 'POST');
    assert.equal(server.sent[0]!.url.pathname, '/v1/billing/holds');
    assert.deepEqual(sentJson(server, 0), fixture('hold_create').request.body);
    assert.deepEqual(reply, body('hold_create'));
    assert.equal(reply.hold.state, 'open');
    assert.equal(reply.hold.held_seconds, 600);
    assert.equal(typeof reply.totals.held_seconds, 'number');
    assert.ok(reply.totals.held_seconds >= 600);
  });

  test('createHold without a hold_id: a new one, the same on every retry (a retry answers the same hold)', async () => {
    const server = new FakeServer().reply({ status: 503, headers: { 'retry-after': '1' }, body: { error: 'UNAVAILABLE', http_status: 503, message: 'x' } }, 'hold_create');
    const { client } = makeClient(server);
    await client.createHold('build', 600);
    const [first, second] = [sentJson(server, 0), sentJson(server, 1)];
    assert.equal(first['hold_id'], 'uuid-1');
    assert.deepEqual(second, first);
    assert.equal('ttl_seconds' in first, false);
    assert.equal('resume_token' in first, false);
  });

  test('a short balance: the same InsufficientFundsError as consume, naming the operation; nothing kept for resume', async () => {
    const server = new FakeServer().reply('hold_insufficient');
    const { client } = makeClient(server);
    const error = await client.createHold('export', 13_530, { holdId: 'hold-big' }).catch((e: unknown) => e);
    assert.ok(error instanceof InsufficientFundsError);
    assert.equal(error.status, 402);
    assert.equal(error.operation, 'export');
    assert.equal(error.requestedSeconds, 13_530);
    assert.ok(error.resume_token?.startsWith('rt_'));
    assert.deepEqual(error.suggestions, body<{ suggestions: unknown }>('hold_insufficient').suggestions);
    assert.deepEqual(client.pendingResumes(), []);
  });

  test('a resume token from a 402 goes in the body', async () => {
    const server = new FakeServer().reply('hold_create');
    const { client } = makeClient(server);
    await client.createHold('export', 60, { resumeToken: 'rt_abc' });
    assert.equal(sentJson(server, 0)['resume_token'], 'rt_abc');
  });

  test('extendHold: the hold in the path, an idempotency key made once', async () => {
    const server = new FakeServer().reply('hold_extend');
    const { client } = makeClient(server);
    const reply = await client.extendHold('hold-1', { seconds: 300, idempotencyKey: 'ext-1' });
    assert.equal(server.sent[0]!.url.pathname, '/v1/billing/holds/hold-1/extend');
    assert.deepEqual(sentJson(server, 0), fixture('hold_extend').request.body);
    assert.equal(reply.hold.held_seconds, 900);
    const moved = new FakeServer().reply('hold_extend');
    await makeClient(moved).client.extendHold('hold-1', { ttlSeconds: 3600 });
    assert.deepEqual(sentJson(moved, 0), { user_id: USER, idempotency_key: 'uuid-1', ttl_seconds: 3600 });
  });

  test('commitHold: cumulative used_seconds; final settles', async () => {
    const server = new FakeServer().reply('hold_commit', 'hold_commit_final');
    const { client } = makeClient(server);
    const open = await client.commitHold('hold-1', 200);
    assert.deepEqual(sentJson(server, 0), { user_id: USER, used_seconds: 200 });
    assert.equal(open.hold.committed_seconds, 200);
    const settled = await client.commitHold('hold-1', 450, { final: true });
    assert.equal(server.sent[1]!.url.pathname, '/v1/billing/holds/hold-1/commit');
    assert.deepEqual(sentJson(server, 1), fixture('hold_commit_final').request.body);
    assert.equal(settled.hold.state, 'settled');
    assert.equal(settled.hold.committed_seconds, 450);
  });

  test('releaseHold and listHolds', async () => {
    const server = new FakeServer().reply('hold_list', 'hold_release');
    const { client } = makeClient(server);
    const listed: ListHoldsResponse = await client.listHolds();
    assert.equal(server.sent[0]!.method, 'GET');
    assert.equal(server.sent[0]!.url.pathname + server.sent[0]!.url.search, `/v1/billing/holds?user_id=${USER}`);
    assert.equal(server.sent[0]!.body, undefined);
    assert.deepEqual(listed.holds.map((h) => h.hold_id), ['hold-1', 'hold-2']);
    assert.equal(listed.totals.held_seconds, 760);
    const released = await client.releaseHold('hold-2');
    assert.deepEqual(sentJson(server, 1), { user_id: USER });
    assert.equal(server.sent[1]!.url.pathname, '/v1/billing/holds/hold-2/release');
    assert.equal(released.hold.state, 'settled');
  });

  test('refusals are BillingApiErrors with the server\'s code and field', async () => {
    const cases = [
      ['hold_conflict', 409, 'HOLD_CONFLICT', 'hold_id'],
      ['hold_settled', 409, 'HOLD_SETTLED', 'hold_id'],
      ['hold_exceeded', 400, 'HOLD_EXCEEDED', 'used_seconds'],
      ['hold_not_found', 404, 'HOLD_NOT_FOUND', 'hold_id'],
    ] as const;
    for (const [name, status, code, field] of cases) {
      const server = new FakeServer().reply(name);
      const { client } = makeClient(server);
      const error = await client.commitHold('hold-1', 1).catch((e: unknown) => e);
      assert.ok(error instanceof BillingApiError, name);
      assert.equal(error.status, status);
      assert.equal(error.code, code);
      assert.equal(error.field, field);
      assert.equal(server.sent.length, 1, `${name}: not retried`);
    }
  });

  test('a hold id is one path segment, escaped', async () => {
    const server = new FakeServer().reply('hold_release');
    const { client } = makeClient(server);
    await client.releaseHold('a/b c');
    assert.equal(server.sent[0]!.url.pathname, '/v1/billing/holds/a%2Fb%20c/release');
  });

  test('a Node backend with a service key names the user on every call, signed with that key', async () => {
    const server = new FakeServer().reply('hold_create', 'hold_commit_final', 'hold_list');
    const { client } = makeClient(server, { credentials: SERVICE_KEY });
    await client.createHold('build', 600, { userId: 'alice', holdId: 'job-7' });
    await client.commitHold('job-7', 450, { final: true, userId: 'alice' });
    await client.listHolds('alice');
    assert.equal(sentJson(server, 0)['user_id'], 'alice');
    assert.equal(sentJson(server, 1)['user_id'], 'alice');
    assert.equal(server.sent[2]!.url.search, '?user_id=alice');
    for (const sent of server.sent) assert.equal(sent.headers['x-hmac-key-id'], SERVICE_KEY.key_id);
    await assert.rejects(client.listHolds(), /no user_id/);
  });
});
