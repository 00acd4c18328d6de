import { describe, expect, test, vi } from 'vitest';
import {
  KEY_STORAGE_NAME, REDEEM_PATH, forgetKey, loadKey, loginCodeFromHash, parsePastedKey, redeemLoginFragment, saveKey,
  type LoginFlowEnvironment, type SessionStore,
} from '../src/session.js';

class MemoryStore implements SessionStore {
  readonly items = new Map<string, string>();
  getItem(key: string) { return this.items.get(key) ?? null; }
  setItem(key: string, value: string) { this.items.set(key, value); }
  removeItem(key: string) { this.items.delete(key); }
}

const NOW = Date.parse('2026-12-02T12:00:00Z');

function environment(hash: string, answer: () => Response | Promise<Response>) {
  const store = new MemoryStore();
  const calls: Array<{ url: string; init: RequestInit | undefined; hashWhenSent: string }> = [];
  const location = { hash, pathname: '/console/', search: '' };
  const replaced: string[] = [];
  const env: LoginFlowEnvironment = {
    location,
    history: {
      state: null,
      replaceState: (_data, _unused, url) => {
        replaced.push(String(url));
        location.hash = '';
      },
    },
    fetch: vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
      calls.push({ url: String(input), init, hashWhenSent: location.hash });
      return answer();
    }) as unknown as typeof fetch,
    store,
  };
  return { env, store, calls, replaced };
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
}

describe('the one-time login link (#login=<code>)', () => {
  test('redeemed once, unsigned, the fragment gone from the address bar before the code is sent; the key kept for this tab', async () => {
    const { env, store, calls, replaced } = environment('#login=abc_DEF-123', () =>
      json(200, { key_id: 'bk_console_1', secret: 's3cret', expires_at: '2026-12-02T20:00:00Z' }));
    const outcome = await redeemLoginFragment(env);
    expect(outcome).toEqual({ status: 'signed-in', key: { key_id: 'bk_console_1', secret: 's3cret', expires_at: '2026-12-02T20:00:00Z' } });
    expect(replaced).toEqual(['/console/']);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.url).toBe(REDEEM_PATH);
    expect(calls[0]!.hashWhenSent).toBe('');
    expect(calls[0]!.init?.method).toBe('POST');
    expect(JSON.parse(String(calls[0]!.init?.body))).toEqual({ code: 'abc_DEF-123' });
    expect(calls[0]!.init?.credentials).toBe('omit');
    expect(new Headers(calls[0]!.init?.headers).has('x-hmac-signature')).toBe(false);
    expect(loadKey(store, NOW)).toEqual({ key_id: 'bk_console_1', secret: 's3cret', expires_at: '2026-12-02T20:00:00Z' });
  });

  test('a refused code: the API\'s message, no key, the fragment gone all the same', async () => {
    const { env, store, replaced } = environment('#login=used', () =>
      json(404, { error: 'NOT_FOUND', http_status: 404, message: 'unknown or used login code' }));
    const outcome = await redeemLoginFragment(env);
    expect(outcome.status).toBe('failed');
    expect(outcome.status === 'failed' && outcome.message).toContain('unknown or used login code');
    expect(replaced).toEqual(['/console/']);
    expect(store.items.size).toBe(0);
  });

  test('not yet built on this server (501): a failure that says so', async () => {
    const { env } = environment('#login=abc', () => json(501, { error: 'UNIMPLEMENTED', http_status: 501, message: 'not implemented' }));
    const outcome = await redeemLoginFragment(env);
    expect(outcome.status === 'failed' && outcome.message).toContain('not implemented');
  });

  test('no fragment: nothing sent, nothing replaced', async () => {
    const { env, calls, replaced } = environment('#/accounts', () => json(200, {}));
    expect(await redeemLoginFragment(env)).toEqual({ status: 'none' });
    expect(calls).toHaveLength(0);
    expect(replaced).toHaveLength(0);
  });

  test('a malformed code: removed, never sent', async () => {
    const { env, calls, replaced } = environment('#login=<script>', () => json(200, {}));
    expect((await redeemLoginFragment(env)).status).toBe('failed');
    expect(calls).toHaveLength(0);
    expect(replaced).toEqual(['/console/']);
  });

  test('codes read from the fragment', () => {
    expect(loginCodeFromHash('#login=abc')).toBe('abc');
    expect(loginCodeFromHash('login=abc&x=1')).toBe('abc');
    expect(loginCodeFromHash('#/accounts')).toBeUndefined();
    expect(loginCodeFromHash('#login=')).toBeUndefined();
  });
});

describe('the key in sessionStorage', () => {
  test('kept, read back, forgotten', () => {
    const store = new MemoryStore();
    saveKey(store, { key_id: 'bk_admin', secret: 'x' });
    expect(loadKey(store, NOW)).toEqual({ key_id: 'bk_admin', secret: 'x' });
    forgetKey(store);
    expect(loadKey(store, NOW)).toBeUndefined();
  });

  test('an expired or damaged key is dropped', () => {
    const store = new MemoryStore();
    saveKey(store, { key_id: 'bk', secret: 'x', expires_at: '2026-12-02T11:59:59Z' });
    expect(loadKey(store, NOW)).toBeUndefined();
    expect(store.items.has(KEY_STORAGE_NAME)).toBe(false);
    store.setItem(KEY_STORAGE_NAME, '{not json');
    expect(loadKey(store, NOW)).toBeUndefined();
    store.setItem(KEY_STORAGE_NAME, JSON.stringify({ key_id: 'bk' }));
    expect(loadKey(store, NOW)).toBeUndefined();
  });

  test('a pasted key is trimmed; an empty or spaced one is refused with a message', () => {
    expect(parsePastedKey('  bk_1 ', '\tsecret\n')).toEqual({ key_id: 'bk_1', secret: 'secret' });
    expect(parsePastedKey('', 's')).toBe('Enter the key id.');
    expect(parsePastedKey('k', ' ')).toBe('Enter the secret.');
    expect(typeof parsePastedKey('k 1', 's')).toBe('string');
  });

  test('the console never uses localStorage or cookies for the key', async () => {
    const { env } = environment('#login=abc', () => json(200, { key_id: 'k', secret: 's' }));
    localStorage.clear();
    await redeemLoginFragment(env);
    expect(localStorage.length).toBe(0);
    expect(document.cookie).toBe('');
  });
});
