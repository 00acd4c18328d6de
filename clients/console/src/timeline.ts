import type { LedgerRow } from '@billing/client/admin';

/** One row of the timeline: the change and the balance on each side of it. */
export interface TimelineRow {
  eventSeq: string;
  occurredAt: string | undefined;
  type: string;
  operation: string;
  reason: string;
  deltaSeconds: number;
  balanceBeforeSeconds: number;
  balanceAfterSeconds: number;
  /** The row's balance_after does not follow from the row before (a row missing in between). */
  gapBefore: boolean;
}

export interface Timeline {
  /** The balance right before the first row (balance_after - seconds of it); 0 without rows. */
  openingSeconds: number;
  closingSeconds: number;
  rows: TimelineRow[];
  /** Credits and debits over the rows. */
  creditedSeconds: number;
  debitedSeconds: number;
}

/**
 * The running balance, read forward: rows oldest first (ListAccountLedger order=oldest_first from a
 * date, every type). The server gives each row its balance_after_seconds (the ledger's running sum);
 * the balance before a row is that minus the row's change, and a row whose "before" is not the
 * previous row's "after" marks rows missing in between (another page, or a type filter).
 */
export function buildTimeline(rows: readonly LedgerRow[]): Timeline {
  const out: TimelineRow[] = [];
  let credited = 0;
  let debited = 0;
  let previousAfter: number | undefined;
  for (const row of rows) {
    const before = row.balance_after_seconds - row.seconds;
    out.push({
      eventSeq: String(row.event_seq),
      occurredAt: row.occurred_at,
      type: row.type,
      operation: row.operation,
      reason: row.reason,
      deltaSeconds: row.seconds,
      balanceBeforeSeconds: before,
      balanceAfterSeconds: row.balance_after_seconds,
      gapBefore: previousAfter !== undefined && previousAfter !== before,
    });
    if (row.seconds > 0) credited += row.seconds;
    else debited -= row.seconds;
    previousAfter = row.balance_after_seconds;
  }
  const first = out[0];
  const last = out[out.length - 1];
  return {
    openingSeconds: first ? first.balanceBeforeSeconds : 0,
    closingSeconds: last ? last.balanceAfterSeconds : 0,
    rows: out,
    creditedSeconds: credited,
    debitedSeconds: debited,
  };
}
