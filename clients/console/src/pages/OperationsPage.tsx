import { Fragment, useEffect, useState } from 'react';
import { Bar, BarChart, CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { LoadState, Pager, TableRegion } from '../components/LoadState.js';
import { SERIES_COLOURS, activityPoints } from '../charts.js';
import { useApi } from '../context.js';
import { formatTimestamp } from '../format.js';
import { useLoad } from '../useLoad.js';
import { usePaging } from '../usePaging.js';

/** The service as a whole: health, the last 24 hours, and the legacy migration's runs. */
export function OperationsPage() {
  const api = useApi();
  const [refresh, setRefresh] = useState(0);
  useEffect(() => { document.title = 'Operations · Billing console'; }, []);
  const health = useLoad(() => api.health(), [api, refresh]);
  const activity = useLoad(() => api.activity(24), [api, refresh]);
  return (
    <>
      <h1>Operations</h1>
      <button type="button" onClick={() => setRefresh((value) => value + 1)}>Refresh</button>
      <section aria-labelledby="health-heading" className="card wide">
        <h2 id="health-heading">Health</h2>
        <LoadState load={health} what="Health">
          {(data) => (
            <>
              <dl className="totals">
                <div><dt>Database</dt><dd>{data.database_ok ? `OK (${data.database_latency_ms} ms)` : 'Unreachable'}</dd></div>
                <div><dt>Replicas seen (60 s)</dt><dd>{data.replicas.length}</dd></div>
                <div><dt>Pool (this replica)</dt><dd>{data.pool ? `${data.pool.size - data.pool.available}/${data.pool.max_size} in use, ${data.pool.waiting} waiting` : '—'}</dd></div>
                <div><dt>Last tick</dt><dd>{formatTimestamp(data.last_tick_at)}</dd></div>
                <div><dt>Webhook backlog</dt><dd>{data.webhook_undispatched_events} events, {data.webhook_pending_deliveries} deliveries pending</dd></div>
                <div><dt>Webhooks failed (24 h)</dt><dd>{data.webhook_failed_last_24h}</dd></div>
                <div><dt>Stripe events kept</dt><dd>{data.stripe_events_kept}</dd></div>
              </dl>
              {data.replicas.length ? (
                <TableRegion label="Replicas">
                  <table>
                    <thead><tr><th scope="col">Replica</th><th scope="col">Host</th><th scope="col">PID</th><th scope="col">Started</th><th scope="col">Seen</th></tr></thead>
                    <tbody>{data.replicas.map((replica) => (
                      <tr key={replica.replica_id}><td className="mono">{replica.replica_id}</td><td>{replica.host}</td><td>{replica.pid}</td>
                        <td>{formatTimestamp(replica.started_at)}</td><td>{formatTimestamp(replica.seen_at)}</td></tr>
                    ))}</tbody>
                  </table>
                </TableRegion>
              ) : null}
            </>
          )}
        </LoadState>
      </section>

      <section aria-labelledby="activity-heading" className="card wide">
        <h2 id="activity-heading">Last 24 hours</h2>
        <LoadState load={activity} what="Activity">
          {(data) => {
            const points = activityPoints(data.hours);
            return (
              <div className="charts">
                <figure className="chart" aria-label="Consumed minutes per hour, last 24 hours">
                  <ResponsiveContainer width="100%" height={240}>
                    <BarChart data={points} margin={{ top: 8, right: 16, bottom: 8, left: 0 }}>
                      <CartesianGrid strokeDasharray="3 3" />
                      <XAxis dataKey="hour" minTickGap={12} />
                      <YAxis unit=" min" width={64} />
                      <Tooltip />
                      <Bar dataKey="consumedMinutes" name="consumed minutes" fill={SERIES_COLOURS[0]!} />
                    </BarChart>
                  </ResponsiveContainer>
                  <figcaption>Consumed minutes per UTC hour</figcaption>
                </figure>
                <figure className="chart" aria-label="Refusals, top-ups and webhook outcomes per hour, last 24 hours">
                  <ResponsiveContainer width="100%" height={240}>
                    <LineChart data={points} margin={{ top: 8, right: 16, bottom: 8, left: 0 }}>
                      <CartesianGrid strokeDasharray="3 3" />
                      <XAxis dataKey="hour" minTickGap={12} />
                      <YAxis allowDecimals={false} width={48} />
                      <Tooltip />
                      <Legend />
                      <Line dataKey="refusals" name="refusals" stroke={SERIES_COLOURS[1]!} dot={false} />
                      <Line dataKey="topupsSucceeded" name="top-ups" stroke={SERIES_COLOURS[2]!} dot={false} />
                      <Line dataKey="topupsFailed" name="top-ups failed" stroke={SERIES_COLOURS[4]!} dot={false} strokeDasharray="4 2" />
                      <Line dataKey="webhooksDelivered" name="webhooks delivered" stroke={SERIES_COLOURS[3]!} dot={false} />
                      <Line dataKey="webhooksFailed" name="webhooks failed" stroke={SERIES_COLOURS[5]!} dot={false} strokeDasharray="4 2" />
                    </LineChart>
                  </ResponsiveContainer>
                  <figcaption>Refusals, top-ups and webhook outcomes per UTC hour</figcaption>
                </figure>
              </div>
            );
          }}
        </LoadState>
      </section>
      <MigrationRuns />
    </>
  );
}

function MigrationRuns() {
  const api = useApi();
  const paging = usePaging();
  const [open, setOpen] = useState<string>();
  const runs = useLoad(() => api.migrationRuns(paging.current), [api, paging.current]);
  return (
    <section aria-labelledby="migrations-heading" className="card wide">
      <h2 id="migrations-heading">Migration runs</h2>
      <LoadState load={runs} what="Migration runs">
        {(data) => data.runs.length === 0 ? <p>No migration has run.</p> : (
          <>
            <TableRegion label="Migration runs table">
              <table>
                <thead><tr><th scope="col">Started</th><th scope="col">Finished</th><th scope="col">File</th><th scope="col">Rows read</th>
                  <th scope="col">Migrated</th><th scope="col">Skipped</th><th scope="col">Bad lines</th></tr></thead>
                <tbody>
                  {data.runs.map((run) => (
                    <Fragment key={run.run_id}>
                      <tr>
                        <td>{formatTimestamp(run.started_at)}</td><td>{run.finished_at ? formatTimestamp(run.finished_at) : 'Not finished'}</td>
                        <td className="mono">{run.source_file}</td><td>{run.rows_read}</td><td>{run.accounts_migrated}</td><td>{run.accounts_skipped}</td>
                        <td>{run.bad_lines ? (
                          <button type="button" aria-expanded={open === run.run_id} aria-controls={`run-${run.run_id}`}
                            onClick={() => setOpen(open === run.run_id ? undefined : run.run_id)}
                            aria-label={`${run.bad_lines} bad lines of run ${run.run_id}: ${open === run.run_id ? 'hide' : 'show'}`}>{run.bad_lines}</button>
                        ) : 0}</td>
                      </tr>
                      <tr id={`run-${run.run_id}`} hidden={open !== run.run_id} className="details-row">
                        <td colSpan={7}>
                          <ul className="bad-lines">{run.bad_line_samples.map((bad) => <li key={bad.line}>Line {bad.line}: {bad.error}</li>)}</ul>
                        </td>
                      </tr>
                    </Fragment>
                  ))}
                </tbody>
              </table>
            </TableRegion>
            <Pager label="Migration run pages" hasPrevious={paging.hasPrevious} nextToken={data.next_page_token}
              onPrevious={paging.previous} onNext={() => paging.next(data.next_page_token)} />
          </>
        )}
      </LoadState>
    </section>
  );
}
