import { useEffect, useState } from 'react';
import {
  keepPreviousData, useInfiniteQuery, useMutation, useQuery, useQueryClient,
} from '@tanstack/react-query';
import {
  InsufficientFundsError, type BatchOperationRequest, type BillingEventHistory, type ConsumeOptions,
  type ConsumeResponse, type Operation,
} from '@billing/client';
import { billingKeys, useBillingContext } from './context.js';

/** The guide's timings. */
export const BALANCE_STALE_MS = 30_000;
export const BALANCE_REFETCH_MS = 60_000;
export const CATALOG_STALE_MS = 10 * 60_000;
export const PREFLIGHT_STALE_MS = 30_000;

function useUser(userId: string | undefined): { user: string; arg: string | undefined } {
  const context = useBillingContext();
  const user = userId ?? context.userId;
  return { user, arg: user === '' ? undefined : user };
}

/**
 * The user's balance (GET /v1/billing/balance): stale after 30 s, gcTime 0, so nothing of it is
 * kept once no component shows it (the guide's "cacheTime: 0"), and nothing is ever persisted.
 *
 * Live when the client can stream (watchBalance): each update of the stream is written into the
 * query's cache, and nothing is polled while the stream is up (`live: true`). While it reconnects,
 * or for good when streaming fails or is unsupported, the guide's polling runs instead: every
 * 60 s and on window focus. `{ live: false }` polls only.
 */
export function useUserBalance(userId?: string, options: { live?: boolean } = {}) {
  const { client } = useBillingContext();
  const { user, arg } = useUser(userId);
  const live = useBalanceStream(user, arg, options.live !== false);
  const query = useQuery({
    queryKey: billingKeys.balance(user),
    queryFn: () => client.getEnhancedBalance(arg),
    staleTime: BALANCE_STALE_MS,
    refetchInterval: live ? false : BALANCE_REFETCH_MS,
    refetchOnWindowFocus: !live,
    gcTime: 0,
  });
  return { ...query, live };
}

/** The user's shared balance stream (BalanceStreams) while mounted; true while it is up. */
function useBalanceStream(user: string, arg: string | undefined, wanted: boolean): boolean {
  const { streams } = useBillingContext();
  const [live, setLive] = useState(false);
  useEffect(() => {
    if (!wanted) return undefined;
    const unsubscribe = streams.subscribe(user, arg, setLive);
    return () => {
      unsubscribe();
      setLive(false);
    };
  }, [streams, user, arg, wanted]);
  return live;
}

/** The pricing catalog in one currency, cached 10 minutes (the client adds its ETag cache). */
export function usePricingCatalog(currency: string = 'USD') {
  const { client } = useBillingContext();
  return useQuery({
    queryKey: billingKeys.catalog(currency),
    queryFn: () => client.getPricingCatalog(currency),
    staleTime: CATALOG_STALE_MS,
    refetchOnWindowFocus: false,
  });
}

/** Usage of the current UTC day or month: by operation and by day. */
export function useUsageAnalytics(period: 'day' | 'month' = 'month', userId?: string) {
  const { client } = useBillingContext();
  const { user, arg } = useUser(userId);
  return useQuery({
    queryKey: billingKeys.usage(user, period),
    queryFn: () => client.getUsageAnalytics(arg, period),
    staleTime: BALANCE_STALE_MS,
    placeholderData: keepPreviousData,
  });
}

/** The ledger, newest first, one page at a time: fetchNextPage() loads older events. */
export function useBillingEvents(options: { pageSize?: number; userId?: string } = {}) {
  const { client } = useBillingContext();
  const { user, arg } = useUser(options.userId);
  const pageSize = options.pageSize ?? 50;
  const query = useInfiniteQuery({
    queryKey: billingKeys.events(user, pageSize),
    queryFn: ({ pageParam }) =>
      client.getBillingEvents(arg, { limit: pageSize, ...(pageParam ? { pageToken: pageParam } : {}) }),
    initialPageParam: '',
    getNextPageParam: (last: BillingEventHistory) => last.next_page_token || undefined,
    staleTime: BALANCE_STALE_MS,
  });
  const events = query.data?.pages.flatMap((page) => page.events) ?? [];
  return { ...query, events };
}

export interface ConsumeVariables extends Omit<ConsumeOptions, 'userId'> {
  operation: Operation;
  seconds: number;
}

/**
 * Consume AI time. On success the balance, usage and events are refetched. On a 402 the mutation
 * fails with the InsufficientFundsError, exposed as `insufficientFunds` for InsufficientTimeDialog
 * (the client has already kept the blocked operation and its resume token in sessionStorage);
 * `dismissInsufficientFunds()` clears it.
 */
export function useConsume(userId?: string) {
  const { client } = useBillingContext();
  const { user, arg } = useUser(userId);
  const queryClient = useQueryClient();
  const mutation = useMutation<ConsumeResponse, Error, ConsumeVariables>({
    mutationFn: ({ operation, seconds, ...options }) =>
      client.consume(operation, seconds, { ...options, ...(arg !== undefined ? { userId: arg } : {}) }),
    // A first load still in flight would be joined, not fetched again (React Query cancels only
    // refetches of queries that have data), and could show the balance from before this consume.
    onSettled: async () => {
      await queryClient.cancelQueries({ queryKey: billingKeys.user(user) });
      await queryClient.invalidateQueries({ queryKey: billingKeys.user(user) });
    },
  });
  const insufficientFunds = mutation.error instanceof InsufficientFundsError ? mutation.error : undefined;
  return { ...mutation, insufficientFunds, dismissInsufficientFunds: mutation.reset };
}

/**
 * Batch preflight (read-only, cumulative in order): `warnings` are the operations that would be
 * refused, each with its deficit and the server's suggestions.
 */
export function useBatchPreflight(operations: BatchOperationRequest[], userId?: string) {
  const { client } = useBillingContext();
  const { user, arg } = useUser(userId);
  const query = useQuery({
    queryKey: billingKeys.preflight(user, operations),
    queryFn: () => client.checkSufficientBatch(arg, operations),
    enabled: operations.length > 0,
    staleTime: PREFLIGHT_STALE_MS,
  });
  const warnings = query.data?.filter((result) => !result.ok) ?? [];
  return { ...query, warnings };
}

/**
 * True when the balance names another catalog version than the catalog shown: prices changed.
 * refresh() refetches the catalog (the client's ETag makes it cheap); dismiss() hides the banner
 * until the next version.
 */
export function useCatalogVersionBanner(currency: string = 'USD', userId?: string) {
  const balance = useUserBalance(userId);
  const catalog = usePricingCatalog(currency);
  const queryClient = useQueryClient();
  const [dismissedVersion, setDismissedVersion] = useState<string | undefined>(undefined);
  const balanceVersion = balance.data?.catalog_version;
  const catalogVersion = catalog.data?.version;
  const outdated = Boolean(balanceVersion && catalogVersion && balanceVersion !== catalogVersion);
  return {
    visible: outdated && dismissedVersion !== balanceVersion,
    outdated,
    balanceVersion,
    catalogVersion,
    refreshing: catalog.isFetching,
    refresh: () => queryClient.invalidateQueries({ queryKey: billingKeys.catalog(currency) }),
    dismiss: () => setDismissedVersion(balanceVersion),
  };
}
