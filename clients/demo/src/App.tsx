import { useEffect, useId, useState } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import type { BillingClient, Operation, ResumeOutcome } from '@billing/client';
import {
  BalanceDisplay, BillingProvider, EventHistory, InsufficientTimeDialog, PricingCards, UsageChart, billingKeys,
  minutes, useConsume, usePricingCatalog, useUserBalance,
} from '@billing/react';
import type { DemoConfig } from './session.js';

interface AiOperation {
  operation: Operation;
  label: string;
  /** The estimate: what one run consumes. */
  seconds: number;
}

export const AI_OPERATIONS: readonly AiOperation[] = [
  { operation: 'build', label: 'Build an app', seconds: 20 * 60 },
  { operation: 'plan', label: 'Plan a feature', seconds: 5 * 60 },
  { operation: 'export', label: 'Export the project', seconds: 2 * 60 },
];

function labelOf(operation: string): string {
  return AI_OPERATIONS.find((op) => op.operation === operation)?.label ?? operation;
}

interface Checkout {
  buyPackage: (packageKey: string) => void;
  choosePlan: (planKey: string) => void;
  error: string | undefined;
}

/** Purchases go to Checkout (the Stripe stand-in under `make run`), which comes back with ?purchased=true. */
function useCheckout(billing: BillingClient, currency: string): Checkout {
  const [error, setError] = useState<string | undefined>(undefined);
  const go = (started: Promise<{ checkout_url: string }>) => {
    started.then(({ checkout_url }) => window.location.assign(checkout_url), (cause: unknown) => setError(String(cause)));
  };
  return {
    buyPackage: (packageKey) => go(billing.purchasePackage({ package_key: packageKey, currency })),
    choosePlan: (planKey) => go(billing.subscriptionCheckout({ plan_key: planKey, currency })),
    error,
  };
}

export function App({ billing, config }: { billing: BillingClient; config: DemoConfig }) {
  const checkout = useCheckout(billing, config.currency);
  return (
    <BillingProvider client={billing} userId={config.user_id}>
      <header className="top">
        <h1>AI Studio</h1>
        <p>Welcome, <strong>{config.user_id}</strong></p>
        <BalanceDisplay variant="compact" />
        <LiveIndicator />
      </header>
      <ResumeAfterPurchase billing={billing} userId={config.user_id} />
      {checkout.error && <p role="alert">Checkout failed: {checkout.error}</p>}
      <main className="grid">
        <div className="card">
          <BalanceDisplay />
          <Buckets />
        </div>
        <Operations currency={config.currency} checkout={checkout} />
        <div className="card wide">
          <PricingCards currency={config.currency} onBuyPackage={checkout.buyPackage} onChoosePlan={checkout.choosePlan} />
        </div>
        <div className="activity" data-demo="activity">
          <div className="card"><UsageChart period="month" /></div>
          <div className="card"><EventHistory pageSize={20} /></div>
        </div>
      </main>
    </BillingProvider>
  );
}

/** Whether the balance arrives over the live stream (Server-Sent Events) or by polling. */
function LiveIndicator() {
  const { live } = useUserBalance();
  return (
    <p className="live" role="status" data-demo="live" data-live={live ? 'yes' : 'no'}>
      {live ? 'Live balance' : 'Balance refreshed every minute'}
    </p>
  );
}

/** Every bucket, in the order consumes draw from them: daily bonus first, then paid ones by source. */
function Buckets() {
  const { data: balance } = useUserBalance();
  const headingId = useId();
  if (!balance) return null;
  const rows = [
    ...balance.buckets.daily.map((bucket) => ({ source: 'daily', ...bucket })),
    ...balance.buckets.paid,
  ];
  return (
    <section aria-labelledby={headingId} data-demo="buckets">
      <h4 id={headingId}>Buckets</h4>
      <ul>
        {rows.map((bucket, index) => (
          <li key={`${bucket.source}-${index}`} data-source={bucket.source}>
            {bucket.source}: {minutes(bucket.seconds)} min
            {bucket.expires_at ? ` (expires ${new Date(bucket.expires_at).toLocaleString()})` : ' (never expires)'}
          </li>
        ))}
      </ul>
    </section>
  );
}

function Operations({ currency, checkout }: { currency: string; checkout: Checkout }) {
  const consume = useConsume();
  const catalog = usePricingCatalog(currency);
  const headingId = useId();
  const done = consume.data;
  return (
    <section className="card" aria-labelledby={headingId}>
      <h3 id={headingId}>Run an AI operation</h3>
      <ul className="operations">
        {AI_OPERATIONS.map((op) => (
          <li key={op.operation}>
            <button
              type="button"
              disabled={consume.isPending}
              onClick={() => consume.mutate({ operation: op.operation, seconds: op.seconds })}
            >
              {op.label}
            </button>{' '}
            <span>estimate {minutes(op.seconds)} min</span>
          </li>
        ))}
      </ul>
      {done && (
        <p role="status" data-demo="last-consume">
          {labelOf(done.operation)}: used {minutes(done.consumed_seconds)} min, {minutes(done.totals.total_seconds)} min left.
        </p>
      )}
      {consume.error && !consume.insufficientFunds && <p role="alert">{consume.error.message}</p>}
      <InsufficientTimeDialog
        error={consume.insufficientFunds}
        onClose={consume.dismissInsufficientFunds}
        onBuyPackage={checkout.buyPackage}
        onUpgrade={checkout.choosePlan}
        {...(catalog.data ? { catalog: catalog.data } : {})}
      />
    </section>
  );
}

/**
 * Back from Checkout with ?purchased=true: the client runs the operation the 402 blocked, once, with
 * its resume token and its own idempotency key (kept in sessionStorage), and takes the parameter
 * out of the address bar. Then the user's balance, usage and history are fetched again.
 */
function ResumeAfterPurchase({ billing, userId }: { billing: BillingClient; userId: string }) {
  const queryClient = useQueryClient();
  const [purchased] = useState(() => new URLSearchParams(window.location.search).get('purchased') === 'true');
  const [outcomes, setOutcomes] = useState<ResumeOutcome[] | undefined>(undefined);
  useEffect(() => {
    let current = true;
    // StrictMode runs this twice: the client shares one run between the calls, so it resumes once.
    void billing.resumeAfterPurchase().then(async (result) => {
      if (!current) return;
      setOutcomes(result);
      if (result.length === 0) return;
      // A first read sent before the resumed consume landed may still be in flight, and React Query
      // would join it rather than fetch again: cancel it, then fetch the user's data anew.
      const user = { queryKey: billingKeys.user(userId) };
      await queryClient.cancelQueries(user);
      await queryClient.invalidateQueries(user);
    });
    return () => { current = false; };
  }, [billing, queryClient, userId]);

  if (!purchased) return null;
  if (outcomes === undefined) return <p role="status" className="notice">Payment received: resuming…</p>;
  return (
    <div role="status" className="notice" data-demo="resume">
      <p>Thanks for your purchase: the minutes are in your balance.</p>
      {outcomes.map((outcome) => <ResumeLine key={outcome.entry.operation} outcome={outcome} billing={billing} />)}
    </div>
  );
}

function ResumeLine({ outcome, billing }: { outcome: ResumeOutcome; billing: BillingClient }) {
  const label = labelOf(outcome.entry.operation);
  const [retried, setRetried] = useState<ResumeOutcome | undefined>(undefined);
  const shown = retried ?? outcome;
  if (shown.status === 'resumed') {
    return <p>Resumed “{label}”: used {minutes(shown.response.consumed_seconds)} min.</p>;
  }
  if (shown.status === 'insufficient') {
    const retry = () => {
      void billing.resumeNow(shown.entry.operation, shown.entry.user_id, 15_000).then((next) => next && setRetried(next));
    };
    return <p>Still not enough time for “{label}”. <button type="button" onClick={retry}>Try again</button></p>;
  }
  return <p>“{label}” could not be resumed: {String(shown.error)}</p>;
}
