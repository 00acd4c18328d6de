import { act, renderHook, waitFor } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';
import {
  InsufficientFundsError, StreamUnsupportedError, type ConsumeResponse, type EnhancedBalance, type WatchBalanceOptions,
} from '@billing/client';
import {
  billingKeys, useBatchPreflight, useBillingEvents, useCatalogVersionBanner, useConsume, usePricingCatalog,
  useUserBalance,
} from '../src/index.js';
import { fakeClient, fixture, renderWith } from './helpers.js';

describe('useUserBalance', () => {
  it('polls as the guide says and keeps nothing once unused', async () => {
    const client = fakeClient();
    const { wrapper, queryClient } = renderWith(client);
    const { result, unmount } = renderHook(() => useUserBalance(), { wrapper });
    await waitFor(() => expect(result.current.isSuccess).toBe(true));
    expect(result.current.data?.totals.total_seconds).toBe(2700);
    expect(client.getEnhancedBalance).toHaveBeenCalledWith('u1');
    const query = queryClient.getQueryCache().find({ queryKey: billingKeys.balance('u1') });
    const options = query?.options as Record<string, unknown>;
    expect(options['staleTime']).toBe(30_000);
    expect(options['refetchInterval']).toBe(60_000);
    expect(options['refetchOnWindowFocus']).toBe(true);
    expect(options['gcTime']).toBe(0);
    unmount();
    await waitFor(() => expect(queryClient.getQueryCache().find({ queryKey: billingKeys.balance('u1') })).toBeUndefined());
  });
});

/** A watchBalance stand-in: the test pushes updates, heartbeats, reconnects and the end. */
function fakeStream() {
  let handlers: { onUpdate: (balance: EnhancedBalance, version: string) => void; options: WatchBalanceOptions } | undefined;
  let fail: (error: unknown) => void = () => undefined;
  const stop = vi.fn();
  const watchBalance = vi.fn((_user: string | undefined, onUpdate: (b: EnhancedBalance, v: string) => void,
    options: WatchBalanceOptions = {}) => {
    handlers = { onUpdate, options };
    const finished = new Promise<void>((_resolve, reject) => {
      fail = reject;
    });
    return { stop, finished };
  });
  return {
    watchBalance, stop,
    update: (balance: EnhancedBalance, version: string) => act(() => handlers!.onUpdate(balance, version)),
    reconnecting: () => act(() => handlers!.options.onReconnect?.(new Error('network'), 1000)),
    unsupported: () => act(() => fail(new StreamUnsupportedError('no stream'))),
  };
}

describe('useUserBalance with a stream', () => {
  it('writes each update into the cache and stops polling while the stream is up', async () => {
    const stream = fakeStream();
    const client = fakeClient({ watchBalance: stream.watchBalance });
    const { wrapper, queryClient } = renderWith(client);
    const { result, unmount } = renderHook(() => useUserBalance(), { wrapper });
    await waitFor(() => expect(result.current.isSuccess).toBe(true));
    expect(stream.watchBalance).toHaveBeenCalledWith('u1', expect.any(Function), expect.any(Object));
    const changed = { ...fixture<EnhancedBalance>('balance_new') };
    changed.totals = { ...changed.totals, total_seconds: 42 };
    await stream.update(changed, '9');
    expect(result.current.data?.totals.total_seconds).toBe(42);
    expect(result.current.live).toBe(true);
    const options = queryClient.getQueryCache().find({ queryKey: billingKeys.balance('u1') })?.options as Record<string, unknown>;
    expect(options['refetchInterval']).toBe(false);
    unmount();
    expect(stream.stop).toHaveBeenCalled();
  });

  it('polls as the guide says while the stream reconnects, and for good when it is unsupported', async () => {
    const stream = fakeStream();
    const client = fakeClient({ watchBalance: stream.watchBalance });
    const { wrapper, queryClient } = renderWith(client);
    const { result } = renderHook(() => useUserBalance(), { wrapper });
    const interval = () => (queryClient.getQueryCache().find({ queryKey: billingKeys.balance('u1') })
      ?.options as Record<string, unknown>)['refetchInterval'];
    await waitFor(() => expect(result.current.isSuccess).toBe(true));
    await stream.update(fixture<EnhancedBalance>('balance_new'), '3');
    expect(interval()).toBe(false);
    await stream.reconnecting();
    expect(result.current.live).toBe(false);
    expect(interval()).toBe(60_000);
    await stream.update(fixture<EnhancedBalance>('balance_new'), '4');
    expect(interval()).toBe(false);
    await stream.unsupported();
    await waitFor(() => expect(result.current.live).toBe(false));
    expect(interval()).toBe(60_000);
  });

  it('shares one stream among every hook of the user, and a change refreshes the history and usage', async () => {
    const stream = fakeStream();
    const client = fakeClient({ watchBalance: stream.watchBalance });
    const { wrapper } = renderWith(client);
    const { result, unmount } = renderHook(() => ({
      header: useUserBalance(), panel: useUserBalance(), events: useBillingEvents({ pageSize: 20 }),
    }), { wrapper });
    await waitFor(() => expect(result.current.events.isSuccess).toBe(true));
    expect(stream.watchBalance).toHaveBeenCalledTimes(1); // the server bounds streams per user
    await stream.update(fixture<EnhancedBalance>('balance_new'), '3'); // the opening snapshot
    const eventReads = vi.mocked(client.getBillingEvents).mock.calls.length;
    await stream.update(fixture<EnhancedBalance>('balance_new'), '4'); // a change made elsewhere
    await waitFor(() => expect(vi.mocked(client.getBillingEvents).mock.calls.length).toBeGreaterThan(eventReads));
    expect(result.current.header.live && result.current.panel.live).toBe(true);
    unmount();
    expect(stream.stop).toHaveBeenCalledTimes(1);
  });

  it('polls without a stream when the client has none, or when asked to', async () => {
    const stream = fakeStream();
    const client = fakeClient({ watchBalance: stream.watchBalance });
    const { wrapper } = renderWith(client);
    const { result } = renderHook(() => useUserBalance(undefined, { live: false }), { wrapper });
    await waitFor(() => expect(result.current.isSuccess).toBe(true));
    expect(stream.watchBalance).not.toHaveBeenCalled();
    expect(result.current.live).toBe(false);
  });
});

describe('usePricingCatalog', () => {
  it('keeps a catalog per currency for 10 minutes', async () => {
    const client = fakeClient();
    const { wrapper, queryClient } = renderWith(client);
    const { result } = renderHook(() => usePricingCatalog('EUR'), { wrapper });
    await waitFor(() => expect(result.current.data?.currency).toBe('EUR'));
    const options = queryClient.getQueryCache().find({ queryKey: billingKeys.catalog('EUR') })?.options as Record<string, unknown>;
    expect(options['staleTime']).toBe(600_000);
    expect(client.getPricingCatalog).toHaveBeenCalledWith('EUR');
  });
});

describe('useBillingEvents', () => {
  it('pages with the server token until there is none', async () => {
    const client = fakeClient();
    const { wrapper } = renderWith(client);
    const { result } = renderHook(() => useBillingEvents({ pageSize: 3 }), { wrapper });
    await waitFor(() => expect(result.current.events).toHaveLength(3));
    expect(result.current.hasNextPage).toBe(true);
    await act(() => result.current.fetchNextPage());
    await waitFor(() => expect(result.current.events).toHaveLength(6));
    expect(result.current.hasNextPage).toBe(false);
    expect(client.getBillingEvents).toHaveBeenLastCalledWith('u1', { limit: 3, pageToken: 'YmVmb3JlOjQ=' });
  });
});

describe('useConsume', () => {
  it('exposes the 402 for the dialog and refetches the balance', async () => {
    const client = fakeClient();
    const { wrapper } = renderWith(client);
    const { result } = renderHook(() => ({ consume: useConsume(), balance: useUserBalance() }), { wrapper });
    await waitFor(() => expect(result.current.balance.isSuccess).toBe(true));
    await act(async () => {
      await result.current.consume.mutateAsync({ operation: 'export', seconds: 7200, idempotencyKey: 'op-big' }).catch(() => {});
    });
    // The mutation's error reaches the hook's state on a later render: wait for it, not for luck.
    await waitFor(() => expect(result.current.consume.insufficientFunds).toBeInstanceOf(InsufficientFundsError));
    const refusal = result.current.consume.insufficientFunds;
    expect(refusal?.suggestions.map((s) => s.type)).toEqual(['package', 'upgrade']);
    expect(client.consume).toHaveBeenCalledWith('export', 7200, { idempotencyKey: 'op-big', userId: 'u1' });
    await waitFor(() => expect(client.getEnhancedBalance).toHaveBeenCalledTimes(2));
    act(() => result.current.consume.dismissInsufficientFunds());
    await waitFor(() => expect(result.current.consume.insufficientFunds).toBeUndefined());
  });

  it('succeeds without an error to show', async () => {
    const client = fakeClient({ consume: async () => fixture<ConsumeResponse>('consume') });
    const { wrapper } = renderWith(client);
    const { result } = renderHook(() => useConsume(), { wrapper });
    await act(() => result.current.mutateAsync({ operation: 'build', seconds: 120 }));
    expect(result.current.insufficientFunds).toBeUndefined();
    await waitFor(() => expect(result.current.data?.consumed_seconds).toBeGreaterThan(0));
  });
});

describe('useBatchPreflight', () => {
  it('lists the operations that would be refused', async () => {
    const client = fakeClient();
    const { wrapper } = renderWith(client);
    const operations = [{ operation: 'build' as const, estimate_seconds: 120 }, { operation: 'export' as const, estimate_seconds: 7200 }];
    const { result } = renderHook(() => useBatchPreflight(operations), { wrapper });
    await waitFor(() => expect(result.current.warnings).toHaveLength(1));
    expect(result.current.warnings[0]?.operation).toBe('export');
  });

  it('asks nothing for an empty batch', () => {
    const client = fakeClient();
    const { wrapper } = renderWith(client);
    renderHook(() => useBatchPreflight([]), { wrapper });
    expect(client.checkSufficientBatch).not.toHaveBeenCalled();
  });
});

describe('useCatalogVersionBanner', () => {
  it('shows when the balance names another catalog version, and refresh refetches the catalog', async () => {
    const balance = { ...fixture<EnhancedBalance>('balance_new'), catalog_version: '2026-12-01' };
    const client = fakeClient({ getEnhancedBalance: async () => balance });
    const { wrapper } = renderWith(client);
    const { result } = renderHook(() => useCatalogVersionBanner('USD'), { wrapper });
    await waitFor(() => expect(result.current.visible).toBe(true));
    await act(() => result.current.refresh());
    expect(client.getPricingCatalog).toHaveBeenCalledTimes(2);
    act(() => result.current.dismiss());
    expect(result.current.visible).toBe(false);
  });

  it('stays hidden when the versions match', async () => {
    const client = fakeClient();
    const { wrapper } = renderWith(client);
    const { result } = renderHook(() => useCatalogVersionBanner('USD'), { wrapper });
    await waitFor(() => expect(result.current.catalogVersion).toBe('2026-11-01'));
    expect(result.current.outdated).toBe(false);
  });
});

describe('BillingProvider', () => {
  it('forgets the user data on unmount (sign-out) and keeps the public catalog', async () => {
    const client = fakeClient();
    const { wrapper, queryClient } = renderWith(client);
    const { result, unmount } = renderHook(() => ({ events: useBillingEvents(), catalog: usePricingCatalog('USD') }), { wrapper });
    await waitFor(() => expect(result.current.events.events.length).toBeGreaterThan(0));
    await waitFor(() => expect(result.current.catalog.isSuccess).toBe(true));
    expect(queryClient.getQueryCache().findAll({ queryKey: billingKeys.user('u1') })).not.toHaveLength(0);
    unmount();
    expect(queryClient.getQueryCache().findAll({ queryKey: billingKeys.user('u1') })).toHaveLength(0);
    expect(queryClient.getQueryData(billingKeys.catalog('USD'))).toBeDefined();
  });

  it('hooks outside a provider say so', () => {
    vi.spyOn(console, 'error').mockImplementation(() => {});
    expect(() => renderHook(() => useUserBalance())).toThrow(/BillingProvider/);
  });
});
