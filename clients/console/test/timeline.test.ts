import { describe, expect, test } from 'vitest';
import type { LedgerRow } from '@billing/client/admin';
import { buildTimeline } from '../src/timeline.js';

function row(seq: number, type: string, seconds: number, available: number, operation = '', expiredBefore = 0): LedgerRow {
  return {
    event_seq: String(seq), type, seconds, reason: '', occurred_at: `2026-12-0${seq}T10:00:00Z`, operation, bucket_seq: 1,
    metadata: undefined, balance_after_seconds: available, available_after_seconds: available,
    expired_before_seconds: expiredBefore,
  };
}

describe('the timeline: the available balance before and after each line', () => {
  test('rows oldest first: opening balance, running balance, credits and debits', () => {
    const timeline = buildTimeline([
      row(1, 'package_credit', 3600, 5400),
      row(2, 'consumption', -1200, 4200, 'build'),
      row(3, 'rollover_discard_pending', 0, 4200),
      row(4, 'adjustment', -600, 3600),
    ]);
    expect(timeline.openingSeconds).toBe(1800);
    expect(timeline.closingSeconds).toBe(3600);
    expect(timeline.creditedSeconds).toBe(3600);
    expect(timeline.debitedSeconds).toBe(1800);
    expect(timeline.expiredSeconds).toBe(0);
    expect(timeline.rows.map((r) => [r.balanceBeforeSeconds, r.deltaSeconds, r.balanceAfterSeconds])).toEqual([
      [1800, 3600, 5400], [5400, -1200, 4200], [4200, 0, 4200], [4200, -600, 3600],
    ]);
    expect(timeline.rows.some((r) => r.gapBefore)).toBe(false);
    expect(timeline.rows[1]!.operation).toBe('build');
  });

  test('expired time is a line of its own: before the row it preceded, and after the newest row up to now', () => {
    // A 900 s daily bonus expires unused overnight (the next row says so), then 300 s more after the last row.
    const timeline = buildTimeline([
      row(1, 'daily_bonus', 900, 2700),
      row(2, 'daily_bonus', 900, 2700, '', 900),
      row(3, 'consumption', -600, 2100, 'build'),
    ], 300);
    expect(timeline.rows.map((r) => [r.kind, r.balanceBeforeSeconds, r.deltaSeconds, r.balanceAfterSeconds])).toEqual([
      ['row', 1800, 900, 2700], ['expiry', 2700, -900, 1800], ['row', 1800, 900, 2700], ['row', 2700, -600, 2100],
      ['expiry', 2100, -300, 1800],
    ]);
    expect(timeline.rows.some((r) => r.gapBefore)).toBe(false);
    expect(timeline.expiredSeconds).toBe(1200);
    expect(timeline.closingSeconds).toBe(1800);
  });

  test('a line whose balance before is not the previous line\'s after marks rows missing between them', () => {
    const timeline = buildTimeline([row(1, 'package_credit', 600, 600), row(5, 'consumption', -60, 300)]);
    expect(timeline.rows.map((r) => r.gapBefore)).toEqual([false, true]);
  });

  test('no rows: zeros', () => {
    expect(buildTimeline([])).toEqual({
      openingSeconds: 0, closingSeconds: 0, rows: [], creditedSeconds: 0, debitedSeconds: 0, expiredSeconds: 0,
    });
  });
});
