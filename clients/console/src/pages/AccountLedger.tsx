import { type FormEvent, Fragment, useId, useState } from 'react';
import type { LedgerRow } from '@billing/client/admin';
import { describeError } from '../api.js';
import { LoadState, Pager, TableRegion } from '../components/LoadState.js';
import { useApi } from '../context.js';
import { endOfUtcDay, formatSeconds, formatSignedSeconds, formatTimestamp, humanize, startOfUtcDay } from '../format.js';
import { useLoad } from '../useLoad.js';
import { usePaging } from '../usePaging.js';

/** The ledger's types the history shows (the filter's choices). */
export const LEDGER_TYPES = [
  'consumption', 'package_credit', 'subscription_credit', 'daily_bonus', 'adjustment', 'rollover_created',
  'rollover_discard', 'rollover_discard_pending', 'auto_topup_triggered',
] as const;

interface Filter {
  type: string;
  from: string;
  to: string;
}

/** Saves a Blob under a file name (an object URL on a temporary link; the console sets no cookie and opens no tab). */
export function saveBlob(blob: Blob, fileName: string): void {
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = fileName;
  link.rel = 'noopener';
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function AccountLedger(props: { userId: string; refresh: number }) {
  const api = useApi();
  const ids = { type: useId(), from: useId(), to: useId() };
  const [draft, setDraft] = useState<Filter>({ type: '', from: '', to: '' });
  const [filter, setFilter] = useState<Filter>(draft);
  const paging = usePaging();
  const [open, setOpen] = useState<Set<string>>(new Set());
  const [exportState, setExportState] = useState<string>();
  const query = {
    ...(filter.type ? { types: [filter.type] } : {}),
    ...(startOfUtcDay(filter.from) ? { fromAt: startOfUtcDay(filter.from) as string } : {}),
    ...(endOfUtcDay(filter.to) ? { toAt: endOfUtcDay(filter.to) as string } : {}),
  };
  const page = useLoad(
    () => api.ledger(props.userId, { ...query, pageSize: 50, pageToken: paging.current, order: 'newest_first' }),
    [api, props.userId, filter, paging.current, props.refresh],
  );

  function apply(event: FormEvent) {
    event.preventDefault();
    setFilter(draft);
    paging.reset();
  }

  async function exportCsv() {
    setExportState('Exporting…');
    try {
      const { blob, rowCount } = await api.exportLedger(props.userId, query);
      saveBlob(blob, `ledger-${props.userId.replace(/[^A-Za-z0-9_.-]/g, '_')}.csv`);
      setExportState(`Exported ${rowCount} row${rowCount === 1 ? '' : 's'} as CSV.`);
    } catch (error) {
      setExportState(`The export failed: ${describeError(error)}`);
    }
  }

  function toggle(seq: string) {
    setOpen((previous) => {
      const next = new Set(previous);
      if (next.has(seq)) next.delete(seq);
      else next.add(seq);
      return next;
    });
  }

  return (
    <section aria-labelledby="ledger-heading" className="card wide">
      <h2 id="ledger-heading">Ledger</h2>
      <form className="filters" onSubmit={apply} aria-label="Ledger filters">
        <div className="field">
          <label htmlFor={ids.type}>Type</label>
          <select id={ids.type} value={draft.type} onChange={(event) => setDraft({ ...draft, type: event.target.value })}>
            <option value="">All types</option>
            {LEDGER_TYPES.map((type) => <option key={type} value={type}>{humanize(type)}</option>)}
          </select>
        </div>
        <div className="field">
          <label htmlFor={ids.from}>From (UTC day)</label>
          <input id={ids.from} type="date" value={draft.from} onChange={(event) => setDraft({ ...draft, from: event.target.value })} />
        </div>
        <div className="field">
          <label htmlFor={ids.to}>To (UTC day, included)</label>
          <input id={ids.to} type="date" value={draft.to} onChange={(event) => setDraft({ ...draft, to: event.target.value })} />
        </div>
        <button type="submit">Apply filters</button>
        <button type="button" onClick={exportCsv}>Export CSV</button>
      </form>
      <p role="status" className="export-status">{exportState ?? ''}</p>
      <LoadState load={page} what="The ledger">
        {(data) => (
          <>
            <TableRegion label="Ledger rows">
              <table className="ledger">
                <caption>Newest first, page {paging.pageNumber}</caption>
                <thead>
                  <tr><th scope="col">When</th><th scope="col">Type</th><th scope="col">Change</th><th scope="col">Available after</th>
                    <th scope="col">Operation / reason</th><th scope="col">Details</th></tr>
                </thead>
                <tbody>
                  {data.rows.length === 0 ? <tr><td colSpan={6}>No ledger rows match.</td></tr> : data.rows.map((row) => (
                    <LedgerLine key={row.event_seq} row={row} open={open.has(row.event_seq)} onToggle={() => toggle(row.event_seq)} />
                  ))}
                </tbody>
              </table>
            </TableRegion>
            <Pager label="Ledger pages" hasPrevious={paging.hasPrevious} nextToken={data.next_page_token}
              onPrevious={paging.previous} onNext={() => paging.next(data.next_page_token)} />
          </>
        )}
      </LoadState>
    </section>
  );
}

function LedgerLine(props: { row: LedgerRow; open: boolean; onToggle: () => void }) {
  const { row } = props;
  const detailsId = `ledger-row-${row.event_seq}`;
  const metadata = Object.entries(row.metadata ?? {});
  return (
    <Fragment>
      <tr>
        <td>{formatTimestamp(row.occurred_at)}</td>
        <td>{humanize(row.type)}</td>
        <td className={row.seconds < 0 ? 'debit' : 'credit'}>{formatSignedSeconds(row.seconds)}</td>
        <td>{formatSeconds(row.available_after_seconds)}</td>
        <td>{[row.operation, row.reason].filter(Boolean).join(' · ') || '—'}</td>
        <td>
          <button type="button" aria-expanded={props.open} aria-controls={detailsId} onClick={props.onToggle}
            aria-label={`${props.open ? 'Hide' : 'Show'} details of row ${row.event_seq}`}>
            {props.open ? 'Hide' : 'Show'}
          </button>
        </td>
      </tr>
      <tr id={detailsId} hidden={!props.open} className="details-row">
        <td colSpan={6}>
          <dl className="pairs compact">
            <div><dt>Ledger row</dt><dd className="mono">#{row.event_seq}</dd></div>
            <div><dt>Bucket</dt><dd className="mono">{row.bucket_seq ? `#${row.bucket_seq}` : '—'}</dd></div>
            {metadata.map(([name, value]) => (
              <div key={name}><dt>{humanize(name)}</dt><dd className="mono">{typeof value === 'string' ? value : JSON.stringify(value)}</dd></div>
            ))}
          </dl>
        </td>
      </tr>
    </Fragment>
  );
}
