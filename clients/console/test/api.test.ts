import { describe, expect, test } from 'vitest';
import { bodyDigest, canonicalRequest, hmacSha256Hex } from '@billing/client';
import { ConsoleApi, describeError, isAuthFailure, isUnimplemented } from '../src/api.js';

interface Sent { url: URL; method: string; headers: Headers; body: string | undefined }

function fakeFetch(answers: Array<{ status: number; body: unknown; type?: string }>) {
  const sent: Sent[] = [];
  const fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    sent.push({ url: new URL(String(input)), method: init?.method ?? 'GET', headers: new Headers(init?.headers),
      body: typeof init?.body === 'string' ? init.body : undefined });
    const answer = answers.shift();
    if (!answer) throw new Error('unexpected request');
    const text = typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body);
    return new Response(text, { status: answer.status, headers: { 'content-type': answer.type ?? 'application/json' } });
  }) as typeof globalThis.fetch;
  return { sent, fetch };
}

const KEY = { key_id: 'bk_admin_1', secret: 'admin-secret' };

async function verify(sent: Sent) {
  const pathAndQuery = sent.url.pathname + sent.url.search;
  const timestamp = sent.headers.get('x-hmac-timestamp')!;
  const expected = await hmacSha256Hex(KEY.secret, canonicalRequest(sent.method, pathAndQuery, timestamp, await bodyDigest(sent.body)));
  expect(sent.headers.get('x-hmac-key-id')).toBe(KEY.key_id);
  expect(sent.headers.get('x-hmac-signature')).toBe(expected);
}

describe('every console call is a signed admin call', () => {
  test('the ledger read: path variables encoded, repeated types, order and from_at in the signed query', async () => {
    const { sent, fetch } = fakeFetch([{ status: 200, body: { rows: [], next_page_token: '' } }]);
    const api = new ConsoleApi(KEY, { baseUrl: 'http://127.0.0.1:8081', fetch });
    await api.ledger('user:7/x', { types: ['consumption', 'adjustment'], fromAt: '2026-12-01T00:00:00.000Z', order: 'oldest_first', pageSize: 100 });
    expect(sent[0]!.url.pathname).toBe('/v1/billing/admin/accounts/user:7%2Fx/ledger');
    expect(sent[0]!.url.searchParams.getAll('types')).toEqual(['consumption', 'adjustment']);
    expect(sent[0]!.url.searchParams.get('order')).toBe('oldest_first');
    expect(sent[0]!.url.searchParams.get('from_at')).toBe('2026-12-01T00:00:00.000Z');
    expect(sent[0]!.url.searchParams.has('page_token')).toBe(false);
    await verify(sent[0]!);
  });

  test('an action: POST with the reason and the dialog\'s idempotency key in the signed body', async () => {
    const { sent, fetch } = fakeFetch([{ status: 200, body: { audit: { audit_id: 'a1' }, replayed: false } }]);
    const api = new ConsoleApi(KEY, { baseUrl: 'http://127.0.0.1:8081', fetch });
    await api.grant('u-1', { source: 'gift', seconds: 600, reason: 'outage', idempotencyKey: 'idem-1', expiresAt: '2027-01-01T00:00:00.000Z' });
    expect(sent[0]!.method).toBe('POST');
    expect(sent[0]!.url.pathname).toBe('/v1/billing/admin/accounts/u-1/grants');
    expect(JSON.parse(sent[0]!.body!)).toEqual({ source: 'gift', seconds: 600, reason: 'outage', idempotency_key: 'idem-1', expires_at: '2027-01-01T00:00:00.000Z' });
    await verify(sent[0]!);
  });

  test('the CSV export: a signed GET, read as text into a Blob', async () => {
    const csv = 'event_seq,type,seconds\n1,package_credit,3600\n';
    const { sent, fetch } = fakeFetch([{ status: 200, body: csv, type: 'text/csv; charset=utf-8' }]);
    const api = new ConsoleApi(KEY, { baseUrl: 'http://127.0.0.1:8081', fetch });
    const { blob, rowCount } = await api.exportLedger('u-1', { types: ['consumption'] });
    expect(rowCount).toBe(1);
    const text = await new Promise<string>((resolve) => {
      const reader = new FileReader();
      reader.onload = () => resolve(String(reader.result));
      reader.readAsText(blob);
    });
    expect(text).toBe(csv);
    expect(blob.type).toBe('text/csv; charset=utf-8');
    expect(sent[0]!.url.pathname).toBe('/v1/billing/admin/accounts/u-1/ledger.csv');
    await verify(sent[0]!);
  });

  test('errors: 501 is "not built yet", 401/403 a refused key, the JSON body\'s message and field shown', async () => {
    const { fetch } = fakeFetch([
      { status: 501, body: { error: 'UNIMPLEMENTED', http_status: 501, message: 'Method not found' } },
      { status: 403, body: { error: 'PERMISSION_DENIED', http_status: 403, message: 'admin key required' } },
      { status: 400, body: { error: 'INVALID_ARGUMENT', http_status: 400, message: 'seconds: more than available', field: 'seconds', request_id: 'r-1' } },
    ]);
    const api = new ConsoleApi(KEY, { baseUrl: 'http://127.0.0.1:8081', fetch });
    const unimplemented = await api.health().catch((error: unknown) => error);
    expect(isUnimplemented(unimplemented)).toBe(true);
    const forbidden = await api.audit().catch((error: unknown) => error);
    expect(isAuthFailure(forbidden)).toBe(true);
    const invalid = await api.clawBack('u', { seconds: 60, reason: 'r', idempotencyKey: 'k' }).catch((error: unknown) => error);
    expect(describeError(invalid)).toBe('INVALID_ARGUMENT: seconds: more than available (field: seconds) [request r-1]');
  });
});
