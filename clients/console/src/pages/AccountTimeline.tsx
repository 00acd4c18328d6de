import { type FormEvent, useId, useState } from 'react';
import { LoadState, Pager, TableRegion } from '../components/LoadState.js';
import { useApi } from '../context.js';
import { formatSeconds, formatSignedSeconds, formatTimestamp, humanize, startOfUtcDay } from '../format.js';
import { buildTimeline } from '../timeline.js';
import { useLoad } from '../useLoad.js';
import { usePaging } from '../usePaging.js';

function daysAgo(days: number): string {
  return new Date(Date.now() - days * 86_400_000).toISOString().slice(0, 10);
}

/**
 * "Where did my minutes go": from a chosen day, every ledger row oldest first with the available
 * balance before and after it, and the unused time that expired between rows as lines of their own,
 * so each change of the balance has its line.
 */
export function AccountTimeline(props: { userId: string; refresh: number }) {
  const api = useApi();
  const field = useId();
  const [draft, setDraft] = useState(daysAgo(30));
  const [from, setFrom] = useState(draft);
  const paging = usePaging();
  const page = useLoad(
    () => api.ledger(props.userId, { fromAt: startOfUtcDay(from) ?? '', order: 'oldest_first', pageSize: 100, pageToken: paging.current }),
    [api, props.userId, from, paging.current, props.refresh],
  );

  function apply(event: FormEvent) {
    event.preventDefault();
    setFrom(draft);
    paging.reset();
  }

  return (
    <section aria-labelledby="timeline-heading" className="card wide">
      <h2 id="timeline-heading">Timeline: the available balance</h2>
      <form className="filters" onSubmit={apply} aria-label="Timeline start">
        <div className="field">
          <label htmlFor={field}>From (UTC day)</label>
          <input id={field} type="date" value={draft} onChange={(event) => setDraft(event.target.value)} />
        </div>
        <button type="submit">Show timeline</button>
      </form>
      <LoadState load={page} what="The timeline">
        {(data) => {
          // The expiry after the newest row (up to now) closes the last page only.
          const timeline = buildTimeline(data.rows, data.next_page_token ? 0 : data.expired_since_last_row_seconds);
          return (
            <>
              <p className="summary" data-console="timeline-summary">
                {data.rows.length === 0 ? `No ledger row since ${from}.` : (
                  <>Opening balance {formatSeconds(timeline.openingSeconds)}; credits {formatSignedSeconds(timeline.creditedSeconds)},
                    debits {formatSignedSeconds(-timeline.debitedSeconds)}, expired {formatSignedSeconds(-timeline.expiredSeconds)};
                    available after this page {formatSeconds(timeline.closingSeconds)}.</>
                )}
              </p>
              {data.rows.length ? (
                <TableRegion label="Timeline rows">
                  <table className="timeline">
                    <caption>Oldest first from {from}, page {paging.pageNumber}</caption>
                    <thead>
                      <tr><th scope="col">When</th><th scope="col">What</th><th scope="col">Before</th><th scope="col">Change</th><th scope="col">After</th></tr>
                    </thead>
                    <tbody>
                      {timeline.rows.map((row) => (
                        <tr key={row.key} className={[row.gapBefore ? 'gap' : '', row.kind === 'expiry' ? 'expiry' : ''].join(' ').trim() || undefined}
                          data-console={row.kind === 'expiry' ? 'timeline-expiry' : undefined}>
                          <td>{row.kind === 'expiry' ? 'in between' : formatTimestamp(row.occurredAt)}</td>
                          <td>{row.kind === 'expiry' ? `Expired: ${row.reason}` : humanize(row.type)}{row.operation ? ` · ${row.operation}` : ''}{row.gapBefore ? ' (rows missing before this one)' : ''}</td>
                          <td>{formatSeconds(row.balanceBeforeSeconds)}</td>
                          <td className={row.deltaSeconds < 0 ? 'debit' : 'credit'}>{formatSignedSeconds(row.deltaSeconds)}</td>
                          <td>{formatSeconds(row.balanceAfterSeconds)}</td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                </TableRegion>
              ) : null}
              <Pager label="Timeline pages" hasPrevious={paging.hasPrevious} nextToken={data.next_page_token}
                onPrevious={paging.previous} onNext={() => paging.next(data.next_page_token)} />
            </>
          );
        }}
      </LoadState>
    </section>
  );
}
