import { useCallback, useState } from 'react';

/** Page tokens of the pages seen so far: [''] is the first page; the last is the current one. */
export function usePaging() {
  const [tokens, setTokens] = useState<string[]>(['']);
  const current = tokens[tokens.length - 1] ?? '';
  const next = useCallback((token: string) => { if (token) setTokens((seen) => [...seen, token]); }, []);
  const previous = useCallback(() => setTokens((seen) => (seen.length > 1 ? seen.slice(0, -1) : seen)), []);
  const reset = useCallback(() => setTokens(['']), []);
  return { current, hasPrevious: tokens.length > 1, next, previous, reset, pageNumber: tokens.length };
}
