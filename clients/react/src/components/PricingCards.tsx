import { useId } from 'react';
import type { Package, SubscriptionPlan } from '@billing/client';
import { usePricingCatalog } from '../hooks.js';
import { formatPrice } from '../format.js';

export interface PricingCardProps {
  item: SubscriptionPlan | Package;
  currency: string;
  /** "Buy" / "Choose" action; no button when omitted. */
  onSelect?: (key: string) => void;
  actionLabel?: string;
  perPeriod?: boolean;
}

/** One plan or package: the server's price as sent, "(incl. tax)" when tax-inclusive. */
export function PricingCard({ item, currency, onSelect, actionLabel = 'Buy', perPeriod = false }: PricingCardProps) {
  const headingId = useId();
  return (
    <article aria-labelledby={headingId} data-billing="pricing-card" data-key={item.key}>
      <h4 id={headingId}>{item.name}</h4>
      <p data-part="price">
        {formatPrice(item.price, currency)}
        {perPeriod && ' / period'}
        {item.taxInclusive && <span data-part="tax"> (incl. tax)</span>}
      </p>
      <p>{item.minutes} minutes</p>
      {onSelect && (
        <button type="button" onClick={() => onSelect(item.key)} aria-label={`${actionLabel} ${item.name}`}>
          {actionLabel}
        </button>
      )}
    </article>
  );
}

export interface PricingCardsProps {
  currency?: string;
  show?: 'packages' | 'plans' | 'both';
  onBuyPackage?: (key: string) => void;
  onChoosePlan?: (plan: string) => void;
}

/** The catalog's plans and packages in a currency, with the fallback notice when the server
 * answered in another currency than the one asked. */
export function PricingCards({ currency = 'USD', show = 'both', onBuyPackage, onChoosePlan }: PricingCardsProps) {
  const { data: catalog, isPending, error } = usePricingCatalog(currency);
  const plansId = useId();
  const packagesId = useId();
  if (isPending) return <div role="status" aria-busy="true">Loading prices…</div>;
  if (error || !catalog) return <div role="alert">Failed to load prices: {error?.message ?? 'no data'}</div>;
  const plans = catalog.subscriptions.filter((plan) => plan.price > 0);
  return (
    <div data-billing="pricing">
      {catalog.currency_fallback_from && (
        <p role="note" data-part="fallback">
          💰 Prices shown and charged in {catalog.currency} ({catalog.currency_fallback_from} not available)
        </p>
      )}
      {show !== 'packages' && plans.length > 0 && (
        <section aria-labelledby={plansId}>
          <h3 id={plansId}>Plans</h3>
          {plans.map((plan) => (
            <PricingCard key={plan.key} item={plan} currency={catalog.currency} actionLabel="Choose"
              {...(onChoosePlan ? { onSelect: onChoosePlan } : {})} />
          ))}
        </section>
      )}
      {show !== 'plans' && (
        <section aria-labelledby={packagesId}>
          <h3 id={packagesId}>Packages</h3>
          {catalog.packages.map((pkg) => (
            <PricingCard key={pkg.key} item={pkg} currency={catalog.currency}
              {...(onBuyPackage ? { onSelect: onBuyPackage } : {})} />
          ))}
        </section>
      )}
    </div>
  );
}
