import type { LedgerRow } from '@billing/client/admin';

/**
 * One line of the timeline: a ledger row, or the unused seconds that expired before it (expiry
 * writes no ledger row: an expired bucket keeps its seconds and counts for nothing), with the
 * available balance on each side.
 */
export interface TimelineRow {
  key: string;
  kind: 'row' | 'expiry';
  occurredAt: string | undefined;
  type: string;
  operation: string;
  reason: string;
  deltaSeconds: number;
  balanceBeforeSeconds: number;
  balanceAfterSeconds: number;
  /** The line's balance before does not follow from the line above (a row missing in between). */
  gapBefore: boolean;
}

export interface Timeline {
  /** The available balance right before the first line; 0 without rows. */
  openingSeconds: number;
  closingSeconds: number;
  rows: TimelineRow[];
  /** Credits, debits and expired seconds over the lines. */
  creditedSeconds: number;
  debitedSeconds: number;
  expiredSeconds: number;
}

/**
 * The available balance, read forward: rows oldest first (ListAccountLedger order=oldest_first from a
 * date, every type). Each row carries what the user could use right after it (available_after_seconds)
 * and what expired since the account's previous row (expired_before_seconds): that expiry becomes a
 * line of its own before the row. `expiredSinceLastRow` (the response's, on the last page) is the
 * expiry after the newest row, up to now: a closing line.
 */
export function buildTimeline(rows: readonly LedgerRow[], expiredSinceLastRow = 0): Timeline {
  const out: TimelineRow[] = [];
  let credited = 0;
  let debited = 0;
  let expired = 0;
  let previousAfter: number | undefined;
  const add = (line: Omit<TimelineRow, 'gapBefore'>) => {
    out.push({ ...line, gapBefore: previousAfter !== undefined && previousAfter !== line.balanceBeforeSeconds });
    previousAfter = line.balanceAfterSeconds;
  };
  for (const row of rows) {
    const before = row.available_after_seconds - row.seconds;
    if (row.expired_before_seconds > 0) {
      expired += row.expired_before_seconds;
      add(expiryLine(`${row.event_seq}-expired`, undefined, row.expired_before_seconds, before));
    }
    add({
      key: String(row.event_seq), kind: 'row', occurredAt: row.occurred_at, type: row.type, operation: row.operation,
      reason: row.reason, deltaSeconds: row.seconds, balanceBeforeSeconds: before,
      balanceAfterSeconds: row.available_after_seconds,
    });
    if (row.seconds > 0) credited += row.seconds;
    else debited -= row.seconds;
  }
  if (expiredSinceLastRow > 0 && previousAfter !== undefined) {
    expired += expiredSinceLastRow;
    add(expiryLine('now-expired', undefined, expiredSinceLastRow, previousAfter - expiredSinceLastRow));
  }
  const first = out[0];
  const last = out[out.length - 1];
  return {
    openingSeconds: first ? first.balanceBeforeSeconds : 0,
    closingSeconds: last ? last.balanceAfterSeconds : 0,
    rows: out,
    creditedSeconds: credited,
    debitedSeconds: debited,
    expiredSeconds: expired,
  };
}

function expiryLine(key: string, occurredAt: string | undefined, seconds: number, after: number): Omit<TimelineRow, 'gapBefore'> {
  return {
    key, kind: 'expiry', occurredAt, type: 'expired', operation: '', reason: 'unused time whose buckets expired',
    deltaSeconds: -seconds, balanceBeforeSeconds: after + seconds, balanceAfterSeconds: after,
  };
}
