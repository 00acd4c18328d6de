import { describe, expect, test } from 'vitest';
import { endOfUtcDay, formatCents, formatSeconds, formatSignedSeconds, formatTimestamp, humanize, startOfUtcDay } from '../src/format.js';

describe('seconds as operators read them', () => {
  test.each([
    [0, '0 s'], [5, '5 s'], [60, '1 min'], [600, '10 min'], [3600, '1 h'], [3725, '1 h 2 min 5 s'],
    [90_000, '25 h'], [-1200, '−20 min'], [3_600_000, '1,000 h'],
  ])('%i -> %s', (seconds, text) => {
    expect(formatSeconds(seconds)).toBe(text);
  });

  test('a change carries its sign', () => {
    expect(formatSignedSeconds(600)).toBe('+10 min');
    expect(formatSignedSeconds(-300)).toBe('−5 min');
    expect(formatSignedSeconds(0)).toBe('0 s');
  });

  test('not a number: a dash', () => {
    expect(formatSeconds(Number.NaN)).toBe('—');
  });
});

describe('instants in UTC', () => {
  test('RFC 3339 with or without fractions, any offset', () => {
    expect(formatTimestamp('2026-12-02T19:34:02Z')).toBe('2026-12-02 19:34:02 UTC');
    expect(formatTimestamp('2026-12-02T19:34:02.123456Z')).toBe('2026-12-02 19:34:02 UTC');
    expect(formatTimestamp('2026-12-02T20:34:02+01:00')).toBe('2026-12-02 19:34:02 UTC');
  });

  test('absent or unreadable: a dash', () => {
    expect(formatTimestamp(undefined)).toBe('—');
    expect(formatTimestamp(null)).toBe('—');
    expect(formatTimestamp('')).toBe('—');
    expect(formatTimestamp('yesterday')).toBe('—');
  });

  test('date inputs become the UTC day\'s bounds, [from, to)', () => {
    expect(startOfUtcDay('2026-03-01')).toBe('2026-03-01T00:00:00.000Z');
    expect(endOfUtcDay('2026-02-28')).toBe('2026-03-01T00:00:00.000Z');
    expect(startOfUtcDay('')).toBeUndefined();
    expect(startOfUtcDay('2026-3-1')).toBeUndefined();
    expect(endOfUtcDay('nope')).toBeUndefined();
  });
});

describe('money and codes', () => {
  test('cents in their currency', () => {
    expect(formatCents(1299, 'usd')).toBe('$12.99');
    expect(formatCents(500, 'EUR')).toBe('€5.00');
    expect(formatCents(1234, 'ZZZ')).toMatch(/12\.34/);
  });

  test('codes as words', () => {
    expect(humanize('package_credit')).toBe('Package credit');
    expect(humanize('')).toBe('—');
  });
});
