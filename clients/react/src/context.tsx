import { createContext, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import type { BillingClient } from '@billing/client';
import { BalanceStreams } from './balance_streams.js';

/** The part of BillingClient the hooks call (a real BillingClient, or a fake in tests). */
export type BillingApi = Pick<
  BillingClient,
  | 'getEnhancedBalance' | 'getPricingCatalog' | 'getUsageAnalytics' | 'getBillingEvents'
  | 'consume' | 'checkSufficientBatch'
> & Partial<Pick<BillingClient, 'watchBalance'>>; // without it, the balance is polled

interface BillingContextValue {
  client: BillingApi;
  /** The user the hooks act for when not given one ("" = the client's default, its key's user). */
  userId: string;
  /** The provider's live balance streams, one per user, shared by every hook that shows it. */
  streams: BalanceStreams;
}

const BillingContext = createContext<BillingContextValue | null>(null);

/** Root of every billing query key; user data lives under [BILLING_KEY, 'user', userId]. */
export const BILLING_KEY = 'billing' as const;

export const billingKeys = {
  all: [BILLING_KEY] as const,
  user: (userId: string) => [BILLING_KEY, 'user', userId] as const,
  balance: (userId: string) => [BILLING_KEY, 'user', userId, 'balance'] as const,
  usage: (userId: string, period: string) => [BILLING_KEY, 'user', userId, 'usage', period] as const,
  events: (userId: string, pageSize: number) => [BILLING_KEY, 'user', userId, 'events', pageSize] as const,
  preflight: (userId: string, operations: unknown) => [BILLING_KEY, 'user', userId, 'preflight', operations] as const,
  catalog: (currency: string) => [BILLING_KEY, 'catalog', currency.toUpperCase()] as const,
};

/**
 * A QueryClient as the integration guide asks: in memory only (no persister: user data never
 * outlives the page's session), the client does its own retries (503 / Retry-After), so React
 * Query does not retry on top; per-query timings are set by the hooks.
 */
export function createBillingQueryClient(): QueryClient {
  return new QueryClient({
    defaultOptions: {
      queries: { retry: false, refetchOnWindowFocus: true },
      mutations: { retry: false },
    },
  });
}

export interface BillingProviderProps {
  client: BillingApi;
  /** Default user of the hooks (default: the client's own default user). */
  userId?: string;
  /** An app's own QueryClient; default: createBillingQueryClient(). */
  queryClient?: QueryClient;
  children?: ReactNode;
}

/**
 * Supplies the BillingClient and a QueryClient to the billing hooks. When the user changes or the
 * provider unmounts (sign-out), that user's cached data is removed from the QueryClient.
 */
export function BillingProvider({ client, userId = '', queryClient, children }: BillingProviderProps) {
  const [ownQueryClient] = useState(() => queryClient ?? createBillingQueryClient());
  const qc = queryClient ?? ownQueryClient;
  const streams = useMemo(() => new BalanceStreams(client, qc), [client, qc]);
  const value = useMemo(() => ({ client, userId, streams }), [client, userId, streams]);
  useEffect(() => () => { qc.removeQueries({ queryKey: billingKeys.user(userId) }); }, [qc, userId]);
  return (
    <QueryClientProvider client={qc}>
      <BillingContext.Provider value={value}>{children}</BillingContext.Provider>
    </QueryClientProvider>
  );
}

export function useBillingContext(): BillingContextValue {
  const value = useContext(BillingContext);
  if (!value) throw new Error('billing hooks need a <BillingProvider>');
  return value;
}

/** The BillingClient given to the provider. */
export function useBillingClient(): BillingApi {
  return useBillingContext().client;
}
