import { BillingApiError } from './errors.js';
import { SseParser } from './sse.js';
import type { BalanceUpdate, EnhancedBalance } from './types.js';

export interface WatchBalanceOptions {
  /** The version of the balance the caller already shows (a BalanceUpdate's): the stream then
   * starts with a heartbeat instead of sending it again (until the next UTC midnight, when the
   * balance may show something else at the same version). Default: none, the balance comes first. */
  sinceVersion?: string;
  /** Every heartbeat (about every 15 s while nothing changes). */
  onHeartbeat?: () => void;
  /** A failure the watch recovers from by reconnecting (network, 429, 5xx, a stream that ended). */
  onReconnect?: (error: unknown, delayMs: number) => void;
  /** Stops the watch (as stop() does). */
  signal?: AbortSignal;
  /** First wait before a reconnect (default 1 s), doubled per failure in a row, capped (default 30 s). */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Nothing at all (not even a heartbeat) for this long: the connection is taken for dead and
   * replaced (default 45 s: three heartbeats). */
  idleTimeoutMs?: number;
  /** The clock (ms since the epoch; default Date.now), for tests. */
  now?: () => number;
}

export interface BalanceWatch {
  /** Ends the watch; `finished` then resolves. */
  stop(): void;
  /** Resolves when stopped; rejects with the error that ended the watch for good (a BillingApiError
   * for 400/401/403/404, or `StreamUnsupportedError`): the caller should poll instead. */
  readonly finished: Promise<void>;
}

/** The platform cannot read a response as a stream (no ReadableStream body), or the server did
 * not answer with an event stream: use polling. */
export class StreamUnsupportedError extends Error {
  override readonly name = 'StreamUnsupportedError';
}

/** What the watch needs of the client: one signed GET of the stream, resuming after a version;
 * a non-2xx answer is thrown as a BillingApiError. */
export type OpenStream = (sinceVersion: string | undefined, signal: AbortSignal) => Promise<Response>;
export type Sleep = (ms: number, signal: AbortSignal) => Promise<void>;

const FATAL_STATUSES = new Set([400, 401, 403, 404]);

/**
 * Keeps a balance stream open: calls onUpdate with every new balance, reconnects with backoff
 * after any failure it can recover from, passing the last version seen (since_version) so a
 * change made while disconnected arrives at once and nothing is sent twice.
 */
export function watchBalanceStream(
  open: OpenStream, onUpdate: (balance: EnhancedBalance, version: string) => void,
  options: WatchBalanceOptions = {}, sleep: Sleep | undefined = undefined,
): BalanceWatch {
  const wait: Sleep = sleep ?? abortableSleep;
  const stopping = new AbortController();
  const stop = (): void => stopping.abort();
  if (options.signal?.aborted) stop();
  options.signal?.addEventListener('abort', stop, { once: true });
  const baseDelayMs = options.baseDelayMs ?? 1_000;
  const maxDelayMs = options.maxDelayMs ?? 30_000;
  let sinceVersion = options.sinceVersion;
  const now = options.now ?? Date.now;
  // A balance changes with time too (a bucket expires, the day's bonus resets, a period ends)
  // without a new version: a reconnect after that instant asks for the balance again.
  // A caller's own version (options.sinceVersion) comes without its balance: trusted until the day ends.
  let resumableUntil = sinceVersion === undefined ? Number.POSITIVE_INFINITY : nextUtcMidnight(now());

  const run = async (): Promise<void> => {
    let failures = 0;
    while (!stopping.signal.aborted) {
      let retryAfterMs: number | undefined;
      if (now() >= resumableUntil) sinceVersion = undefined;
      try {
        await readOnce(open, sinceVersion, stopping.signal, options.idleTimeoutMs ?? 45_000, (update) => {
          failures = 0;
          if (update.heartbeat || update.balance === undefined) {
            options.onHeartbeat?.();
            return;
          }
          sinceVersion = update.version;
          resumableUntil = changesByItselfAt(update.balance, now());
          onUpdate(update.balance, update.version);
        });
        if (stopping.signal.aborted) return;
        throw new Error('the balance stream ended');
      } catch (error) {
        if (stopping.signal.aborted) return;
        if (error instanceof StreamUnsupportedError) throw error;
        if (error instanceof BillingApiError) {
          if (FATAL_STATUSES.has(error.status)) throw error;
          if (error.retryAfterSeconds !== undefined) retryAfterMs = error.retryAfterSeconds * 1000;
        }
        failures += 1;
        const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** (failures - 1));
        const delayMs = retryAfterMs ?? Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
        options.onReconnect?.(error, delayMs);
        await wait(delayMs, stopping.signal);
      }
    }
  };

  const finished = run().finally(() => options.signal?.removeEventListener('abort', stop));
  return { stop, finished };
}

/** The next instant the balance changes with nothing written (the server's
 * domain/balance.changes_by_itself_at): the first expiry, the period's end, the next UTC midnight. */
export function changesByItselfAt(balance: EnhancedBalance, nowMs: number): number {
  const midnight = nextUtcMidnight(nowMs);
  const instants = [balance.totals.next_expiry_at, balance.subscription?.current_period_end_at]
    .filter((at): at is string => typeof at === 'string')
    .map((at) => Date.parse(at))
    .filter((at) => Number.isFinite(at) && at > nowMs);
  return Math.min(midnight, ...instants);
}

function nextUtcMidnight(nowMs: number): number {
  const today = new Date(nowMs);
  return Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() + 1);
}

/** One connection: resolves when the stream ends, rejects on an error answer or a failure. */
async function readOnce(
  open: OpenStream, sinceVersion: string | undefined, stopping: AbortSignal, idleTimeoutMs: number,
  onMessage: (update: BalanceUpdate) => void,
): Promise<void> {
  const connection = new AbortController();
  const abort = (): void => connection.abort();
  stopping.addEventListener('abort', abort, { once: true });
  let idle: ReturnType<typeof setTimeout> | undefined;
  const alive = (): void => {
    clearTimeout(idle);
    idle = setTimeout(abort, idleTimeoutMs);
  };
  try {
    alive();
    const response = await open(sinceVersion, connection.signal);
    if (connection.signal.aborted) return;
    const contentType = response.headers.get('content-type') ?? '';
    if (!contentType.startsWith('text/event-stream') || !response.body) {
      throw new StreamUnsupportedError(`not an event stream (${contentType || 'no body'})`);
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    const parser = new SseParser();
    for (;;) {
      const { value, done } = await reader.read();
      if (done || connection.signal.aborted) return;
      alive();
      for (const data of parser.push(value)) {
        if (stopping.aborted) return;
        onMessage(JSON.parse(data) as BalanceUpdate);
      }
    }
  } finally {
    clearTimeout(idle);
    stopping.removeEventListener('abort', abort);
    connection.abort(); // releases the connection when the reader stopped early
  }
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
