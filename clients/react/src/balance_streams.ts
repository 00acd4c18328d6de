import type { QueryClient } from '@tanstack/react-query';
import type { BalanceWatch } from '@billing/client';
import { billingKeys, type BillingApi } from './context.js';

type LiveListener = (live: boolean) => void;

interface SharedStream {
  live: boolean;
  listeners: Set<LiveListener>;
  watch?: BalanceWatch;
}

/**
 * One balance stream per user for a whole provider, however many components show the balance:
 * the server bounds streams per user (5 by default), and a page shows the balance in several
 * places. Opened by the first subscriber, closed with the last.
 *
 * Every update is written into the balance query's cache; an update after the first (a change,
 * not the stream's opening snapshot) also marks the user's history and usage stale, so a consume
 * made elsewhere shows everywhere on the page without a reload.
 */
export class BalanceStreams {
  private readonly streams = new Map<string, SharedStream>();

  constructor(private readonly client: BillingApi, private readonly queryClient: QueryClient) {}

  /** Starts (or joins) the user's stream; `onLive` hears whether it is up. Returns the unsubscribe. */
  subscribe(user: string, arg: string | undefined, onLive: LiveListener): () => void {
    const stream = this.streams.get(user) ?? this.open(user, arg);
    if (stream === undefined) return () => undefined;
    stream.listeners.add(onLive);
    onLive(stream.live);
    return () => {
      stream.listeners.delete(onLive);
      if (stream.listeners.size === 0 && this.streams.get(user) === stream) {
        this.streams.delete(user);
        stream.watch?.stop();
      }
    };
  }

  private open(user: string, arg: string | undefined): SharedStream | undefined {
    if (!this.client.watchBalance) return undefined;
    const stream: SharedStream = { live: false, listeners: new Set() };
    const setLive = (live: boolean): void => {
      if (stream.live === live) return;
      stream.live = live;
      for (const listener of stream.listeners) listener(live);
    };
    let updates = 0;
    stream.watch = this.client.watchBalance(arg, (balance) => {
      this.queryClient.setQueryData(billingKeys.balance(user), balance);
      if (updates++ > 0) {
        void this.queryClient.invalidateQueries({ queryKey: [...billingKeys.user(user), 'events'] });
        void this.queryClient.invalidateQueries({ queryKey: [...billingKeys.user(user), 'usage'] });
      }
      setLive(true);
    }, {
      onHeartbeat: () => setLive(true),
      onReconnect: () => setLive(false),
    });
    stream.watch.finished.catch(() => setLive(false)); // unsupported or refused: polling takes over for good
    this.streams.set(user, stream);
    return stream;
  }
}
