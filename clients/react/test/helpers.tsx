import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ReactNode } from 'react';
import { vi } from 'vitest';
import {
  InsufficientFundsError, type BatchCheckResult, type BillingEventHistory, type EnhancedBalance,
  type InsufficientFundsErrorBody, type PricingCatalog, type UsageAnalytics,
} from '@billing/client';
import { BillingProvider, createBillingQueryClient, type BillingApi } from '../src/index.js';

const FIXTURES = join(dirname(decodeURIComponent(new URL(import.meta.url).pathname)), '../../typescript/test/fixtures/');

/** The server's recorded answer body of a fixture (clients/typescript/test/fixtures). */
export function fixture<T>(name: string): T {
  const recorded = JSON.parse(readFileSync(`${FIXTURES}${name}.json`, 'utf8')) as { response: { body: T } };
  return recorded.response.body;
}

/** A BillingClient stand-in answering with the recorded fixtures. */
export function fakeClient(overrides: Partial<BillingApi> = {}) {
  const client = {
    getEnhancedBalance: vi.fn(async () => fixture<EnhancedBalance>('balance_new')),
    getPricingCatalog: vi.fn(async (currency: string = 'USD') =>
      fixture<PricingCatalog>(currency === 'JPY' ? 'catalog_jpy_fallback' : `catalog_${currency.toLowerCase()}`)),
    getUsageAnalytics: vi.fn(async (_user?: string, period: 'day' | 'month' = 'month') =>
      fixture<UsageAnalytics>(`usage_${period}`)),
    getBillingEvents: vi.fn(async (_user?: string, options?: number | { pageToken?: string }) =>
      fixture<BillingEventHistory>(typeof options === 'object' && options.pageToken ? 'events_page2' : 'events_page1')),
    consume: vi.fn(async (operation: string, seconds: number) => {
      throw new InsufficientFundsError(fixture<InsufficientFundsErrorBody>('consume_insufficient'), {
        operation, requestedSeconds: seconds,
      });
    }),
    checkSufficientBatch: vi.fn(async () => fixture<BatchCheckResult>('batch_check')),
    ...overrides,
  };
  return client as typeof client & BillingApi;
}

export function renderWith(client: BillingApi) {
  const queryClient = createBillingQueryClient();
  const wrapper = ({ children }: { children?: ReactNode }) => (
    <BillingProvider client={client} userId="u1" queryClient={queryClient}>{children}</BillingProvider>
  );
  return { queryClient, wrapper };
}
