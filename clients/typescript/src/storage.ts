/**
 * Where the client keeps blocked operations and their resume tokens between the 402 and the
 * return from Checkout (`?purchased=true`): sessionStorage (one tab, gone when it closes), never
 * localStorage (shared by every tab and kept forever: a token there outlives the session).
 */

/** The part of the Web Storage API the client uses. */
export interface KeyValueStore {
  readonly length: number;
  key(index: number): string | null;
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** A Storage in memory, for platforms without sessionStorage (Node, workers): one per client. */
export class MemoryStorage implements KeyValueStore {
  private readonly items = new Map<string, string>();

  get length(): number {
    return this.items.size;
  }

  key(index: number): string | null {
    return [...this.items.keys()][index] ?? null;
  }

  getItem(key: string): string | null {
    return this.items.get(key) ?? null;
  }

  setItem(key: string, value: string): void {
    this.items.set(key, String(value));
  }

  removeItem(key: string): void {
    this.items.delete(key);
  }

  clear(): void {
    this.items.clear();
  }
}

/** sessionStorage when the platform has one (and lets us use it), else memory. */
export function defaultStorage(): KeyValueStore {
  try {
    const storage = (globalThis as { sessionStorage?: KeyValueStore }).sessionStorage;
    if (storage) {
      const probe = '__billing_probe__';
      storage.setItem(probe, '1');
      storage.removeItem(probe);
      return storage;
    }
  } catch {
    // Blocked (sandboxed iframe, privacy settings): fall back to memory.
  }
  return new MemoryStorage();
}

/** Refuses localStorage: resume tokens must not outlive the tab's session. */
export function checkNotLocalStorage(storage: KeyValueStore): void {
  let local: unknown;
  try {
    local = (globalThis as { localStorage?: unknown }).localStorage;
  } catch {
    return;
  }
  if (local !== undefined && storage === local) {
    throw new Error('BillingClient: resume tokens are kept in sessionStorage, never localStorage');
  }
}

/** A blocked consume, kept until the user comes back from buying time. */
export interface ResumeEntry {
  user_id: string;
  operation: string;
  seconds: number;
  /** The consume's own key: the resumed call reuses it, so it can never be charged twice. */
  idempotency_key: string;
  resume_token: string;
  /** Unix milliseconds: tokens are valid one hour. */
  stored_at: number;
  /** Whatever the app passed with the consume (JSON), to redo its own work after the resume. */
  context?: unknown;
}

export const RESUME_KEY_PREFIX = 'billing.resume:';
/** The server's token lifetime. */
export const RESUME_TOKEN_TTL_MS = 60 * 60 * 1000;

/** Blocked operations in a KeyValueStore, one per user and operation (a newer 402 replaces it). */
export class ResumeStore {
  constructor(private readonly storage: KeyValueStore) {}

  static keyFor(userId: string, operation: string): string {
    return `${RESUME_KEY_PREFIX}${encodeURIComponent(userId)}:${encodeURIComponent(operation)}`;
  }

  save(entry: ResumeEntry): void {
    this.storage.setItem(ResumeStore.keyFor(entry.user_id, entry.operation), JSON.stringify(entry));
  }

  get(userId: string, operation: string): ResumeEntry | undefined {
    return parseEntry(this.storage.getItem(ResumeStore.keyFor(userId, operation)));
  }

  remove(userId: string, operation: string): void {
    this.storage.removeItem(ResumeStore.keyFor(userId, operation));
  }

  /** Entries still within the token's hour, oldest first; expired or unreadable ones are dropped. */
  list(nowMs: number): ResumeEntry[] {
    const keys: string[] = [];
    for (let i = 0; i < this.storage.length; i++) {
      const key = this.storage.key(i);
      if (key?.startsWith(RESUME_KEY_PREFIX)) keys.push(key);
    }
    const live: ResumeEntry[] = [];
    for (const key of keys) {
      const entry = parseEntry(this.storage.getItem(key));
      if (!entry || nowMs - entry.stored_at >= RESUME_TOKEN_TTL_MS) {
        this.storage.removeItem(key);
      } else {
        live.push(entry);
      }
    }
    return live.sort((a, b) => a.stored_at - b.stored_at);
  }
}

function parseEntry(text: string | null): ResumeEntry | undefined {
  if (text === null) return undefined;
  try {
    const value = JSON.parse(text) as Partial<ResumeEntry> | null;
    if (
      value && typeof value.user_id === 'string' && typeof value.operation === 'string' &&
      typeof value.seconds === 'number' && typeof value.idempotency_key === 'string' &&
      typeof value.resume_token === 'string' && typeof value.stored_at === 'number'
    ) {
      return value as ResumeEntry;
    }
  } catch {
    // not ours, or damaged
  }
  return undefined;
}
