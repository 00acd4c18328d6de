import { Bar, BarChart, CartesianGrid, Legend, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { LoadState, TableRegion } from '../components/LoadState.js';
import { SERIES_COLOURS, usageByDay } from '../charts.js';
import { useApi } from '../context.js';
import { formatSeconds } from '../format.js';
import { useLoad } from '../useLoad.js';

const DAYS = 30;

/** Usage per day (stacked by operation) and per operation over the last 30 UTC days. */
export function UsageChart(props: { userId: string; refresh: number }) {
  const api = useApi();
  const usage = useLoad(() => api.usage(props.userId, DAYS), [api, props.userId, props.refresh]);
  return (
    <section aria-labelledby="usage-heading" className="card wide">
      <h2 id="usage-heading">Usage, last {DAYS} days</h2>
      <LoadState load={usage} what="Usage">
        {(data) => {
          const chart = usageByDay(data.rows, new Date().toISOString().slice(0, 10), DAYS);
          return (
            <>
              <p>{formatSeconds(data.total_seconds)} consumed in {DAYS} days.</p>
              <div className="charts">
                <figure className="chart" aria-label={`Minutes used per day by operation, last ${DAYS} days`}>
                  <ResponsiveContainer width="100%" height={260}>
                    <BarChart data={chart.days} margin={{ top: 8, right: 16, bottom: 8, left: 0 }}>
                      <CartesianGrid strokeDasharray="3 3" />
                      <XAxis dataKey="date" tickFormatter={(date: string) => date.slice(5)} minTickGap={16} />
                      <YAxis unit=" min" width={64} />
                      <Tooltip />
                      <Legend />
                      {chart.operations.map((operation, index) => (
                        <Bar key={operation} dataKey={operation} stackId="usage" name={operation} fill={SERIES_COLOURS[index % SERIES_COLOURS.length]!} />
                      ))}
                    </BarChart>
                  </ResponsiveContainer>
                  <figcaption>Minutes per day, stacked by operation</figcaption>
                </figure>
                <figure className="chart" aria-label="Minutes used per operation">
                  <ResponsiveContainer width="100%" height={260}>
                    <BarChart data={chart.totals} layout="vertical" margin={{ top: 8, right: 16, bottom: 8, left: 16 }}>
                      <CartesianGrid strokeDasharray="3 3" />
                      <XAxis type="number" unit=" min" />
                      <YAxis type="category" dataKey="operation" width={120} />
                      <Tooltip />
                      <Bar dataKey="minutes" name="minutes" fill={SERIES_COLOURS[0]!} />
                    </BarChart>
                  </ResponsiveContainer>
                  <figcaption>Minutes per operation</figcaption>
                </figure>
              </div>
              <details>
                <summary>Usage as a table</summary>
                <TableRegion label="Usage per day and operation">
                  <table>
                    <thead><tr><th scope="col">Day</th><th scope="col">Operation</th><th scope="col">Used</th></tr></thead>
                    <tbody>
                      {data.rows.length === 0 ? <tr><td colSpan={3}>No usage.</td></tr> : data.rows.map((row) => (
                        <tr key={`${row.date}-${row.operation}`}><td>{row.date}</td><td>{row.operation}</td><td>{formatSeconds(row.seconds)}</td></tr>
                      ))}
                    </tbody>
                  </table>
                </TableRegion>
              </details>
            </>
          );
        }}
      </LoadState>
    </section>
  );
}
