"""The SQL of the wallet hot paths, as text with %(name)s parameters.

Kept as plain constants so the benchmark can run these exact statements in pgbench
(`bench/pgbench_script.py` turns %(name)s into pgbench variables). Every statement
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

# Lock-free read of several wallets in one statement (so one snapshot): per request, the
# account, its live buckets (live at that request's `now`), and the stored answer of an
# earlier request with its idempotency key (none when null). Requests travel as one JSON
# document, [{"request": i, "account_id", "idempotency_key", "now"}]; every row names its
# request. Concurrent requests share the statement (adapters/db/wallet_batcher.py); a lone
# request sends a document of one. Optimistic writes check the account version they read.
_READ_REQUESTS = """
requests AS MATERIALIZED (
  SELECT r.request, r.account_id, r.idempotency_key, r.now
  FROM jsonb_to_recordset(%(requests)s::jsonb) AS r(request int, account_id text, idempotency_key text, now timestamptz)
)"""
_READ_ROWS = f"""
SELECT r.request, {", ".join("a." + c.strip() for c in ACCOUNT_COLUMNS.split(","))},
       b.bucket_seq, b.source, b.granted_seconds, b.remaining_seconds, b.granted_at, b.expires_at,
       NULL::text AS request_fingerprint, NULL::jsonb AS response
FROM requests r
JOIN accounts a ON a.account_id = r.account_id
LEFT JOIN buckets b
  ON b.account_id = a.account_id AND b.remaining_seconds > 0
 AND (b.expires_at IS NULL OR b.expires_at > r.now)
UNION ALL
SELECT r.request, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       i.request_fingerprint, i.response
FROM requests r
JOIN idempotency_records i ON i.account_id = r.account_id AND i.idempotency_key = r.idempotency_key
"""
READ_WALLETS = f"WITH {_READ_REQUESTS}{_READ_ROWS}"

# Every change to one or more wallets, in one statement: per wallet, the account row
# (checked against the version the change was planned on), new buckets, debits (as deltas,
# guarded so a remainder can never go negative), ledger entries, and the idempotent answer.
# Wallets travel as one JSON document (cheaper to encode than a dozen array parameters),
# one element per account. The `locked` part locks the accounts whose version still matches,
# in account_id order, skipping any another transaction holds: a batch never waits behind
# one busy account (a skipped wallet is "not saved", and its request retries), and two
# batches cannot deadlock. Every other part joins the `saved` accounts, so an account row
# is always locked before its buckets, as the locking path's FOR UPDATE does, and nothing
# of a wallet not saved is written; the others are. The locking path's own account is
# not skipped: its transaction already holds the lock. The statement returns the saved
# account ids, checks its own effect, and fails, rolling back, if any part touched an
# unexpected number of rows, or (with all_or_nothing) if any wallet was not saved.
# billing_fail() is VOLATILE (migration 0002) so the planner cannot evaluate the failing
# branch ahead of time, as it would a constant CAST error.
_SAVE_PARTS = """
wallets AS MATERIALIZED (
  SELECT w.*
  FROM jsonb_to_recordset(%(wallets)s::jsonb) AS w(
    account_id text, now timestamptz, expected_last_event_seq bigint, first_event_seq bigint,
    plan_key text, subscription_status text, last_bucket_seq int, last_event_seq bigint,
    bonus_last_grant_on date, bonus_month date, bonus_used_seconds int,
    new_buckets jsonb, debits jsonb, entries jsonb,
    idempotency_key text, request_fingerprint text, response jsonb)
), locked AS MATERIALIZED (
  SELECT a.account_id
  FROM accounts a JOIN wallets w ON a.account_id = w.account_id
  WHERE a.last_event_seq = w.expected_last_event_seq
  ORDER BY a.account_id
  FOR NO KEY UPDATE OF a SKIP LOCKED
), account AS (
  UPDATE accounts a SET
    plan_key = w.plan_key, subscription_status = w.subscription_status,
    last_bucket_seq = w.last_bucket_seq, last_event_seq = w.last_event_seq,
    bonus_last_grant_on = w.bonus_last_grant_on, bonus_month = w.bonus_month,
    bonus_used_seconds = w.bonus_used_seconds, updated_at = w.now
  FROM wallets w JOIN locked USING (account_id)
  WHERE a.account_id = w.account_id AND a.last_event_seq = w.expected_last_event_seq
  RETURNING a.account_id
), saved AS MATERIALIZED (
  SELECT w.* FROM wallets w JOIN account USING (account_id)
), new_buckets AS (
  INSERT INTO buckets (account_id, bucket_seq, source, granted_seconds, remaining_seconds, granted_at, expires_at)
  SELECT s.account_id, n.bucket_seq, n.source, n.granted, n.remaining, s.now, n.expires_at
  FROM saved s, jsonb_to_recordset(s.new_buckets)
       AS n(bucket_seq int, source text, granted int, remaining int, expires_at timestamptz)
  RETURNING 1
), debits AS (
  UPDATE buckets b SET remaining_seconds = b.remaining_seconds - d.seconds
  FROM saved s, jsonb_to_recordset(s.debits) AS d(bucket_seq int, seconds int)
  WHERE b.account_id = s.account_id AND b.bucket_seq = d.bucket_seq AND b.remaining_seconds >= d.seconds
  RETURNING 1
), entries AS (
  INSERT INTO ledger_events (account_id, event_seq, type, seconds, reason, bucket_seq, operation, occurred_at, metadata)
  SELECT s.account_id, s.first_event_seq + e.ordinality - 1, e.type, e.seconds, e.reason,
         e.bucket_seq, e.operation, s.now, e.metadata
  FROM saved s, ROWS FROM (jsonb_to_recordset(s.entries)
         AS (type text, seconds int, reason text, bucket_seq int, operation text, metadata jsonb))
       WITH ORDINALITY AS e(type, seconds, reason, bucket_seq, operation, metadata, ordinality)
  RETURNING 1
), answers AS (
  INSERT INTO idempotency_records (account_id, idempotency_key, request_fingerprint, response, created_at)
  SELECT s.account_id, s.idempotency_key, s.request_fingerprint, s.response, s.now
  FROM saved s
  WHERE s.idempotency_key IS NOT NULL
  RETURNING 1
), expected AS (
  SELECT count(*) AS wallets,
         coalesce(sum(jsonb_array_length(new_buckets)), 0) AS new_buckets,
         coalesce(sum(jsonb_array_length(debits)), 0) AS debits,
         coalesce(sum(jsonb_array_length(entries)), 0) AS entries,
         count(idempotency_key) AS answers
  FROM saved
)"""
_SAVE_OUTCOME = """
ARRAY(SELECT account_id FROM saved) AS saved_account_ids,
  CASE
    WHEN (SELECT count(*) FROM new_buckets) = e.new_buckets
     AND (SELECT count(*) FROM debits) = e.debits
     AND (SELECT count(*) FROM entries) = e.entries
     AND (SELECT count(*) FROM answers) = e.answers
     AND (NOT %(all_or_nothing)s OR e.wallets = (SELECT count(*) FROM wallets))
    THEN 'saved'
    ELSE billing_fail('wallet write touched unexpected rows; transaction rolled back')
  END AS outcome
FROM expected e
"""
SAVE_WALLETS = f"WITH {_SAVE_PARTS}\nSELECT {_SAVE_OUTCOME}"


# Reads and writes of concurrent requests in one statement (group commit, one round trip):
# SAVE_WALLETS' parts, then READ_WALLETS' rows, then one row with request -1 carrying the
# write's outcome (in request_fingerprint) and the saved account ids (in response). Every
# part of a statement sees the snapshot taken at its start, so a read of an account written
# by the same statement sees it as it was before: that request's own write later fails its
# version check and retries, as after any concurrent change.
READ_AND_SAVE_WALLETS = f"""WITH {_SAVE_PARTS},
outcome AS MATERIALIZED (SELECT {_SAVE_OUTCOME}), {_READ_REQUESTS}{_READ_ROWS}UNION ALL
SELECT -1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       o.outcome, to_jsonb(o.saved_account_ids)
FROM outcome o
"""
