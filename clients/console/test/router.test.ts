import { describe, expect, test } from 'vitest';
import { hrefFor, parseRoute } from '../src/router.js';

describe('hash routes', () => {
  test('each page, and back to its href', () => {
    const cases = [
      ['', { page: 'search', query: '' }],
      ['#/accounts?q=pi_123', { page: 'search', query: 'pi_123' }],
      ['#/accounts/user%3A42%2Fx', { page: 'account', userId: 'user:42/x' }],
      ['#/audit?user=u-1', { page: 'audit', userId: 'u-1' }],
      ['#/stripe', { page: 'stripe' }],
      ['#/webhooks', { page: 'webhooks' }],
      ['#/operations', { page: 'operations' }],
    ] as const;
    for (const [hash, route] of cases) {
      expect(parseRoute(hash)).toEqual(route);
      expect(parseRoute(hrefFor(route))).toEqual(route);
    }
  });

  test('anything else: not found (a malformed escape too)', () => {
    expect(parseRoute('#/nope')).toEqual({ page: 'not-found', path: '/nope' });
    expect(parseRoute('#/accounts/%E0%A4%A')).toEqual({ page: 'not-found', path: '/accounts/%E0%A4%A' });
  });
});
