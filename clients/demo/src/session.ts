import type { Credentials } from '@billing/client';

/** What the demo's app backend (devstack.demo_server) tells the page: where the billing REST API is,
 * who is signed in, and the currency prices are shown in. */
export interface DemoConfig {
  billing_url: string;
  user_id: string;
  currency: string;
}

async function requestJson<T>(path: string, method: 'GET' | 'POST'): Promise<T> {
  const response = await fetch(path, { method, headers: { Accept: 'application/json' } });
  if (!response.ok) throw new Error(`${method} ${path}: HTTP ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

export function loadConfig(): Promise<DemoConfig> {
  return requestJson<DemoConfig>('/demo/config', 'GET');
}

/**
 * The browser's only key: a short-lived user key the app backend mints with CreateSessionKey
 * ({key_id, secret, user_id, expires_at}). The client calls this lazily, again shortly before
 * expires_at, and after a 401.
 */
export function fetchSessionKey(): Promise<Credentials> {
  return requestJson<Credentials>('/demo/session', 'POST');
}
