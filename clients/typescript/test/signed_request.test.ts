import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BillingApiError, bodyDigest, canonicalRequest, hmacSha256Hex } from '../src/index.js';
import { FakeServer, SESSION_KEY, makeClient } from './helpers.js';

const ADMIN_PATH = '/v1/billing/admin/accounts/u-1/ledger';

async function expectedSignature(method: string, pathAndQuery: string, timestamp: string, body: string | undefined) {
  return hmacSha256Hex(SESSION_KEY.secret, canonicalRequest(method, pathAndQuery, timestamp, await bodyDigest(body)));
}

describe('signedRequest: any path, signed like the typed methods', () => {
  test('GET with a repeated query parameter: the signature covers the path and query as sent', async () => {
    const server = new FakeServer().reply({ status: 200, headers: { 'content-type': 'application/json' }, body: { rows: [] } });
    const { client } = makeClient(server);
    const answer = await client.signedRequest<{ rows: unknown[] }>('GET', ADMIN_PATH, {
      query: { types: ['grant', 'consumption'], page_size: 50, order: 'oldest_first', from_at: undefined },
    });
    assert.deepEqual(answer, { rows: [] });
    const sent = server.sent[0]!;
    const pathAndQuery = sent.url.pathname + sent.url.search;
    assert.equal(pathAndQuery, `${ADMIN_PATH}?types=grant&types=consumption&page_size=50&order=oldest_first`);
    assert.equal(sent.headers['x-hmac-key-id'], SESSION_KEY.key_id);
    assert.equal(sent.headers['x-hmac-signature'],
      await expectedSignature('GET', pathAndQuery, sent.headers['x-hmac-timestamp']!, undefined));
    assert.equal(sent.body, undefined);
  });

  test('POST: a JSON body, signed over its exact bytes', async () => {
    const server = new FakeServer().reply({ status: 200, headers: {}, body: { replayed: false } });
    const { client } = makeClient(server);
    await client.signedRequest('POST', '/v1/billing/admin/accounts/u-1/grants', {
      body: { source: 'gift', seconds: 600, reason: 'sorry', idempotency_key: 'k-1' },
    });
    const sent = server.sent[0]!;
    assert.equal(sent.method, 'POST');
    assert.equal(sent.headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(sent.body!), { source: 'gift', seconds: 600, reason: 'sorry', idempotency_key: 'k-1' });
    assert.equal(sent.headers['x-hmac-signature'],
      await expectedSignature('POST', sent.url.pathname, sent.headers['x-hmac-timestamp']!, sent.body));
  });

  test('an error answer: BillingApiError with the body\'s code, message and field', async () => {
    const server = new FakeServer().reply({
      status: 400, headers: {},
      body: { error: 'INVALID_ARGUMENT', http_status: 400, message: 'reason: required', field: 'reason' },
    });
    const { client } = makeClient(server);
    const error = await client.signedRequest('POST', '/v1/billing/admin/keys/k/revoke', { body: {} })
      .catch((caught: unknown) => caught);
    assert.ok(error instanceof BillingApiError);
    assert.equal(error.code, 'INVALID_ARGUMENT');
    assert.equal(error.field, 'reason');
    assert.equal(error.message, 'reason: required');
  });

  test('501 (not implemented yet) is not retried', async () => {
    const server = new FakeServer().reply({
      status: 501, headers: {}, body: { error: 'UNIMPLEMENTED', http_status: 501, message: 'not built yet' },
    });
    const { client, sleeps } = makeClient(server);
    const error = await client.signedRequest('GET', '/v1/billing/admin/health').catch((caught: unknown) => caught);
    assert.ok(error instanceof BillingApiError && error.status === 501);
    assert.equal(server.sent.length, 1);
    assert.deepEqual(sleeps, []);
  });

  test('signedRequestText: the body as text (a CSV export) with its content type', async () => {
    const csv = 'event_seq,type,seconds\n1,grant,600\n';
    const server = new FakeServer().reply(() => new Response(csv, { status: 200, headers: { 'content-type': 'text/csv' } }));
    const { client } = makeClient(server);
    const answer = await client.signedRequestText('GET', `${ADMIN_PATH}.csv`);
    assert.deepEqual(answer, { text: csv, contentType: 'text/csv' });
    assert.ok(server.sent[0]!.headers['x-hmac-signature']);
  });

  test('a path with a query or without its leading slash is refused before any request', async () => {
    const server = new FakeServer();
    const { client } = makeClient(server);
    await assert.rejects(client.signedRequest('GET', '/v1/billing/admin/audit?user_id=x'), /no query/);
    await assert.rejects(client.signedRequest('GET', 'v1/billing/admin/audit'), /must start with/);
    assert.equal(server.sent.length, 0);
  });
});
