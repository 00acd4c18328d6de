import { useId } from 'react';
import { useBillingEvents } from '../hooks.js';
import { billingEventIcon, billingEventLabel, formatDateTime, minutes } from '../format.js';

export interface EventHistoryProps {
  pageSize?: number;
  userId?: string;
}

/** The ledger, newest first, with the guide's icons; "Load older events" fetches the next page. */
export function EventHistory({ pageSize = 20, userId }: EventHistoryProps) {
  const query = useBillingEvents({ pageSize, ...(userId !== undefined ? { userId } : {}) });
  const headingId = useId();
  if (query.isPending) return <div role="status" aria-busy="true">Loading history…</div>;
  if (query.error) return <div role="alert">Failed to load history: {query.error.message}</div>;
  return (
    <section aria-labelledby={headingId} data-billing="events">
      <h3 id={headingId}>History</h3>
      {query.events.length === 0 ? <p>No events yet.</p> : (
        <ul>
          {query.events.map((event, index) => {
            const credit = event.seconds > 0;
            const amount = `${credit ? '+' : event.seconds < 0 ? '−' : ''}${Math.abs(minutes(event.seconds))} min`;
            return (
              <li key={`${event.timestamp}-${index}`} data-type={event.type}>
                <span aria-hidden="true">{billingEventIcon(event.type)}</span>{' '}
                <span>{billingEventLabel(event.type)}</span>{' '}
                <strong data-part="amount" data-credit={credit}>{amount}</strong>{' '}
                {event.reason && <span>{event.reason}</span>}{' '}
                <time dateTime={event.timestamp}>{formatDateTime(event.timestamp)}</time>
              </li>
            );
          })}
        </ul>
      )}
      {query.hasNextPage && (
        <button type="button" onClick={() => void query.fetchNextPage()} disabled={query.isFetchingNextPage}>
          {query.isFetchingNextPage ? 'Loading…' : 'Load older events'}
        </button>
      )}
    </section>
  );
}
