import { cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { afterEach, beforeAll, describe, expect, test, vi } from 'vitest';
import type { AccountOverview, ListAccountLedgerResponse } from '@billing/client/admin';
import { BillingApiError } from '@billing/client';
import type { ConsoleApi } from '../src/api.js';
import { ApiContext } from '../src/context.js';
import { AccountPage } from '../src/pages/AccountPage.js';
import { OperationsPage } from '../src/pages/OperationsPage.js';

afterEach(cleanup);

beforeAll(() => {
  // recharts' ResponsiveContainer observes its size; jsdom has no layout.
  globalThis.ResizeObserver ??= class { observe() {} unobserve() {} disconnect() {} } as unknown as typeof ResizeObserver;
});

const USER = 'u-1';

const OVERVIEW: AccountOverview = {
  user_id: USER, created_at: '2026-11-01T00:00:00Z', version: '7', ledger_sum_seconds: 3000,
  balance: {
    version: '1', plan_key: 'pro', subscription_status: 'active', catalog_version: 'v1',
    totals: { total_seconds: 3000, paid_seconds: 2400, bonus_seconds: 600, next_expiry_at: '2026-12-31T00:00:00Z', held_seconds: 0 },
    buckets: { daily: [{ seconds: 600, expires_at: '2026-12-03T00:00:00Z' }], paid: [{ seconds: 2400, expires_at: null, source: 'gift' }] },
    bonus: { daily_minutes: 10, used_this_month_minutes: 0, monthly_cap_minutes: 300 },
    subscription: { current_period_start_at: '2026-12-01T00:00:00Z', current_period_end_at: '2027-01-01T00:00:00Z', cancel_at_period_end: false, pending_plan_key: '' },
    auto_topup: { enabled: true, threshold_seconds: 600, package_key: 'mini', pending: false, last_failure: 'card_declined', action_required: false },
  },
  holds: [{ hold_id: 'h-1', user_id: USER, operation: 'build', held_seconds: 300, committed_seconds: 60, state: 'open', expires_at: '2026-12-02T13:00:00Z' }],
  payment_profile: { stripe_customer_id: 'cus_1', stripe_subscription_id: 'sub_1' },
  auto_topup: { state: undefined, failures: 2, retry_at: '2026-12-02T14:00:00Z', pending_since: undefined },
  keys: [{ key_id: 'bk_user_1', scope: 'user', user_id: USER, created_at: '2026-12-01T00:00:00Z', expires_at: '2099-01-01T00:00:00Z', revoked_at: undefined }],
  payments: [{ payment_id: 'pi_1', kind: 'package', item_key: 'mini', amount_cents: 499, currency: 'usd', granted_seconds: 3600, refunded_cents: 0, paid_at: '2026-12-01T10:00:00Z' }],
  alert_thresholds_seconds: [],
};

const LEDGER: ListAccountLedgerResponse = {
  rows: [
    { event_seq: '2', type: 'consumption', seconds: -600, reason: '', occurred_at: '2026-12-02T10:00:00Z', operation: 'build', bucket_seq: 1,
      metadata: { idempotency_key: 'idem-42', hold_id: 'h-0' }, balance_after_seconds: 3000,
      available_after_seconds: 3000, expired_before_seconds: 0 },
    { event_seq: '1', type: 'package_credit', seconds: 3600, reason: 'purchase', occurred_at: '2026-12-01T10:00:00Z', operation: '', bucket_seq: 1,
      metadata: { payment_id: 'pi_1' }, balance_after_seconds: 3600,
      available_after_seconds: 3600, expired_before_seconds: 0 },
  ],
  next_page_token: '',
  expired_since_last_row_seconds: 0,
};

function fakeApi(overrides: Partial<Record<keyof ConsoleApi, unknown>> = {}) {
  const api = {
    accountOverview: vi.fn(async () => OVERVIEW),
    ledger: vi.fn(async (_user: string, query: { order?: string }) =>
      query.order === 'oldest_first' ? { ...LEDGER, rows: [...LEDGER.rows].reverse() } : LEDGER),
    usage: vi.fn(async () => ({ rows: [{ date: '2026-12-02', operation: 'build', seconds: 600 }], total_seconds: 600 })),
    exportLedger: vi.fn(),
    grant: vi.fn(async () => ({ audit: undefined, replayed: false })),
    ...overrides,
  };
  return api as unknown as ConsoleApi & typeof api;
}

function renderWith(api: ConsoleApi, node: React.ReactNode) {
  return render(<ApiContext.Provider value={api}>{node}</ApiContext.Provider>);
}

describe('the account page', () => {
  test('balance, holds, plan, auto top-up, keys, payments, timeline and ledger from the API', async () => {
    renderWith(fakeApi(), <AccountPage userId={USER} />);
    const balance = await screen.findByRole('region', { name: 'Balance (as the user sees it)' });
    expect(within(balance).getByText('Available').nextSibling?.textContent).toBe('50 min');
    expect(within(balance).getByRole('region', { name: 'Open holds' }).textContent).toContain('h-1');
    expect(within(balance).getByRole('region', { name: 'Buckets' }).textContent).toContain('Never');
    expect(screen.getByRole('region', { name: 'Auto top-up' }).textContent).toContain('Card declined');
    expect(screen.getByRole('button', { name: 'Refund payment pi_1' })).toBeTruthy();
    expect(screen.getByRole('button', { name: 'Revoke key bk_user_1' })).toBeTruthy();
    const timeline = await screen.findByText(/Opening balance/);
    expect(timeline.textContent).toContain('Opening balance 0 s');
    expect(timeline.textContent).toContain('available after this page 50 min');
    const ledger = await screen.findByRole('region', { name: 'Ledger rows' });
    const toggle = within(ledger).getByRole('button', { name: 'Show details of row 2' });
    expect(toggle.getAttribute('aria-expanded')).toBe('false');
    fireEvent.click(toggle);
    expect(toggle.getAttribute('aria-expanded')).toBe('true');
    expect(document.getElementById('ledger-row-2')?.hidden).toBe(false);
    expect(document.getElementById('ledger-row-2')?.textContent).toContain('idem-42');
  });

  test('a grant through its dialog, then the page reads the account again', async () => {
    const api = fakeApi();
    renderWith(api, <AccountPage userId={USER} />);
    fireEvent.click(await screen.findByRole('button', { name: 'Grant minutes…' }));
    const dialog = screen.getByRole('dialog', { name: 'Grant minutes' });
    fireEvent.change(within(dialog).getByLabelText('Minutes'), { target: { value: '30' } });
    fireEvent.change(within(dialog).getByLabelText(/Reason/), { target: { value: 'outage credit' } });
    fireEvent.click(within(dialog).getByRole('button', { name: 'Grant' }));
    await waitFor(() => expect(screen.queryByRole('dialog')).toBeNull());
    expect(api.grant).toHaveBeenCalledWith(USER, expect.objectContaining({ source: 'gift', seconds: 1800, reason: 'outage credit' }));
    await waitFor(() => expect(api.accountOverview).toHaveBeenCalledTimes(2));
    expect(screen.getByText(/^Done: Grant/)).toBeTruthy();
  });

  test('a method not built yet (501): a notice, not an error', async () => {
    const unimplemented = new BillingApiError({ code: 'UNIMPLEMENTED', status: 501, message: 'not implemented' });
    renderWith(fakeApi({ accountOverview: vi.fn(async () => { throw unimplemented; }) }), <AccountPage userId={USER} />);
    const notice = await screen.findByText(/The account: not available on this server yet/);
    expect(notice.getAttribute('data-unimplemented')).toBe('true');
  });
});

describe('the operations page', () => {
  test('health, the last 24 hours and the migration runs with their bad lines', async () => {
    const api = {
      health: vi.fn(async () => ({
        replicas: [{ replica_id: 'r1', host: 'h', pid: 1, started_at: undefined, seen_at: undefined }], database_ok: true,
        database_latency_ms: 2, pool: { size: 4, available: 3, waiting: 0, max_size: 10 }, last_tick_at: '2026-12-02T11:00:00Z',
        webhook_undispatched_events: 0, webhook_pending_deliveries: 1, webhook_failed_last_24h: 0, stripe_events_kept: 2,
      })),
      activity: vi.fn(async () => ({ hours: [] })),
      migrationRuns: vi.fn(async () => ({
        runs: [{ run_id: 'run-1', source_file: 'legacy.csv', started_at: undefined, finished_at: undefined, rows_read: 10,
          accounts_migrated: 8, accounts_skipped: 1, bad_lines: 1, bad_line_samples: [{ line: 7, error: 'seconds: not a number' }] }],
        next_page_token: '',
      })),
    } as unknown as ConsoleApi;
    renderWith(api, <OperationsPage />);
    expect((await screen.findByText('Stripe events kept')).nextSibling?.textContent).toBe('2');
    const badLines = await screen.findByRole('button', { name: /1 bad lines of run run-1/ });
    fireEvent.click(badLines);
    expect(document.getElementById('run-run-1')?.textContent).toContain('Line 7: seconds: not a number');
  });
});
