import type { BillingEventType, EnhancedBalance } from '@billing/client';

/** Whole minutes of a number of seconds (rounded down, as the guide shows them). */
export function minutes(seconds: number): number {
  return Math.floor(Math.abs(seconds) / 60) * (seconds < 0 ? -1 : 1);
}

/** The guide's icons of the ledger's event types. */
export const BILLING_EVENT_ICONS: Record<BillingEventType, string> = {
  subscription_credit: '🔄',
  package_credit: '📦',
  daily_bonus: '🎁',
  consumption: '⚡',
  rollover_created: '💾',
  rollover_discard: '🗑️',
  rollover_discard_pending: '⚠️',
  auto_topup_triggered: '🔋',
  adjustment: '⚖️',
};

export const BILLING_EVENT_LABELS: Record<BillingEventType, string> = {
  subscription_credit: 'Subscription credit',
  package_credit: 'Package credit',
  daily_bonus: 'Daily bonus',
  consumption: 'Consumption',
  rollover_created: 'Rollover',
  rollover_discard: 'Rollover discarded',
  rollover_discard_pending: 'Rollover discard pending',
  auto_topup_triggered: 'Auto top-up',
  adjustment: 'Adjustment',
};

export function billingEventIcon(type: string): string {
  return (BILLING_EVENT_ICONS as Record<string, string>)[type] ?? '📝';
}

export function billingEventLabel(type: string): string {
  return (BILLING_EVENT_LABELS as Record<string, string>)[type] ?? type;
}

/** The guide's formatBalanceDisplay, in minutes. */
export function formatBalance(balance: EnhancedBalance) {
  const dailySeconds = balance.buckets.daily.reduce((sum, b) => sum + b.seconds, 0);
  const paidSeconds = balance.buckets.paid.reduce((sum, b) => sum + b.seconds, 0);
  return {
    totalMinutes: minutes(balance.totals.total_seconds),
    paidMinutes: minutes(balance.totals.paid_seconds),
    bonusMinutes: minutes(balance.totals.bonus_seconds),
    dailyMinutes: minutes(dailySeconds),
    paidBucketMinutes: minutes(paidSeconds),
    planName: balance.plan_key || 'free',
    nextExpiry: balance.totals.next_expiry_at ? new Date(balance.totals.next_expiry_at) : null,
    bonusUsedThisMonth: balance.bonus.used_this_month_minutes,
    bonusCapThisMonth: balance.bonus.monthly_cap_minutes,
  };
}

/**
 * The server's display price with its currency sign, digits as sent: never rounded nor
 * recomputed (maximumFractionDigits 20 keeps every digit the server gave).
 */
export function formatPrice(price: number, currency: string, locale?: string): string {
  try {
    return new Intl.NumberFormat(locale, {
      style: 'currency', currency, minimumFractionDigits: 0, maximumFractionDigits: 20,
    }).format(price);
  } catch {
    return `${price} ${currency}`;
  }
}

export function formatDateTime(iso: string, locale?: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime())
    ? iso
    : date.toLocaleString(locale, { dateStyle: 'medium', timeStyle: 'short', timeZone: 'UTC' }) + ' UTC';
}
