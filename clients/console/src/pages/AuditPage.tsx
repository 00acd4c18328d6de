import { type FormEvent, Fragment, useEffect, useId, useState } from 'react';
import type { AuditEntry, BalanceTotals } from '@billing/client/admin';
import { LoadState, Pager, TableRegion } from '../components/LoadState.js';
import { useApi } from '../context.js';
import { endOfUtcDay, formatSeconds, formatTimestamp, humanize, startOfUtcDay } from '../format.js';
import { hrefFor } from '../router.js';
import { useLoad } from '../useLoad.js';
import { usePaging } from '../usePaging.js';

export const AUDIT_ACTIONS = [
  'grant', 'claw_back', 'refund_payment', 'cancel_subscription', 'change_subscription', 'disable_auto_topup', 'revoke_key',
  'reprocess_stripe_event',
] as const;

interface Filter {
  userId: string;
  action: string;
  operatorKeyId: string;
  from: string;
  to: string;
}

function totals(value: BalanceTotals | undefined): string {
  return value ? formatSeconds(value.total_seconds) : '—';
}

/** Who did what, when and why: the operator actions, newest first, filterable. */
export function AuditPage(props: { userId: string }) {
  const api = useApi();
  const ids = { user: useId(), action: useId(), operator: useId(), from: useId(), to: useId() };
  const initial: Filter = { userId: props.userId, action: '', operatorKeyId: '', from: '', to: '' };
  const [draft, setDraft] = useState(initial);
  const [filter, setFilter] = useState(initial);
  const paging = usePaging();
  const [open, setOpen] = useState<string>();
  useEffect(() => { document.title = 'Audit · Billing console'; }, []);
  const page = useLoad(() => api.audit({
    userId: filter.userId.trim(), action: filter.action, operatorKeyId: filter.operatorKeyId.trim(),
    fromAt: startOfUtcDay(filter.from) ?? '', toAt: endOfUtcDay(filter.to) ?? '', pageToken: paging.current,
  }), [api, filter, paging.current]);

  function apply(event: FormEvent) {
    event.preventDefault();
    setFilter(draft);
    paging.reset();
  }

  return (
    <>
      <h1>Audit trail</h1>
      <form className="filters" onSubmit={apply} aria-label="Audit filters">
        <div className="field"><label htmlFor={ids.user}>User id</label>
          <input id={ids.user} value={draft.userId} spellCheck={false} onChange={(event) => setDraft({ ...draft, userId: event.target.value })} /></div>
        <div className="field"><label htmlFor={ids.action}>Action</label>
          <select id={ids.action} value={draft.action} onChange={(event) => setDraft({ ...draft, action: event.target.value })}>
            <option value="">All actions</option>
            {AUDIT_ACTIONS.map((action) => <option key={action} value={action}>{humanize(action)}</option>)}
          </select></div>
        <div className="field"><label htmlFor={ids.operator}>Operator key id</label>
          <input id={ids.operator} value={draft.operatorKeyId} spellCheck={false} onChange={(event) => setDraft({ ...draft, operatorKeyId: event.target.value })} /></div>
        <div className="field"><label htmlFor={ids.from}>From (UTC day)</label>
          <input id={ids.from} type="date" value={draft.from} onChange={(event) => setDraft({ ...draft, from: event.target.value })} /></div>
        <div className="field"><label htmlFor={ids.to}>To (UTC day)</label>
          <input id={ids.to} type="date" value={draft.to} onChange={(event) => setDraft({ ...draft, to: event.target.value })} /></div>
        <button type="submit">Apply filters</button>
      </form>
      <LoadState load={page} what="The audit trail">
        {(data) => (
          <>
            <TableRegion label="Audit entries">
              <table>
                <caption>Operator actions, newest first, page {paging.pageNumber}</caption>
                <thead><tr><th scope="col">When</th><th scope="col">Action</th><th scope="col">User</th><th scope="col">Operator key</th>
                  <th scope="col">Reason</th><th scope="col">Before → after</th><th scope="col">Detail</th></tr></thead>
                <tbody>
                  {data.entries.length === 0 ? <tr><td colSpan={7}>No audit entries match.</td></tr> : data.entries.map((entry) => (
                    <AuditLine key={entry.audit_id} entry={entry} open={open === entry.audit_id}
                      onToggle={() => setOpen(open === entry.audit_id ? undefined : entry.audit_id)} />
                  ))}
                </tbody>
              </table>
            </TableRegion>
            <Pager label="Audit pages" hasPrevious={paging.hasPrevious} nextToken={data.next_page_token}
              onPrevious={paging.previous} onNext={() => paging.next(data.next_page_token)} />
          </>
        )}
      </LoadState>
    </>
  );
}

function AuditLine(props: { entry: AuditEntry; open: boolean; onToggle: () => void }) {
  const { entry } = props;
  const detailId = `audit-${entry.audit_id}`;
  return (
    <Fragment>
      <tr>
        <td>{formatTimestamp(entry.created_at)}</td>
        <td>{humanize(entry.action)}</td>
        <td>{entry.user_id ? <a href={hrefFor({ page: 'account', userId: entry.user_id })}>{entry.user_id}</a> : '—'}</td>
        <td className="mono">{entry.operator_key_id}</td>
        <td>{entry.reason}</td>
        <td>{totals(entry.before)} → {totals(entry.after)}</td>
        <td><button type="button" aria-expanded={props.open} aria-controls={detailId} onClick={props.onToggle}
          aria-label={`${props.open ? 'Hide' : 'Show'} detail of audit entry ${entry.audit_id}`}>{props.open ? 'Hide' : 'Show'}</button></td>
      </tr>
      <tr id={detailId} hidden={!props.open} className="details-row">
        <td colSpan={7}><pre>{JSON.stringify({ audit_id: entry.audit_id, ...entry.detail }, null, 2)}</pre></td>
      </tr>
    </Fragment>
  );
}
