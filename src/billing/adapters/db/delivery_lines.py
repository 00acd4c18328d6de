"""What the sender (outbound_queue.py) and the admin's replays (webhook_admin.py) share about the
delivery lines: one (account, endpoint) line is sent in seq order, one delivery at a time."""

# pg_advisory_xact_lock's key for the turns of the delivery lines (any constant no other code uses).
TURN_LOCK = 0x6F75_7462_6F78  # "outbox"

# Before REHEAD_LINES, in a statement of its own: the lines' pending deliveries locked, so a claim
# that took one of them (its lease not yet committed) has committed before REHEAD_LINES takes its
# snapshot, which then sees the lease (one statement would judge "in flight" from a snapshot taken
# before the claim committed, and make an earlier delivery due beside one in flight).
LOCK_LINES = """
SELECT 1 FROM webhook_deliveries d
JOIN unnest(%(account_ids)s::text[], %(endpoint_ids)s::text[]) AS l(account_id, endpoint_id)
  ON d.account_id = l.account_id AND d.endpoint_id = l.endpoint_id
WHERE d.status = 'pending'
ORDER BY d.account_id, d.endpoint_id, d.seq
FOR UPDATE OF d
"""

# After a replay put deliveries back (waiting): in each of their lines, a due but not leased delivery
# behind the first pending one waits again, and the first pending one is due now unless one of its
# line is in flight (its record gives the turn, _NEXT_TURN). Run under TURN_LOCK, exclusive.
REHEAD_LINES = """
WITH lines AS (
  SELECT DISTINCT l.account_id, l.endpoint_id
  FROM unnest(%(account_ids)s::text[], %(endpoint_ids)s::text[]) AS l(account_id, endpoint_id)
), firsts AS (
  SELECT l.account_id, l.endpoint_id, (
    SELECT min(d.seq) FROM webhook_deliveries d
    WHERE d.account_id = l.account_id AND d.endpoint_id = l.endpoint_id AND d.status = 'pending') AS seq
  FROM lines l
), parked AS (
  UPDATE webhook_deliveries d SET next_attempt_at = 'infinity'::timestamptz, updated_at = %(now)s
  FROM firsts f
  WHERE d.account_id = f.account_id AND d.endpoint_id = f.endpoint_id AND d.status = 'pending'
    AND d.seq > f.seq AND d.lease_until IS NULL AND d.next_attempt_at <> 'infinity'::timestamptz
  RETURNING d.account_id, d.endpoint_id
)
UPDATE webhook_deliveries d SET next_attempt_at = %(now)s, updated_at = %(now)s
FROM firsts f
WHERE d.account_id = f.account_id AND d.endpoint_id = f.endpoint_id AND d.seq = f.seq
  AND d.next_attempt_at = 'infinity'::timestamptz
  AND NOT EXISTS (
    SELECT 1 FROM webhook_deliveries x
    WHERE x.account_id = f.account_id AND x.endpoint_id = f.endpoint_id AND x.status = 'pending'
      AND x.lease_until IS NOT NULL)
"""
