import type { ReactNode } from 'react';
import { describeError, isUnimplemented } from '../api.js';
import type { Load } from '../useLoad.js';

/**
 * A read's state: a loading line, "not available on this server yet" for a 501 (the RPC is not
 * built there), the API's error, or the content.
 */
export function LoadState<T>(props: { load: Load<T>; what: string; children: (data: T) => ReactNode }) {
  const { load } = props;
  if (load.status === 'error') {
    if (isUnimplemented(load.error)) {
      return (
        <p className="notice" data-unimplemented="true">
          {props.what}: not available on this server yet (the API answers 501, not implemented).
        </p>
      );
    }
    return <p className="error" role="alert">{props.what} could not be loaded: {describeError(load.error)}</p>;
  }
  if (load.data === undefined) return <p className="loading" role="status">Loading {props.what.toLowerCase()}…</p>;
  return <>{props.children(load.data)}</>;
}

/** A wide table: scrolls sideways inside its own labelled, focusable region on narrow screens. */
export function TableRegion(props: { label: string; children: ReactNode }) {
  return (
    <div className="table-wrap" role="region" aria-label={props.label} tabIndex={0}>
      {props.children}
    </div>
  );
}

/** Newer/older paging over page tokens: the tokens of the pages seen, so "previous" needs no API support. */
export function Pager(props: { hasPrevious: boolean; nextToken: string; onPrevious: () => void; onNext: () => void; label: string }) {
  if (!props.hasPrevious && !props.nextToken) return null;
  return (
    <nav className="pager" aria-label={props.label}>
      <button type="button" onClick={props.onPrevious} disabled={!props.hasPrevious}>Previous page</button>
      <button type="button" onClick={props.onNext} disabled={!props.nextToken}>Next page</button>
    </nav>
  );
}
