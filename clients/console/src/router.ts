/**
 * Hash routing: the page's path stays /console/ (Envoy serves index.html for it), the route is the
 * fragment, e.g. #/accounts/u-123. A fragment never reaches the server or a Referer.
 */
import { useEffect, useState } from 'react';

export type Route =
  | { page: 'search'; query: string }
  | { page: 'account'; userId: string }
  | { page: 'audit'; userId: string }
  | { page: 'stripe' }
  | { page: 'webhooks' }
  | { page: 'operations' }
  | { page: 'not-found'; path: string };

export function parseRoute(hash: string): Route {
  const text = hash.replace(/^#/, '');
  const [path = '', search = ''] = text.split('?', 2);
  const params = new URLSearchParams(search);
  const parts = path.split('/').filter(Boolean);
  const [first, second] = parts;
  if (parts.length === 0 || (first === 'accounts' && parts.length === 1)) return { page: 'search', query: params.get('q') ?? '' };
  if (first === 'accounts' && parts.length === 2 && second !== undefined) {
    try {
      return { page: 'account', userId: decodeURIComponent(second) };
    } catch {
      return { page: 'not-found', path };
    }
  }
  if (parts.length === 1) {
    if (first === 'audit') return { page: 'audit', userId: params.get('user') ?? '' };
    if (first === 'stripe') return { page: 'stripe' };
    if (first === 'webhooks') return { page: 'webhooks' };
    if (first === 'operations') return { page: 'operations' };
  }
  return { page: 'not-found', path };
}

export function hrefFor(route: Route): string {
  switch (route.page) {
    case 'search':
      return route.query ? `#/accounts?q=${encodeURIComponent(route.query)}` : '#/accounts';
    case 'account':
      return `#/accounts/${encodeURIComponent(route.userId)}`;
    case 'audit':
      return route.userId ? `#/audit?user=${encodeURIComponent(route.userId)}` : '#/audit';
    case 'not-found':
      return `#/${route.path}`;
    default:
      return `#/${route.page}`;
  }
}

export function navigate(route: Route): void {
  window.location.hash = hrefFor(route).slice(1);
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(window.location.hash));
  useEffect(() => {
    const update = () => setRoute(parseRoute(window.location.hash));
    window.addEventListener('hashchange', update);
    return () => window.removeEventListener('hashchange', update);
  }, []);
  return route;
}
