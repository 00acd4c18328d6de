import { type FormEvent, Fragment, useEffect, useId, useRef, useState } from 'react';
import type { WebhookDelivery } from '@billing/client/admin';
import { describeError } from '../api.js';
import { Dialog } from '../components/Dialog.js';
import { LoadState, Pager, TableRegion } from '../components/LoadState.js';
import { useApi } from '../context.js';
import { formatTimestamp, humanize } from '../format.js';
import { hrefFor } from '../router.js';
import { useLoad } from '../useLoad.js';
import { usePaging } from '../usePaging.js';

const STATUSES = ['pending', 'delivered', 'failed'] as const;

/** Outbound events: the app's endpoints, the delivery log with each attempt, and replay. */
export function WebhooksPage() {
  const api = useApi();
  const ids = { status: useId(), user: useId(), endpoint: useId() };
  const [draft, setDraft] = useState({ status: '', userId: '', endpointId: '' });
  const [filter, setFilter] = useState(draft);
  const paging = usePaging();
  const [refresh, setRefresh] = useState(0);
  const [open, setOpen] = useState<string>();
  const [replay, setReplay] = useState<WebhookDelivery>();
  const [done, setDone] = useState('');
  useEffect(() => { document.title = 'Webhook deliveries · Billing console'; }, []);
  const endpoints = useLoad(() => api.webhookEndpoints(), [api, refresh]);
  const page = useLoad(() => api.webhookDeliveries({ status: filter.status, userId: filter.userId.trim(), endpointId: filter.endpointId, pageToken: paging.current }),
    [api, filter, paging.current, refresh]);

  function apply(event: FormEvent) {
    event.preventDefault();
    setFilter(draft);
    paging.reset();
  }

  return (
    <>
      <h1>Webhook deliveries</h1>
      <section aria-labelledby="endpoints-heading" className="card wide">
        <h2 id="endpoints-heading">Endpoints</h2>
        <LoadState load={endpoints} what="Endpoints">
          {(data) => data.endpoints.length === 0 ? <p>No endpoint is registered (`billing webhooks add`).</p> : (
            <TableRegion label="Webhook endpoints">
              <table>
                <thead><tr><th scope="col">Endpoint</th><th scope="col">URL</th><th scope="col">Events</th><th scope="col">State</th><th scope="col">Created</th></tr></thead>
                <tbody>
                  {data.endpoints.map((endpoint) => (
                    <tr key={endpoint.endpoint_id}>
                      <td className="mono">{endpoint.endpoint_id}</td><td className="mono">{endpoint.url}</td>
                      <td>{endpoint.event_types.length ? endpoint.event_types.join(', ') : 'All'}</td>
                      <td>{endpoint.enabled ? 'Enabled' : `Disabled${endpoint.disabled_reason ? ` (${endpoint.disabled_reason})` : ''}`}</td>
                      <td>{formatTimestamp(endpoint.created_at)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </TableRegion>
          )}
        </LoadState>
      </section>

      <section aria-labelledby="deliveries-heading" className="card wide">
        <h2 id="deliveries-heading">Deliveries</h2>
        <form className="filters" onSubmit={apply} aria-label="Delivery filters">
          <div className="field"><label htmlFor={ids.status}>Status</label>
            <select id={ids.status} value={draft.status} onChange={(event) => setDraft({ ...draft, status: event.target.value })}>
              <option value="">All statuses</option>
              {STATUSES.map((status) => <option key={status} value={status}>{humanize(status)}</option>)}
            </select></div>
          <div className="field"><label htmlFor={ids.user}>User id</label>
            <input id={ids.user} value={draft.userId} spellCheck={false} onChange={(event) => setDraft({ ...draft, userId: event.target.value })} /></div>
          <div className="field"><label htmlFor={ids.endpoint}>Endpoint id</label>
            <input id={ids.endpoint} value={draft.endpointId} spellCheck={false} onChange={(event) => setDraft({ ...draft, endpointId: event.target.value })} /></div>
          <button type="submit">Apply filters</button>
        </form>
        <p role="status" className="success">{done}</p>
        <LoadState load={page} what="Deliveries">
          {(data) => (
            <>
              <TableRegion label="Webhook deliveries">
                <table>
                  <caption>Newest first, page {paging.pageNumber}</caption>
                  <thead><tr><th scope="col">Created</th><th scope="col">Event</th><th scope="col">Type</th><th scope="col">User</th>
                    <th scope="col">Status</th><th scope="col">Attempts</th><th scope="col">Last answer</th><th scope="col">Actions</th></tr></thead>
                  <tbody>
                    {data.deliveries.length === 0 ? <tr><td colSpan={8}>No deliveries match.</td></tr> : data.deliveries.map((delivery) => {
                      const rowKey = `${delivery.event_id}-${delivery.endpoint_id}`;
                      return (
                        <Fragment key={rowKey}>
                          <tr>
                            <td>{formatTimestamp(delivery.created_at)}</td>
                            <td className="mono">{delivery.event_id}</td>
                            <td>{delivery.event_type}</td>
                            <td>{delivery.user_id ? <a href={hrefFor({ page: 'account', userId: delivery.user_id })}>{delivery.user_id}</a> : '—'}</td>
                            <td><span className={`badge badge-${delivery.status}`}>{humanize(delivery.status)}</span></td>
                            <td>{delivery.attempts}</td>
                            <td>{delivery.last_status_code ?? delivery.last_error ?? '—'}</td>
                            <td className="actions">
                              <button type="button" aria-expanded={open === rowKey} aria-controls={`delivery-${rowKey}`}
                                onClick={() => setOpen(open === rowKey ? undefined : rowKey)}
                                aria-label={`${open === rowKey ? 'Hide' : 'Show'} attempts of ${delivery.event_id}`}>Attempts</button>
                              <button type="button" onClick={() => { setDone(''); setReplay(delivery); }} aria-label={`Replay ${delivery.event_id}`}>Replay…</button>
                            </td>
                          </tr>
                          <tr id={`delivery-${rowKey}`} hidden={open !== rowKey} className="details-row">
                            <td colSpan={8}>
                              {delivery.attempt_log.length === 0 ? 'No attempt yet.' : (
                                <ol className="attempts">
                                  {delivery.attempt_log.map((attempt, index) => (
                                    <li key={index}>{formatTimestamp(attempt.attempted_at)}: {attempt.status_code ?? attempt.error ?? 'no answer'} in {attempt.latency_ms} ms
                                      {attempt.response_excerpt ? <> — <code>{attempt.response_excerpt}</code></> : null}</li>
                                  ))}
                                </ol>
                              )}
                            </td>
                          </tr>
                        </Fragment>
                      );
                    })}
                  </tbody>
                </table>
              </TableRegion>
              <Pager label="Delivery pages" hasPrevious={paging.hasPrevious} nextToken={data.next_page_token}
                onPrevious={paging.previous} onNext={() => paging.next(data.next_page_token)} />
            </>
          )}
        </LoadState>
      </section>
      {replay ? (
        <ReplayDialog delivery={replay} onCancel={() => setReplay(undefined)}
          onDone={(count) => { setDone(`Replayed ${replay.event_id}: ${count} deliver${count === 1 ? 'y' : 'ies'} due again.`); setReplay(undefined); setRefresh((value) => value + 1); }} />
      ) : null}
    </>
  );
}

function ReplayDialog(props: { delivery: WebhookDelivery; onCancel: () => void; onDone: (count: number) => void }) {
  const api = useApi();
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const errorBox = useRef<HTMLParagraphElement>(null);
  async function confirm(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    try {
      const answer = await api.replayWebhookEvent(props.delivery.event_id);
      props.onDone(answer.replayed);
    } catch (caught) {
      setError(describeError(caught));
      setBusy(false);
      queueMicrotask(() => errorBox.current?.focus());
    }
  }
  return (
    <Dialog title={`Replay ${props.delivery.event_id}`} onClose={props.onCancel}
      description="Its deliveries become due again, to every endpoint that had it (their attempts are kept).">
      <form onSubmit={confirm}>
        {error ? <p className="error" role="alert" tabIndex={-1} ref={errorBox}>{error}</p> : null}
        <div className="dialog-buttons">
          <button type="button" onClick={props.onCancel} disabled={busy}>Cancel</button>
          <button type="submit" className="primary" disabled={busy}>{busy ? 'Working…' : 'Replay'}</button>
        </div>
      </form>
    </Dialog>
  );
}
