export {
  BillingProvider, BILLING_KEY, billingKeys, createBillingQueryClient, useBillingClient,
  type BillingApi, type BillingProviderProps,
} from './context.js';
export {
  BALANCE_REFETCH_MS, BALANCE_STALE_MS, CATALOG_STALE_MS, PREFLIGHT_STALE_MS,
  useBatchPreflight, useBillingEvents, useCatalogVersionBanner, useConsume, usePricingCatalog,
  useUsageAnalytics, useUserBalance, type ConsumeVariables,
} from './hooks.js';
export {
  BILLING_EVENT_ICONS, BILLING_EVENT_LABELS, billingEventIcon, billingEventLabel, formatBalance, formatPrice, minutes,
} from './format.js';
export { BalanceDisplay, type BalanceDisplayProps } from './components/BalanceDisplay.js';
export { PricingCard, PricingCards, type PricingCardProps, type PricingCardsProps } from './components/PricingCards.js';
export { UsageChart, type UsageChartProps } from './components/UsageChart.js';
export { EventHistory, type EventHistoryProps } from './components/EventHistory.js';
export { InsufficientTimeDialog, type InsufficientTimeDialogProps } from './components/InsufficientTimeDialog.js';
export { CatalogRefreshBanner, type CatalogRefreshBannerProps } from './components/CatalogRefreshBanner.js';
export { BatchPreflightWarning, type BatchPreflightWarningProps } from './components/BatchPreflightWarning.js';
