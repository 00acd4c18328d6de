/**
 * The operator's key: in memory and in this tab's sessionStorage only (never localStorage, never a
 * cookie), so closing the tab forgets it and no other site can make the browser use it (every call
 * is signed by this page's script; nothing is sent automatically). A one-time URL from
 * `billing console-login` (/console/#login=<code>) is redeemed for a short-lived admin key; the
 * fragment leaves the address bar (and the history entry) before the code is even sent.
 */
import type { ConsoleCredentials } from '@billing/client/admin';

export interface OperatorKey {
  key_id: string;
  secret: string;
  /** RFC 3339; a redeemed console login's key expires, a pasted key may not say. */
  expires_at?: string;
}

export const KEY_STORAGE_NAME = 'billing.console.key';
export const REDEEM_PATH = '/v1/billing/admin/console-logins/redeem';

export interface SessionStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export function loadKey(store: SessionStore, nowMs: number): OperatorKey | undefined {
  const text = store.getItem(KEY_STORAGE_NAME);
  if (!text) return undefined;
  try {
    const parsed = JSON.parse(text) as Partial<OperatorKey>;
    if (typeof parsed.key_id !== 'string' || typeof parsed.secret !== 'string' || !parsed.key_id || !parsed.secret) {
      store.removeItem(KEY_STORAGE_NAME);
      return undefined;
    }
    const key: OperatorKey = { key_id: parsed.key_id, secret: parsed.secret };
    if (typeof parsed.expires_at === 'string' && parsed.expires_at) {
      if (Date.parse(parsed.expires_at) <= nowMs) {
        store.removeItem(KEY_STORAGE_NAME); // expired: sign in again
        return undefined;
      }
      key.expires_at = parsed.expires_at;
    }
    return key;
  } catch {
    store.removeItem(KEY_STORAGE_NAME);
    return undefined;
  }
}

export function saveKey(store: SessionStore, key: OperatorKey): void {
  store.setItem(KEY_STORAGE_NAME, JSON.stringify(key));
}

export function forgetKey(store: SessionStore): void {
  store.removeItem(KEY_STORAGE_NAME);
}

/** A pasted key: both parts trimmed and non-empty, else a message naming what is missing. */
export function parsePastedKey(keyId: string, secret: string): OperatorKey | string {
  const id = keyId.trim();
  const value = secret.trim();
  if (!id) return 'Enter the key id.';
  if (!value) return 'Enter the secret.';
  if (/\s/.test(id) || /\s/.test(value)) return 'A key id or secret has no spaces: check what was pasted.';
  return { key_id: id, secret: value };
}

/** The code of a `#login=<code>` fragment (other parameters ignored), else undefined. */
export function loginCodeFromHash(hash: string): string | undefined {
  const text = hash.startsWith('#') ? hash.slice(1) : hash;
  if (!text.startsWith('login=') && !text.includes('&login=')) return undefined;
  const code = new URLSearchParams(text).get('login');
  return code && /^[A-Za-z0-9_-]{1,200}$/.test(code) ? code : undefined;
}

export interface LoginFlowEnvironment {
  location: { hash: string; pathname: string; search: string };
  history: { replaceState(data: unknown, unused: string, url?: string | URL | null): void; state: unknown };
  fetch: typeof fetch;
  store: SessionStore;
}

export type LoginOutcome =
  | { status: 'none' }
  | { status: 'signed-in'; key: OperatorKey }
  | { status: 'failed'; message: string };

/**
 * Redeems a `#login=<code>` fragment, if the page has one: the fragment is replaced first (the code
 * is single-use and must not stay in the address bar, the history or a screenshot), then the code
 * is posted (unsigned: the code is the credential) and the key it buys kept for this tab.
 */
export async function redeemLoginFragment(env: LoginFlowEnvironment): Promise<LoginOutcome> {
  const code = loginCodeFromHash(env.location.hash);
  if (code === undefined) {
    if (/(^#|&)login=/.test(env.location.hash)) {
      env.history.replaceState(env.history.state, '', env.location.pathname + env.location.search);
      return { status: 'failed', message: 'The sign-in link is malformed: run `billing console-login` again.' };
    }
    return { status: 'none' };
  }
  env.history.replaceState(env.history.state, '', env.location.pathname + env.location.search);
  let response: Response;
  try {
    response = await env.fetch(REDEEM_PATH, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ code }),
      credentials: 'omit',
    });
  } catch (error) {
    return { status: 'failed', message: `The sign-in link could not be redeemed: ${String(error)}` };
  }
  const body = await response.json().catch(() => undefined) as (Partial<ConsoleCredentials> & { message?: string }) | undefined;
  if (!response.ok || !body?.key_id || !body.secret) {
    const why = body?.message ?? `HTTP ${response.status}`;
    return { status: 'failed', message: `The sign-in link was refused (${why}). Links work once, for 10 minutes: run \`billing console-login\` again.` };
  }
  const key: OperatorKey = { key_id: body.key_id, secret: body.secret, ...(body.expires_at ? { expires_at: body.expires_at } : {}) };
  saveKey(env.store, key);
  return { status: 'signed-in', key };
}
