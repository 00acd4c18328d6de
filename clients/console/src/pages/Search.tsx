import { type FormEvent, useId, useState } from 'react';
import { formatSeconds, formatTimestamp, humanize } from '../format.js';
import { useApi } from '../context.js';
import { LoadState, TableRegion } from '../components/LoadState.js';
import { hrefFor, navigate } from '../router.js';
import { useLoad } from '../useLoad.js';
import type { SearchAccountsResponse } from '@billing/client/admin';

/** Finds an account by user id prefix, or by a Stripe customer, payment or subscription id. */
export function Search(props: { query: string }) {
  const api = useApi();
  const field = useId();
  const [text, setText] = useState(props.query);
  const results = useLoad<SearchAccountsResponse | null>(
    () => (props.query ? api.searchAccounts(props.query) : Promise.resolve(null)), [api, props.query]);

  function submit(event: FormEvent) {
    event.preventDefault();
    navigate({ page: 'search', query: text.trim() });
  }

  return (
    <>
      <h1>Accounts</h1>
      <form className="search" role="search" onSubmit={submit}>
        <label htmlFor={field}>User id (prefix) or Stripe id (cus_, pi_, ch_, cs_, sub_)</label>
        <div className="inline">
          <input id={field} type="search" value={text} maxLength={200} spellCheck={false}
            onChange={(event) => setText(event.target.value)} />
          <button type="submit" className="primary">Search</button>
        </div>
      </form>
      <LoadState load={results} what="Search results">
        {(data) => data === null ? null : data.matches.length === 0 ? (
          <p role="status">No account matches “{props.query}”.</p>
        ) : (
          <TableRegion label="Matching accounts">
            <table>
              <caption>{data.matches.length} matching account{data.matches.length === 1 ? '' : 's'}</caption>
              <thead>
                <tr><th scope="col">User</th><th scope="col">Matched by</th><th scope="col">Plan</th>
                  <th scope="col">Subscription</th><th scope="col">Available</th><th scope="col">Created</th></tr>
              </thead>
              <tbody>
                {data.matches.map((match) => (
                  <tr key={match.user_id}>
                    <th scope="row"><a href={hrefFor({ page: 'account', userId: match.user_id })}>{match.user_id}</a></th>
                    <td>{humanize(match.matched_by)}</td>
                    <td>{match.plan_key || '—'}</td>
                    <td>{match.subscription_status || '—'}</td>
                    <td>{formatSeconds(match.totals?.total_seconds ?? 0)}</td>
                    <td>{formatTimestamp(match.created_at)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableRegion>
        )}
      </LoadState>
    </>
  );
}
