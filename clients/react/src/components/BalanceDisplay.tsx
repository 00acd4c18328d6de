import { useId } from 'react';
import { useUserBalance } from '../hooks.js';
import { formatBalance, formatDateTime } from '../format.js';

export interface BalanceDisplayProps {
  variant?: 'compact' | 'full';
  userId?: string;
  className?: string;
}

/** The user's AI time: compact (total minutes) or full (daily vs paid, next expiry, monthly bonus). */
export function BalanceDisplay({ variant = 'full', userId, className }: BalanceDisplayProps) {
  const { data: balance, isPending, error } = useUserBalance(userId);
  const headingId = useId();
  if (isPending) {
    return <div className={className} role="status" aria-busy="true">Loading balance…</div>;
  }
  if (error || !balance) {
    return <div className={className} role="alert">Failed to load balance: {error?.message ?? 'no data'}</div>;
  }
  const f = formatBalance(balance);
  if (variant === 'compact') {
    return (
      <div className={className} role="status" aria-label={`AI time balance: ${f.totalMinutes} minutes remaining`}>
        <span data-part="total">{f.totalMinutes}m</span> <span>remaining</span>
      </div>
    );
  }
  const bonusPercent = f.bonusCapThisMonth > 0 ? Math.min(100, (f.bonusUsedThisMonth / f.bonusCapThisMonth) * 100) : 0;
  return (
    <section className={className} aria-labelledby={headingId} data-billing="balance">
      <h3 id={headingId}>AI Time Balance</h3>
      <p data-part="plan">{f.planName} plan</p>
      <dl>
        <div><dt>Total</dt><dd>{f.totalMinutes} min</dd></div>
        <div><dt>Daily bonus</dt><dd>{f.dailyMinutes} min</dd></div>
        <div><dt>Paid</dt><dd>{f.paidBucketMinutes} min</dd></div>
        {f.nextExpiry && balance.totals.next_expiry_at && (
          <div>
            <dt>Next expiry</dt>
            <dd><time dateTime={balance.totals.next_expiry_at}>{formatDateTime(balance.totals.next_expiry_at)}</time></dd>
          </div>
        )}
        {f.bonusCapThisMonth > 0 && (
          <div>
            <dt>Monthly bonus</dt>
            <dd>
              {f.bonusUsedThisMonth} / {f.bonusCapThisMonth} min used
              <span
                role="progressbar"
                aria-label="Monthly bonus used"
                aria-valuemin={0}
                aria-valuemax={f.bonusCapThisMonth}
                aria-valuenow={f.bonusUsedThisMonth}
                data-part="bonus-bar"
                style={{ display: 'block', height: 6, background: '#e5e7eb' }}
              >
                <span style={{ display: 'block', height: '100%', width: `${bonusPercent}%`, background: '#7c3aed' }} />
              </span>
            </dd>
          </div>
        )}
      </dl>
    </section>
  );
}
