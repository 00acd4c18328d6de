import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { bodyDigest, canonicalRequest, hmacSha256Hex, signatureHeaders } from '../src/signing.js';
import { FakeServer, SESSION_KEY, makeClient } from './helpers.js';

interface Vector {
  method: string;
  path_and_query: string;
  body: string;
  timestamp: number;
  key_id: string;
  secret: string;
  body_sha256: string;
  canonical: string;
  signature: string;
}

// Computed by the server's own functions (billing.domain.auth) in scripts/capture_fixtures.py;
// tests/unit/test_typescript_client.py checks the file still agrees with them.
const vectors = JSON.parse(
  readFileSync(new URL('../../test/fixtures/signing_vectors.json', import.meta.url), 'utf8'),
) as Vector[];

test('the empty body hashes to e3b0c442...b855', async () => {
  assert.equal(await bodyDigest(''), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  assert.equal(await bodyDigest(undefined), await bodyDigest(new Uint8Array(0)));
});

for (const v of vectors) {
  test(`signature vector: ${v.method} ${v.path_and_query}`, async () => {
    assert.equal(await bodyDigest(v.body), v.body_sha256);
    assert.equal(canonicalRequest(v.method, v.path_and_query, String(v.timestamp), v.body_sha256), v.canonical);
    assert.equal(await hmacSha256Hex(v.secret, v.canonical), v.signature);
    const headers = await signatureHeaders({ key_id: v.key_id, secret: v.secret }, v.method, v.path_and_query, v.body, v.timestamp);
    assert.deepEqual(headers, {
      'X-HMAC-Key-Id': v.key_id,
      'X-HMAC-Timestamp': String(v.timestamp),
      'X-HMAC-Signature': v.signature,
    });
  });
}

test('bytes and the same text sign alike (UTF-8)', async () => {
  const v = vectors.find((x) => /[^\x00-\x7f]/.test(x.body));
  assert.ok(v, 'a vector with a non-ASCII body');
  const bytes = new TextEncoder().encode(v.body);
  const headers = await signatureHeaders({ key_id: v.key_id, secret: v.secret }, v.method, v.path_and_query, bytes, v.timestamp);
  assert.equal(headers['X-HMAC-Signature'], v.signature);
});

test('the client signs the path and query it sends, the body bytes it sends, and unix seconds', async () => {
  const server = new FakeServer().reply('events_page1', 'consume');
  const { client, now } = makeClient(server);
  await client.getBillingEvents('user:7@example.com', { limit: 20, pageToken: 'YmVmb3JlOjQ=' });
  await client.consume('build', 120, { userId: 'user:7@example.com', idempotencyKey: 'op-1' });
  for (const sent of server.sent) {
    const pathAndQuery = sent.url.pathname + sent.url.search;
    const stamp = sent.headers['x-hmac-timestamp'];
    assert.equal(stamp, String(Math.floor(now() / 1000)));
    assert.equal(sent.headers['x-hmac-key-id'], SESSION_KEY.key_id);
    const canonical = canonicalRequest(sent.method, pathAndQuery, stamp!, await bodyDigest(sent.body));
    assert.equal(sent.headers['x-hmac-signature'], await hmacSha256Hex(SESSION_KEY.secret, canonical));
  }
  // ':' and '@' stay as they are in the path (the transcoder would keep %3A / %40 encoded).
  assert.equal(server.sent[0]!.url.pathname, '/v1/billing/events/user:7@example.com');
  assert.equal(server.sent[0]!.url.search, '?limit=20&page_token=YmVmb3JlOjQ%3D');
  assert.equal(server.sent[1]!.body, '{"user_id":"user:7@example.com","operation":"build","seconds":120,"idempotency_key":"op-1"}');
});

test('the catalog is not signed', async () => {
  const server = new FakeServer().reply('catalog_usd');
  const { client } = makeClient(server);
  await client.getPricingCatalog('USD');
  assert.equal(server.sent[0]!.headers['x-hmac-signature'], undefined);
  assert.equal(server.sent[0]!.headers['x-hmac-key-id'], undefined);
});
