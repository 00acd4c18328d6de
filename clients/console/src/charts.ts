import type { HourActivity, OperationUsage } from '@billing/client/admin';

export interface UsageByDay {
  operations: string[];
  /** One point per day: { date, <operation>: minutes ... }, oldest first, every day of the range present. */
  days: Array<Record<string, string | number>>;
  /** Per operation, most used first. */
  totals: Array<{ operation: string; minutes: number }>;
}

const minutes = (seconds: number) => Math.round((seconds / 60) * 10) / 10;

/** GetAccountUsage's rows (day x operation) as a chart's points, in minutes; days without usage are zeros. */
export function usageByDay(rows: readonly OperationUsage[], lastDay: string, dayCount: number): UsageByDay {
  const operations = [...new Set(rows.map((row) => row.operation))].sort();
  const end = Date.parse(`${lastDay}T00:00:00Z`);
  const days: Array<Record<string, string | number>> = [];
  const index = new Map<string, Record<string, string | number>>();
  for (let offset = dayCount - 1; offset >= 0; offset--) {
    const date = new Date(end - offset * 86_400_000).toISOString().slice(0, 10);
    const point: Record<string, string | number> = { date };
    for (const operation of operations) point[operation] = 0;
    days.push(point);
    index.set(date, point);
  }
  const totals = new Map<string, number>();
  const perDay = new Map<string, number>(); // "date operation" -> seconds
  for (const row of rows) {
    const point = index.get(row.date);
    if (point) {
      const key = `${row.date} ${row.operation}`;
      const seconds = (perDay.get(key) ?? 0) + row.seconds;
      perDay.set(key, seconds);
      point[row.operation] = minutes(seconds);
    }
    totals.set(row.operation, (totals.get(row.operation) ?? 0) + row.seconds);
  }
  return {
    operations,
    days,
    totals: [...totals].map(([operation, seconds]) => ({ operation, minutes: minutes(seconds) }))
      .sort((a, b) => b.minutes - a.minutes || a.operation.localeCompare(b.operation)),
  };
}

/** GetServiceActivity's hours as chart points: the hour's UTC label and its counts (consumed in minutes). */
export function activityPoints(hours: readonly HourActivity[]) {
  return hours.map((hour) => ({
    hour: hour.hour_at ? `${new Date(hour.hour_at).toISOString().slice(11, 13)}:00` : '',
    consumedMinutes: minutes(hour.consumed_seconds),
    consumes: hour.consumes,
    refusals: hour.refusals,
    topupsSucceeded: hour.topups_succeeded,
    topupsFailed: hour.topups_failed,
    webhooksDelivered: hour.webhooks_delivered,
    webhooksFailed: hour.webhooks_failed,
  }));
}

/** Colours with at least 3:1 contrast on white, told apart by more than hue in the legend (names). */
export const SERIES_COLOURS = ['#1f5fbf', '#b3470f', '#1c7c3a', '#7a3fb0', '#a3214d', '#5c6b00', '#00737a', '#6b4b1f'];
