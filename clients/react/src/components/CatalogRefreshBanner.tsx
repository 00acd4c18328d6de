import { useCatalogVersionBanner } from '../hooks.js';

export interface CatalogRefreshBannerProps {
  currency?: string;
  userId?: string;
}

/** A light notice when prices changed (the balance names a newer catalog version). */
export function CatalogRefreshBanner({ currency = 'USD', userId }: CatalogRefreshBannerProps) {
  const banner = useCatalogVersionBanner(currency, userId);
  if (!banner.visible) return null;
  return (
    <div role="status" data-billing="catalog-banner">
      💰 Prices updated.{' '}
      <button type="button" onClick={() => void banner.refresh()} disabled={banner.refreshing}>
        {banner.refreshing ? 'Refreshing…' : 'Refresh prices'}
      </button>{' '}
      <button type="button" onClick={banner.dismiss} aria-label="Dismiss price update notice">✕</button>
    </div>
  );
}
