import { useEffect, useState } from 'react';
import type { AccountOverview } from '@billing/client/admin';
import { LoadState, TableRegion } from '../components/LoadState.js';
import { useApi } from '../context.js';
import { formatCents, formatSeconds, formatTimestamp, humanize } from '../format.js';
import { hrefFor } from '../router.js';
import { useLoad } from '../useLoad.js';
import { type AccountAction, AccountActionDialog } from './AccountActions.js';
import { AccountLedger } from './AccountLedger.js';
import { AccountTimeline } from './AccountTimeline.js';
import { UsageChart } from './UsageChart.js';

/** One account on one page: balance, holds, plan, auto top-up, keys, payments, usage, timeline, ledger. */
export function AccountPage(props: { userId: string }) {
  const api = useApi();
  const [refresh, setRefresh] = useState(0);
  const overview = useLoad(() => api.accountOverview(props.userId), [api, props.userId, refresh]);
  const [action, setAction] = useState<AccountAction>();
  const [done, setDone] = useState<string>();

  useEffect(() => { document.title = `${props.userId} · Billing console`; }, [props.userId]);

  return (
    <>
      <h1>Account <span className="mono">{props.userId}</span></h1>
      {done ? <p className="success" role="status">{done}</p> : <p className="visually-hidden" role="status" />}
      <LoadState load={overview} what="The account">
        {(account) => (
          <>
            <AccountToolbar account={account} onAction={(next) => { setDone(undefined); setAction(next); }}
              onRefresh={() => setRefresh((value) => value + 1)} />
            <Overview account={account} onAction={(next) => { setDone(undefined); setAction(next); }} />
            {action ? (
              <AccountActionDialog account={account} action={action} onCancel={() => setAction(undefined)}
                onDone={() => {
                  setAction(undefined);
                  setDone(`Done: ${actionName(action)}. The page shows the account as it is now.`);
                  setRefresh((value) => value + 1);
                }} />
            ) : null}
          </>
        )}
      </LoadState>
      <UsageChart userId={props.userId} refresh={refresh} />
      <AccountTimeline userId={props.userId} refresh={refresh} />
      <AccountLedger userId={props.userId} refresh={refresh} />
    </>
  );
}

function actionName(action: AccountAction): string {
  switch (action.kind) {
    case 'refund': return `refund of ${action.payment.payment_id} asked (its webhook applies it)`;
    case 'revoke-key': return `key ${action.key.key_id} revoked`;
    default: return humanize(action.kind.replace(/-/g, '_'));
  }
}

function AccountToolbar(props: { account: AccountOverview; onAction: (action: AccountAction) => void; onRefresh: () => void }) {
  const { account } = props;
  const balance = account.balance;
  const subscribed = Boolean(account.payment_profile?.stripe_subscription_id) && balance?.subscription_status !== 'canceled';
  return (
    <div className="toolbar" role="group" aria-label="Actions on this account">
      <button type="button" onClick={() => props.onAction({ kind: 'grant' })}>Grant minutes…</button>
      <button type="button" onClick={() => props.onAction({ kind: 'claw-back' })}>Claw back…</button>
      {subscribed ? <button type="button" onClick={() => props.onAction({ kind: 'change-subscription' })}>Change plan…</button> : null}
      {subscribed ? <button type="button" onClick={() => props.onAction({ kind: 'cancel-subscription' })}>Cancel subscription…</button> : null}
      {balance?.auto_topup?.enabled ? <button type="button" onClick={() => props.onAction({ kind: 'disable-auto-topup' })}>Turn auto top-up off…</button> : null}
      <a className="button-link" href={hrefFor({ page: 'audit', userId: account.user_id })}>Audit trail of this account</a>
      {/* A refund or a payment lands through the provider's webhook, a moment after the action. */}
      <button type="button" onClick={props.onRefresh}>Refresh</button>
    </div>
  );
}

function Overview(props: { account: AccountOverview; onAction: (action: AccountAction) => void }) {
  const { account } = props;
  const balance = account.balance;
  const totals = balance?.totals;
  const subscription = balance?.subscription;
  const topup = balance?.auto_topup;
  const detail = account.auto_topup;
  const buckets = [
    ...(balance?.buckets?.daily ?? []).map((bucket) => ({ source: 'daily bonus', seconds: bucket.seconds, expires: bucket.expires_at as string | undefined })),
    ...(balance?.buckets?.paid ?? []).map((bucket) => ({ source: bucket.source, seconds: bucket.seconds, expires: bucket.expires_at as string | undefined })),
  ];
  return (
    <div className="overview">
      <section aria-labelledby="balance-heading" className="card">
        <h2 id="balance-heading">Balance (as the user sees it)</h2>
        <dl className="totals">
          <div><dt>Available</dt><dd>{formatSeconds(totals?.total_seconds ?? 0)}</dd></div>
          <div><dt>Paid</dt><dd>{formatSeconds(totals?.paid_seconds ?? 0)}</dd></div>
          <div><dt>Bonus</dt><dd>{formatSeconds(totals?.bonus_seconds ?? 0)}</dd></div>
          <div><dt>Held</dt><dd>{formatSeconds(totals?.held_seconds ?? 0)}</dd></div>
          <div><dt>Next expiry</dt><dd>{formatTimestamp(totals?.next_expiry_at as string | undefined)}</dd></div>
          <div><dt>Ledger sum</dt><dd>{formatSeconds(account.ledger_sum_seconds)}</dd></div>
        </dl>
        <TableRegion label="Buckets">
          <table>
            <caption>Buckets, in consumption order</caption>
            <thead><tr><th scope="col">Source</th><th scope="col">Remaining</th><th scope="col">Expires</th></tr></thead>
            <tbody>
              {buckets.length === 0 ? <tr><td colSpan={3}>No bucket holds seconds.</td></tr> : buckets.map((bucket, index) => (
                <tr key={index}><td>{humanize(bucket.source)}</td><td>{formatSeconds(bucket.seconds)}</td><td>{bucket.expires ? formatTimestamp(bucket.expires) : 'Never'}</td></tr>
              ))}
            </tbody>
          </table>
        </TableRegion>
        {account.holds.length ? (
          <TableRegion label="Open holds">
            <table>
              <caption>Open holds</caption>
              <thead><tr><th scope="col">Hold</th><th scope="col">Operation</th><th scope="col">Held</th><th scope="col">Committed</th><th scope="col">Expires</th></tr></thead>
              <tbody>
                {account.holds.map((hold) => (
                  <tr key={hold.hold_id}><td className="mono">{hold.hold_id}</td><td>{hold.operation}</td><td>{formatSeconds(hold.held_seconds)}</td>
                    <td>{formatSeconds(hold.committed_seconds)}</td><td>{formatTimestamp(hold.expires_at)}</td></tr>
                ))}
              </tbody>
            </table>
          </TableRegion>
        ) : <p>No open holds.</p>}
      </section>

      <section aria-labelledby="plan-heading" className="card">
        <h2 id="plan-heading">Plan and subscription</h2>
        <dl className="pairs">
          <div><dt>Plan</dt><dd>{balance?.plan_key || '—'}</dd></div>
          <div><dt>Status</dt><dd>{balance?.subscription_status || '—'}</dd></div>
          <div><dt>Period</dt><dd>{formatTimestamp(subscription?.current_period_start_at as string | undefined)} → {formatTimestamp(subscription?.current_period_end_at as string | undefined)}</dd></div>
          <div><dt>Cancels at period end</dt><dd>{subscription?.cancel_at_period_end ? 'Yes' : 'No'}</dd></div>
          <div><dt>Pending plan</dt><dd>{subscription?.pending_plan_key || '—'}</dd></div>
          <div><dt>Stripe customer</dt><dd className="mono">{account.payment_profile?.stripe_customer_id || '—'}</dd></div>
          <div><dt>Stripe subscription</dt><dd className="mono">{account.payment_profile?.stripe_subscription_id || '—'}</dd></div>
          <div><dt>Account created</dt><dd>{formatTimestamp(account.created_at)}</dd></div>
        </dl>
      </section>

      <section aria-labelledby="topup-heading" className="card">
        <h2 id="topup-heading">Auto top-up</h2>
        <dl className="pairs">
          <div><dt>State</dt><dd>{topup?.enabled ? 'On' : 'Off'}{topup?.pending ? ' (a payment is pending)' : ''}</dd></div>
          <div><dt>Below</dt><dd>{topup?.enabled ? formatSeconds(topup.threshold_seconds) : '—'}</dd></div>
          <div><dt>Package</dt><dd>{topup?.package_key || '—'}</dd></div>
          <div><dt>Last failure</dt><dd>{topup?.last_failure ? humanize(topup.last_failure) : 'None'}{topup?.action_required ? ' (the card needs its owner)' : ''}</dd></div>
          <div><dt>Failures in a row</dt><dd>{detail?.failures ?? 0}</dd></div>
          <div><dt>Next retry</dt><dd>{formatTimestamp(detail?.retry_at)}</dd></div>
          <div><dt>Pending since</dt><dd>{formatTimestamp(detail?.pending_since)}</dd></div>
        </dl>
      </section>

      <section aria-labelledby="keys-heading" className="card wide">
        <h2 id="keys-heading">Keys issued to the user</h2>
        {account.keys.length === 0 ? <p>No keys.</p> : (
          <TableRegion label="Keys table">
            <table>
              <thead><tr><th scope="col">Key id</th><th scope="col">Scope</th><th scope="col">Created</th><th scope="col">Expires</th><th scope="col">State</th></tr></thead>
              <tbody>
                {account.keys.map((key) => {
                  const live = !key.revoked_at && (!key.expires_at || Date.parse(key.expires_at) > Date.now());
                  return (
                    <tr key={key.key_id}>
                      <td className="mono">{key.key_id}</td><td>{key.scope}</td><td>{formatTimestamp(key.created_at)}</td><td>{formatTimestamp(key.expires_at)}</td>
                      <td>{key.revoked_at ? `Revoked ${formatTimestamp(key.revoked_at)}` : live ? (
                        <button type="button" onClick={() => props.onAction({ kind: 'revoke-key', key })} aria-label={`Revoke key ${key.key_id}`}>Revoke…</button>
                      ) : 'Expired'}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </TableRegion>
        )}
      </section>

      <section aria-labelledby="payments-heading" className="card wide">
        <h2 id="payments-heading">Payments</h2>
        {account.payments.length === 0 ? <p>No payments.</p> : (
          <TableRegion label="Payments table">
            <table>
              <thead><tr><th scope="col">Payment</th><th scope="col">Kind</th><th scope="col">Item</th><th scope="col">Amount</th>
                <th scope="col">Minutes</th><th scope="col">Refunded</th><th scope="col">Paid</th><th scope="col">Action</th></tr></thead>
              <tbody>
                {account.payments.map((payment) => (
                  <tr key={payment.payment_id}>
                    <td className="mono">{payment.payment_id}</td><td>{humanize(payment.kind)}</td><td>{payment.item_key}</td>
                    <td>{formatCents(payment.amount_cents, payment.currency)}</td><td>{formatSeconds(payment.granted_seconds)}</td>
                    <td>{payment.refunded_cents ? formatCents(payment.refunded_cents, payment.currency) : '—'}</td>
                    <td>{formatTimestamp(payment.paid_at)}</td>
                    <td>{payment.refunded_cents < payment.amount_cents ? (
                      <button type="button" onClick={() => props.onAction({ kind: 'refund', payment })} aria-label={`Refund payment ${payment.payment_id}`}>Refund…</button>
                    ) : 'Refunded'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableRegion>
        )}
      </section>
    </div>
  );
}
