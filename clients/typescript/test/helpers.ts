import { readFileSync } from 'node:fs';
import { BillingClient, type BillingClientOptions } from '../src/index.js';
import { MemoryStorage } from '../src/storage.js';

/** test/fixtures/ (the compiled tests live in build/test/). */
const FIXTURES = new URL('../../test/fixtures/', import.meta.url);

export interface Exchange {
  recorded?: boolean;
  request: { method: string; path: string; body: unknown; headers: Record<string, string> };
  response: { status: number; headers: Record<string, string>; body: unknown };
}

export function fixture(name: string): Exchange {
  return JSON.parse(readFileSync(new URL(`${name}.json`, FIXTURES), 'utf8')) as Exchange;
}

export function body<T>(name: string): T {
  return structuredClone(fixture(name).response.body) as T;
}

/** The user the recorded answers belong to (fixtures were captured for one user). */
export const RECORDED_USER = (fixture('session_key').response.body as { user_id: string }).user_id;

export interface SentRequest {
  url: URL;
  method: string;
  headers: Record<string, string>;
  body: string | undefined;
}

/** A recorded answer by name, an answer, or a function of the request (a Response: sent as is, e.g. a stream). */
type Reply = string | Exchange['response'] | ((request: SentRequest) => Exchange['response'] | Error | Response);

/** A fetch that answers from recorded exchanges, in order, and keeps what it was sent. */
export class FakeServer {
  readonly sent: SentRequest[] = [];
  private readonly replies: Reply[] = [];

  reply(...replies: Reply[]): this {
    this.replies.push(...replies);
    return this;
  }

  get pending(): number {
    return this.replies.length;
  }

  readonly fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const headers: Record<string, string> = {};
    new Headers(init?.headers).forEach((value, name) => {
      headers[name] = value;
    });
    const request: SentRequest = {
      url: new URL(String(input)),
      method: init?.method ?? 'GET',
      headers,
      body: typeof init?.body === 'string' ? init.body : undefined,
    };
    this.sent.push(request);
    const next = this.replies.shift();
    if (next === undefined) throw new Error(`unexpected request ${request.method} ${request.url}`);
    const answer = typeof next === 'function' ? next(request) : typeof next === 'string' ? fixture(next).response : next;
    if (answer instanceof Error) throw answer;
    if (answer instanceof Response) return answer;
    const text = answer.body === null || answer.body === undefined ? null : JSON.stringify(answer.body);
    return new Response(answer.status === 304 ? null : text, { status: answer.status, headers: answer.headers });
  };
}

export const SESSION_KEY = { key_id: 'bk_test_session', secret: 'test-secret', user_id: RECORDED_USER };

/** A client on the fake server: a fixed clock, no real sleeping (the waits are recorded). */
export function makeClient(server: FakeServer, options: Partial<BillingClientOptions> = {}) {
  const sleeps: number[] = [];
  let clock = Date.parse('2026-12-02T19:34:02Z');
  let uuid = 0;
  const client = new BillingClient({
    baseUrl: 'http://billing.test',
    credentials: SESSION_KEY,
    fetch: server.fetch,
    storage: new MemoryStorage(),
    now: () => clock,
    sleep: async (ms) => {
      sleeps.push(ms);
      clock += ms;
    },
    randomUUID: () => `uuid-${++uuid}`,
    ...options,
  });
  return {
    client,
    sleeps,
    advance: (ms: number) => {
      clock += ms;
    },
    now: () => clock,
  };
}
