import { describe, expect, test } from 'vitest';
import { activityPoints, usageByDay } from '../src/charts.js';

describe('usage per day and operation', () => {
  test('every day of the range, zeros where nothing was used, minutes per operation', () => {
    const chart = usageByDay([
      { date: '2026-12-01', operation: 'build', seconds: 1200 },
      { date: '2026-12-01', operation: 'plan', seconds: 90 },
      { date: '2026-12-03', operation: 'build', seconds: 600 },
      { date: '2026-11-01', operation: 'export', seconds: 60 }, // outside the range: only in the totals
    ], '2026-12-03', 3);
    expect(chart.operations).toEqual(['build', 'export', 'plan']);
    expect(chart.days).toEqual([
      { date: '2026-12-01', build: 20, export: 0, plan: 1.5 },
      { date: '2026-12-02', build: 0, export: 0, plan: 0 },
      { date: '2026-12-03', build: 10, export: 0, plan: 0 },
    ]);
    expect(chart.totals).toEqual([
      { operation: 'build', minutes: 30 }, { operation: 'plan', minutes: 1.5 }, { operation: 'export', minutes: 1 },
    ]);
  });

  test('the service\'s hours: UTC hour labels, consumed minutes', () => {
    const [point] = activityPoints([{
      hour_at: '2026-12-02T07:00:00Z', consumed_seconds: 1800, consumes: 3, refusals: 1, topups_succeeded: 2,
      topups_failed: 0, webhooks_delivered: 5, webhooks_failed: 1,
    }]);
    expect(point).toEqual({
      hour: '07:00', consumedMinutes: 30, consumes: 3, refusals: 1, topupsSucceeded: 2, topupsFailed: 0,
      webhooksDelivered: 5, webhooksFailed: 1,
    });
  });
});
