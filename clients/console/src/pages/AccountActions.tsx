import { useId, useState } from 'react';
import type { AccountOverview, AccountPayment, IssuedKey } from '@billing/client/admin';
import { ActionDialog } from '../components/ActionDialog.js';
import { useApi } from '../context.js';
import { formatCents, formatSeconds, startOfUtcDay } from '../format.js';

export type AccountAction =
  | { kind: 'grant' }
  | { kind: 'claw-back' }
  | { kind: 'refund'; payment: AccountPayment }
  | { kind: 'cancel-subscription' }
  | { kind: 'change-subscription' }
  | { kind: 'disable-auto-topup' }
  | { kind: 'revoke-key'; key: IssuedKey };

const SECONDS_MAX = 31_536_000;

/** Minutes typed by the operator -> seconds (whole minutes, 1 .. a year), or a message. */
export function minutesToSeconds(text: string): number | string {
  if (!/^\d+$/.test(text.trim())) return 'Enter whole minutes (e.g. 30).';
  const seconds = Number(text.trim()) * 60;
  if (seconds < 60 || seconds > SECONDS_MAX) return `Minutes must be between 1 and ${SECONDS_MAX / 60}.`;
  return seconds;
}

/** The dialog of one action on the account; onDone refreshes the page. */
export function AccountActionDialog(props: { account: AccountOverview; action: AccountAction; onDone: () => void; onCancel: () => void }) {
  const { account, action } = props;
  const common = { onDone: props.onDone, onCancel: props.onCancel };
  switch (action.kind) {
    case 'grant':
      return <GrantDialog userId={account.user_id} {...common} />;
    case 'claw-back':
      return <ClawBackDialog userId={account.user_id} availableSeconds={account.balance?.totals?.total_seconds ?? 0} {...common} />;
    case 'refund':
      return <RefundDialog userId={account.user_id} payment={action.payment} {...common} />;
    case 'cancel-subscription':
      return <SimpleAction title="Cancel the subscription" submitLabel="Cancel subscription" {...common}
        description={`${account.user_id}'s plan ${account.balance?.plan_key ?? ''} is cancelled with the provider.`}
        run={(api, reason, key) => api.cancelSubscription(account.user_id, { reason, idempotencyKey: key })} />;
    case 'change-subscription':
      return <ChangePlanDialog userId={account.user_id} currentPlan={account.balance?.plan_key ?? ''} {...common} />;
    case 'disable-auto-topup':
      return <SimpleAction title="Turn auto top-up off" submitLabel="Turn auto top-up off" {...common}
        description="No more automatic purchases for this account until the user turns it on again."
        run={(api, reason, key) => api.disableAutoTopup(account.user_id, { reason, idempotencyKey: key })} />;
    case 'revoke-key':
      return <SimpleAction title={`Revoke key ${action.key.key_id}`} submitLabel="Revoke key" {...common}
        description="Calls signed with this key are refused from now on."
        run={(api, reason, key) => api.revokeKey(action.key.key_id, { reason, idempotencyKey: key })} />;
  }
}

interface CommonProps {
  onDone: () => void;
  onCancel: () => void;
}

function SimpleAction(props: CommonProps & {
  title: string; description: string; submitLabel: string;
  run: (api: ReturnType<typeof useApi>, reason: string, idempotencyKey: string) => Promise<unknown>;
}) {
  const api = useApi();
  return (
    <ActionDialog title={props.title} description={props.description} submitLabel={props.submitLabel}
      onSubmit={(reason, key) => props.run(api, reason, key)} onDone={props.onDone} onCancel={props.onCancel} />
  );
}

function GrantDialog(props: CommonProps & { userId: string }) {
  const api = useApi();
  const ids = { source: useId(), minutes: useId(), expires: useId() };
  const [source, setSource] = useState<'gift' | 'adjustment'>('gift');
  const [minutes, setMinutes] = useState('');
  const [expires, setExpires] = useState('');
  const today = new Date().toISOString().slice(0, 10);
  return (
    <ActionDialog title="Grant minutes" submitLabel="Grant" onDone={props.onDone} onCancel={props.onCancel}
      description={`Credits ${props.userId}. A gift or an adjustment, with an optional expiry.`}
      validate={() => {
        const seconds = minutesToSeconds(minutes);
        if (typeof seconds === 'string') return seconds;
        if (expires && (startOfUtcDay(expires) === undefined || expires <= today)) return 'The expiry must be a date after today.';
        return undefined;
      }}
      onSubmit={(reason, idempotencyKey) => {
        const expiresAt = expires ? startOfUtcDay(expires) : undefined;
        return api.grant(props.userId, {
          source, seconds: minutesToSeconds(minutes) as number, reason, idempotencyKey, ...(expiresAt ? { expiresAt } : {}),
        });
      }}>
      <div className="field">
        <label htmlFor={ids.source}>Kind</label>
        <select id={ids.source} value={source} onChange={(event) => setSource(event.target.value as 'gift' | 'adjustment')}>
          <option value="gift">Gift</option>
          <option value="adjustment">Adjustment</option>
        </select>
      </div>
      <div className="field">
        <label htmlFor={ids.minutes}>Minutes</label>
        <input id={ids.minutes} inputMode="numeric" value={minutes} required aria-required="true"
          onChange={(event) => setMinutes(event.target.value)} />
      </div>
      <div className="field">
        <label htmlFor={ids.expires}>Expires on (UTC, optional: never)</label>
        <input id={ids.expires} type="date" value={expires} min={today} onChange={(event) => setExpires(event.target.value)} />
      </div>
    </ActionDialog>
  );
}

function ClawBackDialog(props: CommonProps & { userId: string; availableSeconds: number }) {
  const api = useApi();
  const field = useId();
  const [minutes, setMinutes] = useState('');
  return (
    <ActionDialog title="Claw back minutes" submitLabel="Claw back" onDone={props.onDone} onCancel={props.onCancel}
      description={`A negative adjustment on ${props.userId}; never below zero (available now: ${formatSeconds(props.availableSeconds)}).`}
      validate={() => {
        const seconds = minutesToSeconds(minutes);
        return typeof seconds === 'string' ? seconds : undefined;
      }}
      onSubmit={(reason, idempotencyKey) => api.clawBack(props.userId, { seconds: minutesToSeconds(minutes) as number, reason, idempotencyKey })}>
      <div className="field">
        <label htmlFor={field}>Minutes</label>
        <input id={field} inputMode="numeric" value={minutes} required aria-required="true" onChange={(event) => setMinutes(event.target.value)} />
      </div>
    </ActionDialog>
  );
}

function RefundDialog(props: CommonProps & { userId: string; payment: AccountPayment }) {
  const api = useApi();
  const field = useId();
  const { payment } = props;
  const remaining = payment.amount_cents - payment.refunded_cents;
  const [amount, setAmount] = useState('');
  const cents = () => (amount.trim() === '' ? 0 : Math.round(Number(amount) * 100));
  return (
    <ActionDialog title={`Refund payment ${payment.payment_id}`} submitLabel="Refund" onDone={props.onDone} onCancel={props.onCancel}
      description={`Asks the payment provider for the refund (${formatCents(remaining, payment.currency)} refundable); its webhook then takes the minutes back.`}
      validate={() => {
        const value = cents();
        if (!Number.isFinite(value) || value < 0) return 'Enter an amount like 4.99, or leave it empty for the whole remaining amount.';
        if (value > remaining) return `At most ${formatCents(remaining, payment.currency)} can be refunded.`;
        return undefined;
      }}
      onSubmit={(reason, idempotencyKey) => api.refundPayment(props.userId, payment.payment_id, { amountCents: cents(), reason, idempotencyKey })}>
      <div className="field">
        <label htmlFor={field}>Amount in {payment.currency.toUpperCase()} (empty: all that remains)</label>
        <input id={field} inputMode="decimal" value={amount} onChange={(event) => setAmount(event.target.value)} />
      </div>
    </ActionDialog>
  );
}

function ChangePlanDialog(props: CommonProps & { userId: string; currentPlan: string }) {
  const api = useApi();
  const field = useId();
  const [plan, setPlan] = useState('');
  return (
    <ActionDialog title="Change the subscription's plan" submitLabel="Change plan" onDone={props.onDone} onCancel={props.onCancel}
      description={`Current plan: ${props.currentPlan || 'none'}. Upgrades apply now, downgrades at the period's end.`}
      validate={() => (/^[a-z0-9_-]{1,64}$/.test(plan.trim()) ? undefined : 'Enter a plan key from the catalog (e.g. pro).')}
      onSubmit={(reason, idempotencyKey) => api.changeSubscription(props.userId, { planKey: plan.trim(), reason, idempotencyKey })}>
      <div className="field">
        <label htmlFor={field}>New plan key</label>
        <input id={field} value={plan} spellCheck={false} required aria-required="true" onChange={(event) => setPlan(event.target.value)} />
      </div>
    </ActionDialog>
  );
}
