"""The SQL of the wallet hot paths, as text with %(name)s parameters.

Kept as plain constants so the benchmark can run these exact statements in pgbench
(`bench/pgbench_script.py` turns %(name)s into pgbench's :name). Every statement
filters by account_id first (the distribution key of a sharded deployment).
"""

from __future__ import annotations

ACCOUNT_COLUMNS = (
    "plan_key, subscription_status, created_at, last_bucket_seq, last_event_seq, "
    "bonus_last_grant_on, bonus_month, bonus_used_seconds"
)

# The account row, locked. Under READ COMMITTED, a FOR UPDATE that waited re-reads only
# the locked row; that is why the buckets are read by the next statement, which takes
# a new snapshot that sees every change committed before the lock was granted.
LOCK_ACCOUNT = f"""
SELECT {ACCOUNT_COLUMNS}
FROM accounts WHERE account_id = %(account_id)s
FOR UPDATE
"""

# Live buckets, plus the stored answer of an earlier request with this idempotency key.
LIVE_BUCKETS_AND_REPLAY = """
SELECT bucket_seq, source, granted_seconds, remaining_seconds, granted_at, expires_at,
       NULL::text AS request_fingerprint, NULL::jsonb AS response
FROM buckets
WHERE account_id = %(account_id)s AND remaining_seconds > 0
  AND (expires_at IS NULL OR expires_at > %(now)s)
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL, request_fingerprint, response
FROM idempotency_records
WHERE account_id = %(account_id)s AND idempotency_key = %(idempotency_key)s
"""

# Lock-free read, in one statement (so one snapshot): the account, its live buckets, and
# the stored answer of an earlier request with this idempotency key (none when NULL).
# Optimistic writes check the account version they read (see SAVE_WALLET).
READ_WALLET = f"""
SELECT {", ".join("a." + c.strip() for c in ACCOUNT_COLUMNS.split(","))},
       b.bucket_seq, b.source, b.granted_seconds, b.remaining_seconds, b.granted_at, b.expires_at,
       NULL::text AS request_fingerprint, NULL::jsonb AS response
FROM accounts a
LEFT JOIN buckets b
  ON b.account_id = a.account_id AND b.remaining_seconds > 0
 AND (b.expires_at IS NULL OR b.expires_at > %(now)s)
WHERE a.account_id = %(account_id)s
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       request_fingerprint, response
FROM idempotency_records
WHERE account_id = %(account_id)s AND idempotency_key = %(idempotency_key)s
"""

# Every change one unit of work made to a wallet, in one statement: the account row
# (checked against the version the change was planned on), new buckets, debits (as deltas,
# guarded so a remainder can never go negative), ledger entries, and the idempotent answer.
# Every other part joins the `account` part, so the account row is always locked first,
# as the locking path's FOR UPDATE does (one lock order: no deadlocks), and nothing else
# is written when the version check fails. The row-shaped parts travel as one JSON
# document (cheaper to encode than a dozen array parameters). The statement checks its
# own effect and fails, rolling back, if any part touched an unexpected number of rows;
# billing_fail() is VOLATILE (migration 0002) so the planner cannot evaluate the failing
# branch ahead of time, as it would a constant CAST error.
SAVE_WALLET = """
WITH changes AS (
  SELECT %(changes)s::jsonb AS doc
), account AS (
  UPDATE accounts SET
    plan_key = %(plan_key)s, subscription_status = %(subscription_status)s,
    last_bucket_seq = %(last_bucket_seq)s, last_event_seq = %(last_event_seq)s,
    bonus_last_grant_on = %(bonus_last_grant_on)s, bonus_month = %(bonus_month)s,
    bonus_used_seconds = %(bonus_used_seconds)s, updated_at = %(now)s
  WHERE account_id = %(account_id)s AND last_event_seq = %(expected_last_event_seq)s
  RETURNING account_id
), new_buckets AS (
  INSERT INTO buckets (account_id, bucket_seq, source, granted_seconds, remaining_seconds, granted_at, expires_at)
  SELECT account.account_id, n.bucket_seq, n.source, n.granted, n.remaining, %(now)s, n.expires_at
  FROM account, changes, jsonb_to_recordset(changes.doc -> 'new_buckets')
       AS n(bucket_seq int, source text, granted int, remaining int, expires_at timestamptz)
  RETURNING 1
), debits AS (
  UPDATE buckets b SET remaining_seconds = b.remaining_seconds - d.seconds
  FROM account, changes, jsonb_to_recordset(changes.doc -> 'debits') AS d(bucket_seq int, seconds int)
  WHERE b.account_id = account.account_id AND b.bucket_seq = d.bucket_seq AND b.remaining_seconds >= d.seconds
  RETURNING 1
), entries AS (
  INSERT INTO ledger_events (account_id, event_seq, type, seconds, reason, bucket_seq, operation, occurred_at, metadata)
  SELECT account.account_id, %(first_event_seq)s::bigint + e.ordinality - 1, e.type, e.seconds, e.reason,
         e.bucket_seq, e.operation, %(now)s, e.metadata
  FROM account, changes, ROWS FROM (jsonb_to_recordset(changes.doc -> 'entries')
         AS (type text, seconds int, reason text, bucket_seq int, operation text, metadata jsonb))
       WITH ORDINALITY AS e(type, seconds, reason, bucket_seq, operation, metadata, ordinality)
  RETURNING 1
), answer AS (
  INSERT INTO idempotency_records (account_id, idempotency_key, request_fingerprint, response, created_at)
  SELECT account.account_id, %(idempotency_key)s, %(request_fingerprint)s, %(response)s, %(now)s
  FROM account
  WHERE %(idempotency_key)s::text IS NOT NULL
  RETURNING 1
)
SELECT CASE
  WHEN (SELECT count(*) FROM account) = 1
   AND (SELECT count(*) FROM new_buckets) = jsonb_array_length(doc -> 'new_buckets')
   AND (SELECT count(*) FROM debits) = jsonb_array_length(doc -> 'debits')
   AND (SELECT count(*) FROM entries) = jsonb_array_length(doc -> 'entries')
   AND (SELECT count(*) FROM answer) = (CASE WHEN %(idempotency_key)s::text IS NULL THEN 0 ELSE 1 END)
  THEN 'saved'
  ELSE billing_fail('wallet write touched unexpected rows; transaction rolled back')
END AS outcome
FROM changes
"""
