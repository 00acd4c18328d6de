import { useCallback, useEffect, useRef, useState } from 'react';

export type Load<T> =
  | { status: 'loading'; data?: T }
  | { status: 'ok'; data: T }
  | { status: 'error'; error: unknown; data?: T };

/**
 * Runs `load` when `deps` change (and on reload()); a late answer of an earlier run is dropped.
 * The previous data stays while a reload runs, so a page does not flash empty after an action.
 */
export function useLoad<T>(load: () => Promise<T>, deps: readonly unknown[]): Load<T> & { reload: () => void } {
  const [state, setState] = useState<Load<T>>({ status: 'loading' });
  const [tick, setTick] = useState(0);
  const run = useRef(0);
  // eslint-disable-next-line react-hooks/exhaustive-deps
  const stableLoad = useCallback(load, deps);
  useEffect(() => {
    const mine = ++run.current;
    setState((previous) => (previous.data === undefined ? { status: 'loading' } : { status: 'loading', data: previous.data }));
    stableLoad().then(
      (data) => { if (run.current === mine) setState({ status: 'ok', data }); },
      (error: unknown) => { if (run.current === mine) setState({ status: 'error', error }); },
    );
  }, [stableLoad, tick]);
  const reload = useCallback(() => setTick((value) => value + 1), []);
  return { ...state, reload };
}
