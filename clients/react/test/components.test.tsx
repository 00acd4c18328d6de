import { act, cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { useState } from 'react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { InsufficientFundsError, type EnhancedBalance, type InsufficientFundsErrorBody, type PricingCatalog } from '@billing/client';
import {
  BalanceDisplay, BatchPreflightWarning, CatalogRefreshBanner, EventHistory, InsufficientTimeDialog, PricingCards,
  UsageChart, useConsume,
} from '../src/index.js';
import { fakeClient, fixture, renderWith } from './helpers.js';

afterEach(cleanup);

function renderIn(ui: React.ReactElement, client = fakeClient()) {
  const { wrapper } = renderWith(client);
  return { client, ...render(ui, { wrapper }) };
}

describe('BalanceDisplay', () => {
  it('full: total, daily vs paid, next expiry, monthly bonus used / cap', async () => {
    renderIn(<BalanceDisplay />);
    const region = await screen.findByRole('region', { name: 'AI Time Balance' });
    const balance = fixture<EnhancedBalance>('balance_new');
    const daily = Math.floor(balance.buckets.daily.reduce((s, b) => s + b.seconds, 0) / 60);
    const paid = Math.floor(balance.buckets.paid.reduce((s, b) => s + b.seconds, 0) / 60);
    expect(within(region).getByText('Total').nextSibling?.textContent).toBe('45 min');
    expect(within(region).getByText('Daily bonus').nextSibling?.textContent).toBe(`${daily} min`);
    expect(within(region).getByText('Paid').nextSibling?.textContent).toBe(`${paid} min`);
    expect(region.querySelector('time')?.getAttribute('datetime')).toBe('2026-12-03T00:00:00Z');
    const bar = within(region).getByRole('progressbar', { name: 'Monthly bonus used' });
    expect(bar.getAttribute('aria-valuemax')).toBe(String(balance.bonus.monthly_cap_minutes));
    expect(within(region).getByText(new RegExp(`${balance.bonus.used_this_month_minutes} / ${balance.bonus.monthly_cap_minutes} min used`))).toBeTruthy();
  });

  it('compact: minutes remaining', async () => {
    renderIn(<BalanceDisplay variant="compact" />);
    expect(await screen.findByRole('status', { name: 'AI time balance: 45 minutes remaining' })).toBeTruthy();
  });

  it('says when the balance cannot be loaded', async () => {
    renderIn(<BalanceDisplay />, fakeClient({ getEnhancedBalance: async () => { throw new Error('offline'); } }));
    expect((await screen.findByRole('alert')).textContent).toContain('offline');
  });
});

describe('PricingCards', () => {
  it('prints the server prices with "(incl. tax)" for a tax-inclusive currency', async () => {
    const onBuy = vi.fn();
    renderIn(<PricingCards currency="EUR" onBuyPackage={onBuy} />);
    const catalog = fixture<PricingCatalog>('catalog_eur');
    const starter = await screen.findByRole('article', { name: 'Starter' });
    expect(starter.textContent).toContain('9.49');
    expect(starter.textContent).toContain('(incl. tax)');
    const pkg = catalog.packages[0]!;
    const card = screen.getByRole('article', { name: pkg.name });
    expect(card.textContent).toContain(String(pkg.price));
    fireEvent.click(within(card).getByRole('button', { name: `Buy ${pkg.name}` }));
    expect(onBuy).toHaveBeenCalledWith(pkg.key);
    expect(screen.queryByRole('note')).toBeNull();
  });

  it('shows the fallback notice and no tax label for USD prices', async () => {
    renderIn(<PricingCards currency="JPY" />);
    const note = await screen.findByRole('note');
    expect(note.textContent).toContain('JPY not available');
    expect(note.textContent).toContain('USD');
    expect(screen.getByRole('article', { name: 'Starter' }).textContent).not.toContain('incl. tax');
  });
});

describe('UsageChart', () => {
  it('is a table by day and by operation', async () => {
    renderIn(<UsageChart period="month" />);
    const byDay = await screen.findByRole('table', { name: 'By day' });
    expect(within(byDay).getByRole('rowheader', { name: '2026-12-02' })).toBeTruthy();
    const byOperation = screen.getByRole('table', { name: 'By operation' });
    const exportRow = within(byOperation).getByRole('rowheader', { name: 'export' }).closest('tr')!;
    expect(exportRow.textContent).toContain('120');
  });
});

describe('EventHistory', () => {
  it('lists events with the guide icons and loads older pages', async () => {
    renderIn(<EventHistory pageSize={3} />);
    const list = await screen.findByRole('list');
    expect(within(list).getAllByRole('listitem')).toHaveLength(3);
    expect(list.textContent).toContain('📦');
    expect(list.textContent).toContain('+300 min');
    fireEvent.click(screen.getByRole('button', { name: 'Load older events' }));
    await waitFor(() => expect(screen.getAllByRole('listitem')).toHaveLength(6));
    expect(screen.getByRole('list').textContent).toContain('🎁');
    expect(screen.queryByRole('button', { name: 'Load older events' })).toBeNull();
  });
});

describe('InsufficientTimeDialog', () => {
  const refusal = () => new InsufficientFundsError(fixture<InsufficientFundsErrorBody>('consume_insufficient'), {
    operation: 'export', requestedSeconds: 7200,
  });

  it('shows the suggestions, buys / upgrades, traps focus and closes on Escape', () => {
    const onBuy = vi.fn();
    const onUpgrade = vi.fn();
    function Harness() {
      const [error, setError] = useState<InsufficientFundsError | undefined>(undefined);
      return (
        <>
          <button type="button" onClick={() => setError(refusal())}>Run export</button>
          <InsufficientTimeDialog error={error} onClose={() => setError(undefined)} onBuyPackage={onBuy} onUpgrade={onUpgrade} />
        </>
      );
    }
    render(<Harness />);
    const opener = screen.getByRole('button', { name: 'Run export' });
    opener.focus();
    fireEvent.click(opener);
    const dialog = screen.getByRole('dialog', { name: 'Not enough AI time' });
    expect(dialog.getAttribute('aria-modal')).toBe('true');
    expect(dialog.textContent).toContain('43 min left');
    const buy = within(dialog).getByRole('button', { name: /Buy booster/ });
    expect(document.activeElement).toBe(buy);
    fireEvent.click(buy);
    expect(onBuy).toHaveBeenCalledWith('booster');
    fireEvent.click(within(dialog).getByRole('button', { name: 'Upgrade to starter' }));
    expect(onUpgrade).toHaveBeenCalledWith('starter');
    const last = within(dialog).getByRole('button', { name: 'Not now' });
    last.focus();
    fireEvent.keyDown(last, { key: 'Tab' });
    expect(document.activeElement).toBe(buy);
    fireEvent.keyDown(dialog, { key: 'Escape' });
    expect(screen.queryByRole('dialog')).toBeNull();
    expect(document.activeElement).toBe(opener);
  });

  it('opens from useConsume on a 402', async () => {
    function App() {
      const consume = useConsume();
      return (
        <>
          <button type="button" onClick={() => consume.mutate({ operation: 'export', seconds: 7200 })}>Export</button>
          <InsufficientTimeDialog error={consume.insufficientFunds} onClose={consume.dismissInsufficientFunds}
            onBuyPackage={() => {}} onUpgrade={() => {}} />
        </>
      );
    }
    renderIn(<App />);
    fireEvent.click(screen.getByRole('button', { name: 'Export' }));
    const dialog = await screen.findByRole('dialog');
    expect(dialog.textContent).toContain('needs 77 min more');
    fireEvent.click(within(dialog).getByRole('button', { name: 'Not now' }));
    await waitFor(() => expect(screen.queryByRole('dialog')).toBeNull());
  });
});

describe('CatalogRefreshBanner', () => {
  it('appears on a newer catalog version and refreshes or dismisses', async () => {
    const balance = { ...fixture<EnhancedBalance>('balance_new'), catalog_version: '2026-12-01' };
    const { client } = renderIn(<CatalogRefreshBanner />, fakeClient({ getEnhancedBalance: async () => balance }));
    const banner = await screen.findByRole('status');
    expect(banner.textContent).toContain('Prices updated');
    await act(async () => { fireEvent.click(within(banner).getByRole('button', { name: 'Refresh prices' })); });
    await waitFor(() => expect(client.getPricingCatalog).toHaveBeenCalledTimes(2));
    fireEvent.click(screen.getByRole('button', { name: 'Dismiss price update notice' }));
    expect(screen.queryByRole('status')).toBeNull();
  });
});

describe('BatchPreflightWarning', () => {
  it('warns about the operations that would be refused', async () => {
    const onBuy = vi.fn();
    renderIn(<BatchPreflightWarning operations={[
      { operation: 'build', estimate_seconds: 120 }, { operation: 'plan', estimate_seconds: 30 },
      { operation: 'export', estimate_seconds: 7200 },
    ]} onBuyPackage={onBuy} />);
    const alert = await screen.findByRole('alert');
    expect(alert.textContent).toContain('1 operation');
    expect(alert.textContent).toContain('export: 88 min short');
    fireEvent.click(within(alert).getByRole('button', { name: 'Buy booster' }));
    expect(onBuy).toHaveBeenCalledWith('booster');
  });
});
