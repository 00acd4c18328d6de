import { useId } from 'react';
import { useUsageAnalytics } from '../hooks.js';
import { minutes } from '../format.js';

export interface UsageChartProps {
  period?: 'day' | 'month';
  userId?: string;
}

function Bars({ caption, rows }: { caption: string; rows: Array<{ label: string; seconds: number }> }) {
  const max = Math.max(1, ...rows.map((row) => row.seconds));
  return (
    <table data-billing="usage-table">
      <caption>{caption}</caption>
      <thead>
        <tr><th scope="col">{caption.startsWith('By day') ? 'Day' : 'Operation'}</th><th scope="col">Minutes</th><th scope="col"><span className="visually-hidden">Share</span></th></tr>
      </thead>
      <tbody>
        {rows.map((row) => (
          <tr key={row.label}>
            <th scope="row">{row.label}</th>
            <td>{minutes(row.seconds)}</td>
            <td aria-hidden="true">
              <span data-part="bar" style={{ display: 'inline-block', height: '0.8em', background: '#2563eb', width: `${(row.seconds / max) * 100}%`, minWidth: row.seconds > 0 ? 2 : 0 }} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** Usage of the current day or month, by day and by operation: accessible tables with CSS bars. */
export function UsageChart({ period = 'month', userId }: UsageChartProps) {
  const { data: usage, isPending, error } = useUsageAnalytics(period, userId);
  const headingId = useId();
  if (isPending) return <div role="status" aria-busy="true">Loading usage…</div>;
  if (error || !usage) return <div role="alert">Failed to load usage: {error?.message ?? 'no data'}</div>;
  const operations = Object.entries(usage.by_operation).map(([label, seconds]) => ({ label, seconds }));
  const days = usage.daily_trend.map((day) => ({ label: day.date, seconds: day.seconds }));
  return (
    <section aria-labelledby={headingId} data-billing="usage">
      <h3 id={headingId}>Usage this {period}: {minutes(usage.total_seconds)} min</h3>
      {days.length === 0 && operations.length === 0 ? (
        <p>No usage yet.</p>
      ) : (
        <>
          <Bars caption="By day" rows={days} />
          <Bars caption="By operation" rows={operations} />
        </>
      )}
    </section>
  );
}
