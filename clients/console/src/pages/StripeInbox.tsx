import { type FormEvent, Fragment, useEffect, useId, useState } from 'react';
import type { StripeEventRecord } from '@billing/client/admin';
import { ActionDialog } from '../components/ActionDialog.js';
import { LoadState, Pager, TableRegion } from '../components/LoadState.js';
import { useApi } from '../context.js';
import { formatTimestamp, humanize } from '../format.js';
import { hrefFor } from '../router.js';
import { useLoad } from '../useLoad.js';
import { usePaging } from '../usePaging.js';

const OUTCOMES = ['kept', 'processed', 'ignored'] as const;

/** Stripe's deliveries as received: their outcome, the ones kept for an operator, and reprocessing. */
export function StripeInbox() {
  const api = useApi();
  const ids = { outcome: useId(), user: useId() };
  const [draft, setDraft] = useState({ outcome: '', userId: '' });
  const [filter, setFilter] = useState(draft);
  const paging = usePaging();
  const [refresh, setRefresh] = useState(0);
  const [open, setOpen] = useState<string>();
  const [reprocess, setReprocess] = useState<StripeEventRecord>();
  const [done, setDone] = useState('');
  useEffect(() => { document.title = 'Stripe inbox · Billing console'; }, []);
  const page = useLoad(() => api.stripeEvents({ outcome: filter.outcome, userId: filter.userId.trim(), pageToken: paging.current }),
    [api, filter, paging.current, refresh]);

  function apply(event: FormEvent) {
    event.preventDefault();
    setFilter(draft);
    paging.reset();
  }

  return (
    <>
      <h1>Stripe inbox</h1>
      <p>Deliveries from Stripe and what the service did with each. “Kept” ones need an operator (unknown customer, unreadable).</p>
      <form className="filters" onSubmit={apply} aria-label="Stripe event filters">
        <div className="field"><label htmlFor={ids.outcome}>Outcome</label>
          <select id={ids.outcome} value={draft.outcome} onChange={(event) => setDraft({ ...draft, outcome: event.target.value })}>
            <option value="">All outcomes</option>
            {OUTCOMES.map((outcome) => <option key={outcome} value={outcome}>{humanize(outcome)}</option>)}
          </select></div>
        <div className="field"><label htmlFor={ids.user}>User id</label>
          <input id={ids.user} value={draft.userId} spellCheck={false} onChange={(event) => setDraft({ ...draft, userId: event.target.value })} /></div>
        <button type="submit">Apply filters</button>
      </form>
      <p role="status" className="success">{done}</p>
      <LoadState load={page} what="Stripe events">
        {(data) => (
          <>
            <TableRegion label="Stripe events">
              <table>
                <caption>Newest first, page {paging.pageNumber}</caption>
                <thead><tr><th scope="col">Received</th><th scope="col">Event</th><th scope="col">Type</th><th scope="col">Outcome</th>
                  <th scope="col">User</th><th scope="col">Detail</th><th scope="col">Actions</th></tr></thead>
                <tbody>
                  {data.events.length === 0 ? <tr><td colSpan={7}>No Stripe events match.</td></tr> : data.events.map((event) => (
                    <Fragment key={event.event_id}>
                      <tr>
                        <td>{formatTimestamp(event.received_at)}</td>
                        <td className="mono">{event.event_id}</td>
                        <td>{event.event_type}</td>
                        <td><span className={`badge badge-${event.outcome}`}>{humanize(event.outcome)}</span></td>
                        <td>{event.user_id ? <a href={hrefFor({ page: 'account', userId: event.user_id })}>{event.user_id}</a> : '—'}</td>
                        <td>{event.detail || '—'}</td>
                        <td className="actions">
                          <button type="button" aria-expanded={open === event.event_id} aria-controls={`stripe-${event.event_id}`}
                            onClick={() => setOpen(open === event.event_id ? undefined : event.event_id)}
                            aria-label={`${open === event.event_id ? 'Hide' : 'Show'} payload of ${event.event_id}`}>Payload</button>
                          <button type="button" onClick={() => { setDone(''); setReprocess(event); }}
                            aria-label={`Reprocess ${event.event_id}`}>Reprocess…</button>
                        </td>
                      </tr>
                      <tr id={`stripe-${event.event_id}`} hidden={open !== event.event_id} className="details-row">
                        <td colSpan={7}><pre>{event.payload ? JSON.stringify(event.payload, null, 2) : event.payload_excerpt || '(no payload)'}</pre></td>
                      </tr>
                    </Fragment>
                  ))}
                </tbody>
              </table>
            </TableRegion>
            <Pager label="Stripe event pages" hasPrevious={paging.hasPrevious} nextToken={data.next_page_token}
              onPrevious={paging.previous} onNext={() => paging.next(data.next_page_token)} />
          </>
        )}
      </LoadState>
      {reprocess ? (
        <ActionDialog title={`Reprocess ${reprocess.event_id}`} submitLabel="Reprocess"
          description="Runs this delivery through the verified-event handling again (credits are idempotent: nothing is applied twice)."
          onSubmit={(reason, idempotencyKey) => api.reprocessStripeEvent(reprocess.event_id, { reason, idempotencyKey })}
          onCancel={() => setReprocess(undefined)}
          onDone={() => { setDone(`Reprocessed ${reprocess.event_id}.`); setReprocess(undefined); setRefresh((value) => value + 1); }} />
      ) : null}
    </>
  );
}
