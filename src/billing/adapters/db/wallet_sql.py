"""The SQL of the wallet hot paths, as text with %(name)s parameters.

Kept as plain constants so the benchmark can run these exact statements in pgbench
(`bench/pgbench_script.py` turns %(name)s into pgbench variables). Every statement
filters by account_id first (the distribution key of a sharded deployment).

The statements are built once, at import, from the column declaration (wallet_columns.py):
`build(account, bucket)` makes them for any declaration (the unit tests build them for one
with an extra column). Rows carry their columns under names that say what they are: an
account's columns prefixed `account_`, a bucket's `bucket_`, a stored answer's `answer_`,
the write's outcome `write_outcome` and `saved_account_ids`; the codec (wallet_codec.py)
reads them by those names.
"""

from __future__ import annotations

from dataclasses import dataclass

from billing.adapters.db.wallet_columns import ACCOUNT, BUCKET, Columns

REQUEST = "request"  # which WalletRead of READ_WALLETS' document a row answers
ANSWER_PREFIX = "answer_"  # the stored answer of an earlier request with the same idempotency key
ANSWER_COLUMNS = ("request_fingerprint", "response")
WRITE_OUTCOME = "write_outcome"  # 'saved' (or the statement failed)
SAVED_ACCOUNT_IDS = "saved_account_ids"  # the accounts whose version check passed


@dataclass(frozen=True)
class WalletStatements:
    lock_account: str
    live_buckets_and_replay: str
    read_wallets: str
    save_wallets: str
    read_and_save_wallets: str
    add_account: str
    read_columns: tuple[str, ...]  # READ_WALLETS' columns, in order (READ_AND_SAVE_WALLETS adds the outcome's)


def build(account: Columns = ACCOUNT, bucket: Columns = BUCKET) -> WalletStatements:
    # The account row, locked. Under READ COMMITTED, a FOR UPDATE that waited re-reads only
    # the locked row; that is why the buckets are read by the next statement, which takes
    # a new snapshot that sees every change committed before the lock was granted.
    lock_account = f"""
SELECT {account.select_list("a")}
FROM accounts a WHERE a.account_id = %(account_id)s
FOR UPDATE
"""

    # Live buckets (and, with expired_since, those that expired after it; and expired ones an open
    # hold still reserves seconds of, which its commits may take), plus the stored
    # answer of an earlier request with this idempotency key. LEAST ignores a NULL
    # expired_since: the live buckets at `now`, as before.
    answer_nulls = ", ".join(f"NULL::{t} AS {ANSWER_PREFIX}{c}" for c, t in zip(ANSWER_COLUMNS, ("text", "jsonb")))
    live_buckets_and_replay = f"""
SELECT {bucket.select_list("b")},
       {answer_nulls}
FROM buckets b
WHERE b.account_id = %(account_id)s AND b.remaining_seconds > 0
  AND (b.expires_at IS NULL OR b.expires_at > LEAST(%(now)s, %(expired_since)s::timestamptz) OR b.held_seconds > 0)
UNION ALL
SELECT {bucket.null_list()}, i.request_fingerprint, i.response
FROM idempotency_records i
WHERE i.account_id = %(account_id)s AND i.idempotency_key = %(idempotency_key)s
"""

    # Lock-free read of several wallets in one statement (so one snapshot): per request, the
    # account, its live buckets (live at that request's `now`, or expired after its
    # `expired_since`), and the stored answer of an earlier request with its idempotency key
    # (none when null). Requests travel as one JSON document,
    # [{"request": i, "account_id", "idempotency_key", "now", "expired_since"?}]; every row
    # names its request. Concurrent requests share the statement (adapters/db/wallet_batcher.py);
    # a lone request sends a document of one. Unlocked writes check the account version they read.
    # The account and the stored answer are looked up per request (LATERAL, OFFSET 0 so the
    # planner keeps it a parameterized index probe): jsonb_to_recordset counts as 100 rows to the
    # planner, which then hashed a sequential scan of a small accounts table (0.38 ms against
    # 0.11 ms on 1,000 accounts) and of idempotency_records while its statistics lagged its growth.
    read_requests = f"""
requests AS MATERIALIZED (
  SELECT r.{REQUEST}, r.account_id, r.idempotency_key, r.now, r.expired_since
  FROM jsonb_to_recordset(%(requests)s::jsonb)
       AS r({REQUEST} int, account_id text, idempotency_key text, now timestamptz, expired_since timestamptz)
)"""

    def read_rows(outcome_columns: str) -> str:
        return f"""
SELECT r.{REQUEST}, {account.select_list("a")},
       {bucket.select_list("b")},
       {answer_nulls}{outcome_columns}
FROM requests r
CROSS JOIN LATERAL (SELECT * FROM accounts a WHERE a.account_id = r.account_id OFFSET 0) a
LEFT JOIN buckets b
  ON b.account_id = a.account_id AND b.remaining_seconds > 0
 AND (b.expires_at IS NULL OR b.expires_at > LEAST(r.now, r.expired_since) OR b.held_seconds > 0)
UNION ALL
SELECT r.{REQUEST}, {account.null_list()}, {bucket.null_list()},
       i.request_fingerprint, i.response{", NULL, NULL" if outcome_columns else ""}
FROM requests r
CROSS JOIN LATERAL (
  SELECT * FROM idempotency_records i
  WHERE i.account_id = r.account_id AND i.idempotency_key = r.idempotency_key OFFSET 0
) i
"""

    read_wallets = f"WITH {read_requests}{read_rows('')}"
    read_columns = (
        REQUEST, *(account.alias(c) for c in account.columns), *(bucket.alias(c) for c in bucket.columns),
        *(ANSWER_PREFIX + c for c in ANSWER_COLUMNS),
    )

    # Every change to one or more wallets, in one statement: per wallet, the account row
    # (checked against the version the change was planned on, and its entries numbered right
    # after the stored ones), new buckets, debits (as deltas,
    # guarded so a remainder never goes negative nor below what holds reserve; a change of held seconds
    # travels with them as `held`), ledger entries, outbound events (the outbox), and the idempotent answer.
    # Wallets travel as one JSON document (cheaper to encode than a dozen array parameters),
    # one element per account: its saved account columns under their own names (the record
    # type below and the SET list come from the same declaration). The `locked` part locks
    # the accounts whose version still matches, one index probe per wallet in the document's
    # order (sorted by account_id), skipping any another transaction holds: a batch never waits
    # behind one busy account (a skipped wallet is "not saved", and its request retries), and
    # two batches cannot deadlock. (A join instead of the LATERAL probe let the planner, which
    # counts jsonb_to_recordset as 100 rows, hash a sequential scan of a small accounts table.) Every other
    # part joins the `saved` accounts, so an account row is always locked before its buckets,
    # as the locking path's FOR UPDATE does, and nothing of a wallet not saved is written;
    # the others are. The locking path's own account is not skipped: its transaction already
    # holds the lock. The statement returns the saved account ids and checks its own effect:
    # it fails, rolling back, if a debit's guard stopped it (the stored remainder was smaller
    # than the wallet planned on), or (with all_or_nothing) if any wallet was not saved. The
    # inserts need no check: an INSERT ... SELECT inserts every row or raises.
    # billing_fail() is VOLATILE (migration 0002) so the planner cannot evaluate the failing
    # branch ahead of time, as it would a constant CAST error.
    saved_columns = account.saved
    save_parts = f"""
wallets AS MATERIALIZED (
  SELECT w.*
  FROM jsonb_to_recordset(%(wallets)s::jsonb) AS w(
    account_id text, now timestamptz, expected_version bigint, first_event_seq bigint,
    {account.record_type(saved_columns)},
    new_buckets jsonb, debits jsonb, entries jsonb, outbox jsonb,
    idempotency_key text, request_fingerprint text, response jsonb)
), locked AS MATERIALIZED (
  SELECT l.account_id
  FROM wallets w CROSS JOIN LATERAL (
    SELECT a.account_id FROM accounts a
    WHERE a.account_id = w.account_id AND a.version = w.expected_version AND a.last_event_seq = w.first_event_seq - 1
    FOR NO KEY UPDATE OF a SKIP LOCKED
  ) l
), account AS (
  UPDATE accounts a SET
    {", ".join(f"{c.name} = w.{c.name}" for c in saved_columns)}, updated_at = w.now
  FROM wallets w JOIN locked USING (account_id)
  WHERE a.account_id = w.account_id AND a.version = w.expected_version AND a.last_event_seq = w.first_event_seq - 1
  RETURNING a.account_id
), saved AS MATERIALIZED (
  SELECT w.* FROM wallets w JOIN account USING (account_id)
), new_buckets AS (
  INSERT INTO buckets (account_id, {bucket.names()})
  SELECT s.account_id, {", ".join("n." + c.name for c in bucket.columns)}
  FROM saved s, jsonb_to_recordset(s.new_buckets) AS n({bucket.record_type()})
), debits AS (
  UPDATE buckets b SET remaining_seconds = b.remaining_seconds - d.seconds, held_seconds = b.held_seconds + d.held,
    expiry_notice = d.notice
  FROM saved s, jsonb_to_recordset(s.debits) AS d(bucket_seq int, seconds int, held int, notice smallint)
  WHERE b.account_id = s.account_id AND b.bucket_seq = d.bucket_seq
    AND b.remaining_seconds - b.held_seconds >= d.seconds + d.held AND b.held_seconds + d.held >= 0
  RETURNING 1
), entries AS (
  INSERT INTO ledger_events (account_id, event_seq, type, seconds, reason, bucket_seq, operation, occurred_at, metadata)
  SELECT s.account_id, s.first_event_seq + e.ordinality - 1, e.type, e.seconds, e.reason,
         e.bucket_seq, e.operation, s.now, e.metadata
  FROM saved s, ROWS FROM (jsonb_to_recordset(s.entries)
         AS (type text, seconds int, reason text, bucket_seq int, operation text, metadata jsonb))
       WITH ORDINALITY AS e(type, seconds, reason, bucket_seq, operation, metadata, ordinality)
), outbox AS (
  INSERT INTO outbound_events (account_id, seq, event_id, type, created_at, payload)
  SELECT s.account_id, o.seq, o.event_id, o.type, s.now, o.payload
  FROM saved s, jsonb_to_recordset(s.outbox) AS o(seq bigint, event_id text, type text, payload jsonb)
), answers AS (
  INSERT INTO idempotency_records (account_id, idempotency_key, request_fingerprint, response, created_at)
  SELECT s.account_id, s.idempotency_key, s.request_fingerprint, s.response, s.now
  FROM saved s
  WHERE s.idempotency_key IS NOT NULL
), expected AS (
  SELECT count(*) AS wallets, coalesce(sum(jsonb_array_length(debits)), 0) AS debits
  FROM saved
)"""
    save_outcome = f"""
ARRAY(SELECT account_id FROM saved) AS {SAVED_ACCOUNT_IDS},
  CASE
    WHEN (SELECT count(*) FROM debits) <> e.debits
    THEN billing_fail('wallet write touched unexpected rows: a debit exceeds the stored remainder; transaction rolled back')
    WHEN %(all_or_nothing)s AND e.wallets <> (SELECT count(*) FROM wallets)
    THEN billing_fail('wallet write touched unexpected rows: a wallet failed its version check; transaction rolled back')
    ELSE 'saved'
  END AS {WRITE_OUTCOME}
FROM expected e
"""
    save_wallets = f"WITH {save_parts}\nSELECT {save_outcome}"

    # Reads and writes of concurrent requests in one statement (group commit, one round trip):
    # SAVE_WALLETS' parts, then READ_WALLETS' rows (with the outcome's two columns, null), then
    # one row carrying the write's outcome in them (and nulls elsewhere, its request included).
    # Every part of a statement sees the snapshot taken at its start, so a read of an account
    # written by the same statement sees it as it was before: that request's own write later
    # fails its version check and retries, as after any concurrent change.
    outcome_nulls = f",\n       NULL::text AS {WRITE_OUTCOME}, NULL::text[] AS {SAVED_ACCOUNT_IDS}"
    read_and_save_wallets = f"""WITH {save_parts},
outcome AS MATERIALIZED (SELECT {save_outcome}), {read_requests}{read_rows(outcome_nulls)}UNION ALL
SELECT NULL, {account.null_list()}, {bucket.null_list()}, NULL, NULL,
       o.{WRITE_OUTCOME}, o.{SAVED_ACCOUNT_IDS}
FROM outcome o
"""

    # A new account (nothing if it exists): every declared column, as the domain's Account has it.
    add_account = f"""
INSERT INTO accounts (account_id, {account.names()}, updated_at)
VALUES (%(account_id)s, {", ".join(f"%({c.name})s" for c in account.columns)}, %(updated_at)s)
ON CONFLICT (account_id) DO NOTHING RETURNING 1
"""
    return WalletStatements(
        lock_account=lock_account,
        live_buckets_and_replay=live_buckets_and_replay,
        read_wallets=read_wallets,
        save_wallets=save_wallets,
        read_and_save_wallets=read_and_save_wallets,
        add_account=add_account,
        read_columns=read_columns,
    )


STATEMENTS = build()
LOCK_ACCOUNT = STATEMENTS.lock_account
LIVE_BUCKETS_AND_REPLAY = STATEMENTS.live_buckets_and_replay
READ_WALLETS = STATEMENTS.read_wallets
SAVE_WALLETS = STATEMENTS.save_wallets
READ_AND_SAVE_WALLETS = STATEMENTS.read_and_save_wallets
ADD_ACCOUNT = STATEMENTS.add_account
